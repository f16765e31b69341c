/**
 * The worker's bindings (wrangler.toml) and secrets (`wrangler secret put` / `.dev.vars` / `--var`).
 *
 * @module
 */
import type { IndexShard } from "./index-shard.js";

export interface Env {
  /** Query-embedding cache. */
  EMBED_CACHE: KVNamespace;
  /** Index shards (SQLite-backed Durable Objects), addressed by shard name. */
  INDEX: DurableObjectNamespace<IndexShard>;
  /** Bearer key for the document-management routes; unset → those routes answer 503. */
  API_KEY?: string;
  /** HMAC key for /v1/webhooks/index; unset → the webhook answers 503. */
  WEBHOOK_SECRET?: string;
  /** Name prefix of the index's shards (default "default"). */
  INDEX_SHARD?: string;
  /** How many Durable Object shards hold the index (default 1). Changing it starts a new, empty index: reindex. */
  INDEX_SHARDS?: string;
  /**
   * Base URL of the GPU origin (workers/origin) that embeds hard-routed queries with the full model; unset → the edge
   * embeds everything with its local model.
   */
  ORIGIN_URL?: string;
  /** Bearer secret the origin requires (its --secret / ORIGIN_SECRET); needed whenever ORIGIN_URL is set. */
  ORIGIN_SECRET?: string;
}

// Types `env`/`exports` from "cloudflare:workers" for this worker (what `wrangler types` would generate).
declare global {
  namespace Cloudflare {
    interface Env extends EdgeEnv {}
    interface GlobalProps {
      mainModule: typeof import("./index.js");
      durableNamespaces: "IndexShard";
    }
  }
}
type EdgeEnv = Env;

/**
 * The worker's bindings (wrangler.toml) and secrets (`wrangler secret put` / `.dev.vars` / `--var`).
 *
 * @module
 */
import type { DriftMonitor } from "./drift-monitor.js";
import type { IndexShard } from "./index-shard.js";

export interface Env {
  /** Query-embedding cache. */
  EMBED_CACHE: KVNamespace;
  /** Index shards (SQLite-backed Durable Objects), addressed by shard name. */
  INDEX: DurableObjectNamespace<IndexShard>;
  /** Drift monitors (SQLite-backed Durable Objects), one per index shard name: merged query statistics. */
  DRIFT: DurableObjectNamespace<DriftMonitor>;
  /** Bearer key for the document-management routes; unset → those routes answer 503. */
  API_KEY?: string;
  /** HMAC key for /v1/webhooks/index; unset → the webhook answers 503. */
  WEBHOOK_SECRET?: string;
  /** Name of the index shard every route uses (default "default"). */
  INDEX_SHARD?: string;
}

// Types `env`/`exports` from "cloudflare:workers" for this worker (what `wrangler types` would generate).
declare global {
  namespace Cloudflare {
    interface Env extends EdgeEnv {}
    interface GlobalProps {
      mainModule: typeof import("./index.js");
      durableNamespaces: "IndexShard" | "DriftMonitor";
    }
  }
}
type EdgeEnv = Env;

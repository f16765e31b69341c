/**
 * The worker's bindings (wrangler.toml) and secrets (`wrangler secret put` / `.dev.vars` / `--var`).
 *
 * @module
 */
import type { DriftMonitor } from "./drift-monitor.js";
import type { IndexLedger } from "./index-ledger.js";
import type { IndexMessage } from "./index-queue.js";
import type { IndexShard } from "./index-shard.js";
import type { ModelRollout } from "./model-rollout-object.js";

export interface Env {
  /** Query-embedding cache. */
  EMBED_CACHE: KVNamespace;
  /** Index shards (SQLite-backed Durable Objects), addressed by shard name. */
  INDEX: DurableObjectNamespace<IndexShard>;
  /** Drift monitors (SQLite-backed Durable Objects), one per index shard name: merged query statistics. */
  DRIFT: DurableObjectNamespace<DriftMonitor>;
  /** The indexing queue: signed webhooks are put on it, the worker's `queue()` handler indexes them (index-consumer.ts). */
  INDEX_QUEUE: Queue<IndexMessage>;
  /** Ordering ledger partitions (SQLite-backed Durable Objects) through which the queue's writes reach the index. */
  INDEX_LEDGER: DurableObjectNamespace<IndexLedger>;
  /** Dead letters of the indexing queue and the reasons messages failed (GET /v1/admin/dead-letters). */
  INDEX_DEAD_LETTERS: KVNamespace;
  /** Live model updates: the published model route per base index (the pointer queries read; model-route.ts). */
  MODEL_ROUTES: KVNamespace;
  /** Live model updates: the coordinator of each base index's model switches (model-rollout-object.ts). */
  MODEL_ROLLOUT: DurableObjectNamespace<ModelRollout>;
  /** Model artifacts other than the bundled one (model-store.ts); unbound → only the bundled model can serve. */
  MODELS?: R2Bucket;
  /** Pause between background re-embedding steps of a model switch, in ms (default 0). */
  ROLLOUT_STEP_INTERVAL_MS?: string;
  /** How long an isolate reuses the model route it read from KV, in ms (default 1000). */
  MODEL_ROUTE_CACHE_MS?: string;
  /** Bearer key for the document-management routes; unset → those routes answer 503. */
  API_KEY?: string;
  /** HMAC key for /v1/webhooks/index; unset → the webhook answers 503. */
  WEBHOOK_SECRET?: string;
  /** Name prefix of the index's shards (default "default"). */
  INDEX_SHARD?: string;
  /** How many Durable Object shards hold the index (default 1). Changing it starts a new, empty index: reindex. */
  INDEX_SHARDS?: string;
  /** Upstash Vector (hybrid index, 128-d, cosine): with both set, the index lives there instead of the shards. */
  UPSTASH_VECTOR_REST_URL?: string;
  UPSTASH_VECTOR_REST_TOKEN?: string;
  /** Optional Upstash namespace, so several indexes can share one Upstash index. */
  UPSTASH_VECTOR_NAMESPACE?: string;
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
      durableNamespaces: "IndexShard" | "DriftMonitor" | "IndexLedger" | "ModelRollout";
    }
  }
}
type EdgeEnv = Env;

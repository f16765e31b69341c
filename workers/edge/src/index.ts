/**
 * The edge worker's entry: the Hono app (app.ts) over the real dependencies (wiring.ts), the indexing queue's consumer
 * (queue-wiring.ts), and the `IndexShard`, `IndexLedger` and `DriftMonitor` Durable Object classes. Only handlers and
 * entrypoint classes may be exported from this module — workerd treats every export as one.
 *
 * The app is built once per isolate (Hono compiles its router on first use); per-request state (waitUntil) comes from
 * the request's execution context, not from the app.
 *
 * @module
 */
import { createApp } from "./app.js";
import type { Env } from "./env.js";
import { ApiError } from "./errors.js";
import { handleQueueBatch } from "./queue-wiring.js";
import { edgeDeps } from "./wiring.js";

export { DriftMonitor } from "./drift-monitor.js";
export { IndexLedger } from "./index-ledger.js";
export { IndexShard } from "./index-shard.js";
export { ModelRollout } from "./model-rollout-object.js";

const apps = new WeakMap<Env, ReturnType<typeof createApp>>();

/** A misconfigured worker (e.g. INDEX_SHARDS="four") answers every request with the reason, not an opaque 500. */
function configurationError(error: unknown): Response {
  const body = new ApiError(503, "not_configured", `the worker's configuration is invalid: ${(error as Error).message}`).toBody();
  return Response.json(body, { status: 503 });
}

export default {
  fetch(request, env, ctx) {
    let app = apps.get(env);
    if (!app) {
      try {
        app = createApp(edgeDeps(env));
      } catch (error) {
        console.error("cannot build the edge app:", error);
        return configurationError(error);
      }
      apps.set(env, app);
    }
    return app.fetch(request, env, ctx);
  },
  // Errors are handled per message inside; a throw here would retry the whole batch, acknowledged messages too.
  queue(batch, env) {
    return handleQueueBatch(batch, env);
  },
} satisfies ExportedHandler<Env>;

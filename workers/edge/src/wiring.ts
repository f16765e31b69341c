/**
 * The real dependencies of the edge app on Cloudflare: the bundled model (model-loader.ts), the index sharded over
 * `IndexShard` Durable Objects, the KV embedding cache, the secrets and the clock. Kept out of index.ts because every export
 * of a Worker's entry module is taken for a handler or entrypoint.
 *
 * @module
 */
import type { AppDeps } from "./contracts.js";
import { KvDeadLetters } from "./dead-letters.js";
import { KvEmbeddingCache } from "./embed-cache.js";
import type { Env } from "./env.js";
import { ApiError } from "./errors.js";
import { bundledModelRef, loadEdgeModel, loadModelByRef } from "./model-loader.js";
import { RouteReader, initialRoute, type ModelRoute } from "./model-route.js";
import { listArtifacts, putArtifactFile } from "./model-store.js";
import type { RolloutState } from "./model-rollout.js";
import type { ModelDeployments, RolloutAnswer } from "./rollout-api.js";
import type { SearchIndex } from "./search-index.js";
import type { ShardApi } from "./shard-api.js";
import { ShardedIndex, shardNames } from "./sharded-index.js";
import { OriginClient } from "./origin-client.js";
import { upstashIndexFromEnv } from "./upstash-index.js";
import type { IndexTarget } from "./write-ledger.js";

export const DEFAULT_SHARD = "default";

/** INDEX_SHARDS as a shard count; a malformed value is a configuration error the first request reports. */
export function shardCount(env: Env): number {
  const raw = env.INDEX_SHARDS?.trim();
  if (!raw) return 1;
  const count = Number(raw);
  if (!/^\d+$/.test(raw)) throw new Error(`INDEX_SHARDS must be a whole number, got "${raw}"`);
  return count;
}

/** The RPC client of the named shard. */
export function shardClient(env: Env, name: string): ShardApi {
  return env.INDEX.get(env.INDEX.idFromName(name));
}

// The assignment above checks the stub against ShardApi, but a result type RPC cannot serialise becomes `never`, which
// is assignable to anything. This names any such method at compile time.
type ShardStub = ReturnType<Env["INDEX"]["get"]>;
type UnserialisableMethods = {
  [K in keyof ShardApi]: [Awaited<ReturnType<ShardStub[K]>>] extends [never] ? K : never;
}[keyof ShardApi];
const everyShardResultSerialises: [UnserialisableMethods] extends [never] ? true : UnserialisableMethods = true;
void everyShardResultSerialises;

/**
 * The GPU origin's client when ORIGIN_URL is set (its secret is then required). Built once per app, i.e. per isolate,
 * so the circuit breaker remembers failures across requests.
 */
export function originFromEnv(env: Env, options: { timeoutMs?: number } = {}): OriginClient | undefined {
  const url = env.ORIGIN_URL?.trim();
  if (!url) return undefined;
  const secret = env.ORIGIN_SECRET?.trim();
  if (!secret) throw new Error("ORIGIN_URL is set but ORIGIN_SECRET is not: the origin refuses unauthenticated calls");
  try {
    new URL(url);
  } catch {
    throw new Error(`ORIGIN_URL is not a URL: "${url}"`);
  }
  return new OriginClient({ url, secret, ...options });
}

/** The base index's name: the route's first model serves from it, later models from indexes named after it. */
export function baseIndexName(env: Env): string {
  return env.INDEX_SHARD || DEFAULT_SHARD;
}

/**
 * The named index: Upstash when configured (production), else the Durable Object shards. On Upstash the base index
 * is UPSTASH_VECTOR_NAMESPACE itself and every other index (a later model's) a namespace named after it.
 */
export function searchIndexFor(env: Env, name: string, shards: number): SearchIndex {
  const namespace = env.UPSTASH_VECTOR_NAMESPACE?.trim() ?? "";
  const upstash = upstashIndexFromEnv(
    name === baseIndexName(env) ? env : { ...env, UPSTASH_VECTOR_NAMESPACE: namespace ? `${namespace}/${name}` : name },
  );
  return upstash ?? new ShardedIndex(shardNames(name, shards), (shard) => shardClient(env, shard));
}

function nonNegativeMs(env: Env, name: "ROLLOUT_STEP_INTERVAL_MS" | "MODEL_ROUTE_CACHE_MS", fallback: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a whole number of milliseconds, got "${raw}"`);
  return Number(raw);
}

/** Pause between background re-embedding steps of a model switch (default none: as fast as the steps run). */
export function rolloutStepIntervalMs(env: Env): number {
  return nonNegativeMs(env, "ROLLOUT_STEP_INTERVAL_MS", 0);
}

/** The route before any switch: the bundled model over the base index. */
export async function initialRouteFor(base: string): Promise<ModelRoute> {
  return initialRoute(base, await bundledModelRef());
}

/** A transition's new state, or its conflict as the API's 409. */
function settled(answer: RolloutAnswer): RolloutState {
  if ("conflict" in answer) throw new ApiError(409, "conflict", answer.conflict);
  return answer.state;
}

/** Live model updates over the real bindings, for the base index `target` names. */
export function modelDeployments(env: Env, target: IndexTarget): ModelDeployments {
  // Per call, like the shards' stubs: a stub made for one request cannot be used from another.
  const rollout = () => env.MODEL_ROLLOUT.get(env.MODEL_ROLLOUT.idFromName(target.name));
  const reader = new RouteReader(env.MODEL_ROUTES, target.name, () => initialRouteFor(target.name), nonNegativeMs(env, "MODEL_ROUTE_CACHE_MS", 1_000));
  const bucket = () => {
    if (!env.MODELS) throw new ApiError(503, "not_configured", "no artifact store is bound: add the MODELS R2 bucket to wrangler.toml");
    return env.MODELS;
  };
  return {
    servingRoute: () => reader.route(),
    writeRoute: () => rollout().route(target),
    model: (ref) => loadModelByRef(env, ref),
    index: (name) => searchIndexFor(env, name, target.shards),
    state: () => rollout().state(target),
    activate: async (ref) => settled(await rollout().activate(target, ref)),
    rollback: async () => settled(await rollout().rollback(target)),
    retire: async () => settled(await rollout().retire(target)),
    putFile: (ref, path, body) => putArtifactFile(bucket(), ref, path, body),
    listModels: () => listArtifacts(bucket()),
  };
}

export function edgeDeps(env: Env): AppDeps {
  const indexName = baseIndexName(env);
  const shards = shardCount(env);
  return {
    loadModel: () => loadEdgeModel(env),
    index: searchIndexFor(env, indexName, shards),
    indexName,
    models: modelDeployments(env, { name: indexName, shards }),
    cache: new KvEmbeddingCache(env.EMBED_CACHE),
    secrets: { apiKey: env.API_KEY, webhookSecret: env.WEBHOOK_SECRET },
    origin: originFromEnv(env),
    now: () => Date.now(),
    driftMonitor: (name) => env.DRIFT.get(env.DRIFT.idFromName(name)),
    indexQueue: env.INDEX_QUEUE,
    deadLetters: new KvDeadLetters(env.INDEX_DEAD_LETTERS),
  };
}

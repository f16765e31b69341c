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
import { loadEdgeModel } from "./model-loader.js";
import type { SearchIndex } from "./search-index.js";
import type { ShardApi } from "./shard-api.js";
import { ShardedIndex, shardNames } from "./sharded-index.js";
import { OriginClient } from "./origin-client.js";
import { upstashIndexFromEnv } from "./upstash-index.js";

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

/** The index this worker serves: Upstash when configured (production), else the Durable Object shards. */
export function searchIndexFor(env: Env, name: string, shards: number): SearchIndex {
  return upstashIndexFromEnv(env) ?? new ShardedIndex(shardNames(name, shards), (shard) => shardClient(env, shard));
}

export function edgeDeps(env: Env): AppDeps {
  const indexName = env.INDEX_SHARD || DEFAULT_SHARD;
  return {
    loadModel: () => loadEdgeModel(env),
    index: searchIndexFor(env, indexName, shardCount(env)),
    indexName,
    cache: new KvEmbeddingCache(env.EMBED_CACHE),
    secrets: { apiKey: env.API_KEY, webhookSecret: env.WEBHOOK_SECRET },
    origin: originFromEnv(env),
    now: () => Date.now(),
    driftMonitor: (name) => env.DRIFT.get(env.DRIFT.idFromName(name)),
    indexQueue: env.INDEX_QUEUE,
    deadLetters: new KvDeadLetters(env.INDEX_DEAD_LETTERS),
  };
}

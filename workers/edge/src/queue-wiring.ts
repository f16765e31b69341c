/**
 * The indexing queue on Cloudflare: the queue names wrangler.toml declares, the index and ledger a consumer writes
 * to, the origin it embeds with, and the `queue()` handler's dispatch between the main queue and its dead letters.
 * Kept out of index.ts because every export of a Worker's entry module is taken for a handler or entrypoint.
 *
 * @module
 */
import { KvDeadLetters } from "./dead-letters.js";
import type { Env } from "./env.js";
import { consumeDeadLetters, consumeIndexBatch, type ConsumerTarget, type IndexConsumerDeps } from "./index-consumer.js";
import { loadModelByRef } from "./model-loader.js";
import { writeDeployments, type Deployment } from "./model-route.js";
import type { OriginClient } from "./origin-client.js";
import type { SearchIndex } from "./search-index.js";
import { DEFAULT_SHARD, originFromEnv, searchIndexFor, shardCount } from "./wiring.js";
import { WriteLedger, type IndexTarget } from "./write-ledger.js";

/** Must match wrangler.toml's `[[queues.consumers]]`: the dead-letter queue's batches are filed, not indexed. */
export const INDEX_DEAD_LETTER_QUEUE = "taesr-index-dlq";
/** A batch of 16 documents on the origin's CPU fallback takes longer than a query; past this, the edge model embeds. */
const ORIGIN_INDEXING_TIMEOUT_MS = 15_000;

/** The index this worker serves, as the ledger names it. */
export function indexTarget(env: Env): IndexTarget {
  return { name: env.INDEX_SHARD || DEFAULT_SHARD, shards: shardCount(env) };
}

/** The SearchIndex of a target: Upstash when configured, else the target's Durable Object shards. */
export function indexForTarget(env: Env, target: IndexTarget): SearchIndex {
  return searchIndexFor(env, target.name, target.shards);
}

export function writeLedger(env: Env, target: IndexTarget): WriteLedger {
  return new WriteLedger(target, (name) => env.INDEX_LEDGER.get(env.INDEX_LEDGER.idFromName(name)));
}

// One client per isolate and configuration, so its circuit breaker remembers failures across batches.
const origins = new WeakMap<Env, OriginClient>();
function originFor(env: Env): OriginClient | undefined {
  let client = origins.get(env);
  if (!client) {
    client = originFromEnv(env, { timeoutMs: ORIGIN_INDEXING_TIMEOUT_MS });
    if (client) origins.set(env, client);
  }
  return client;
}

/** The queue's view of one deployment: its model, its index and that index's own ledger. */
function consumerTarget(env: Env, deployment: Deployment, shards: number): ConsumerTarget {
  const target = { name: deployment.index, shards };
  return { loadModel: () => loadModelByRef(env, deployment.model), index: indexForTarget(env, target), ledger: writeLedger(env, target) };
}

/**
 * The consumer's dependencies for one batch: every index of the model route, read from the coordinator itself (not
 * the cached KV pointer) so that no index misses a write during a switch.
 */
export async function consumerDeps(env: Env, base: IndexTarget = indexTarget(env)): Promise<IndexConsumerDeps> {
  const route = await env.MODEL_ROLLOUT.get(env.MODEL_ROLLOUT.idFromName(base.name)).route(base);
  const [serving, ...replicas] = writeDeployments(route).map((deployment) => consumerTarget(env, deployment, base.shards));
  const origin = originFor(env);
  return {
    ...serving!,
    replicas,
    ...(origin ? { origin } : {}),
    deadLetters: new KvDeadLetters(env.INDEX_DEAD_LETTERS),
    now: () => Date.now(),
  };
}

/** The Worker's `queue()` handler. */
export async function handleQueueBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (batch.queue === INDEX_DEAD_LETTER_QUEUE) {
    await consumeDeadLetters(batch, { deadLetters: new KvDeadLetters(env.INDEX_DEAD_LETTERS), now: () => Date.now() });
    return;
  }
  await consumeIndexBatch(batch, await consumerDeps(env));
}

/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * The indexing queue for worker tests: a producer that records what the webhook sends (instead of the real queue,
 * whose consumer would index into the worker's default index), and the consumer over a harness's own index, driven
 * with real `MessageBatch`es from `cloudflare:test` whose ack/retry state `getQueueResult` reads back.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { KvDeadLetters } from "../../../workers/edge/src/dead-letters.js";
import { consumeIndexBatch, type IndexConsumerDeps, type MessageOutcome } from "../../../workers/edge/src/index-consumer.js";
import type { IndexMessage, IndexQueue } from "../../../workers/edge/src/index-queue.js";
import worker from "../../../workers/edge/src/index.js";
import { writeLedger } from "../../../workers/edge/src/queue-wiring.js";
import type { Harness } from "./edge-harness.js";

/** Records every sendBatch call (each a list of message requests). */
export class RecordingQueue implements IndexQueue {
  readonly batches: MessageSendRequest<IndexMessage>[][] = [];
  failAfter = Infinity;

  async sendBatch(messages: Iterable<MessageSendRequest<IndexMessage>>): Promise<void> {
    if (this.batches.length >= this.failAfter) throw new Error("Queue send failed: injected");
    this.batches.push([...messages]);
  }

  get messages(): IndexMessage[] {
    return this.batches.flat().map((m) => m.body);
  }
}

/** Consumer dependencies over the harness's index (its shard prefix and count), the real ledger and KV. */
export function consumerFor(h: Harness, overrides: Partial<IndexConsumerDeps> = {}): IndexConsumerDeps {
  return {
    loadModel: h.deps.loadModel,
    index: h.deps.index,
    ledger: writeLedger(env, { name: h.deps.indexName, shards: h.shardNames.length }),
    deadLetters: new KvDeadLetters(env.INDEX_DEAD_LETTERS),
    now: () => Date.now(),
    log: () => {},
    ...overrides,
  };
}

export interface Delivery {
  outcomes: MessageOutcome[];
  acked: string[];
  /** Retried message ids with their delay. */
  retried: { id: string; delaySeconds: number | undefined }[];
}

let sequence = 0;

/** Delivers `bodies` as one batch (message ids `m<n>`; `attempts` per delivery) and reads back acks and retries. */
export async function deliver(deps: IndexConsumerDeps, bodies: readonly unknown[], attempts: number | readonly number[] = 1): Promise<Delivery & { ids: string[] }> {
  const ids = bodies.map(() => `m${++sequence}`);
  const batch = createMessageBatch("taesr-index", bodies.map((body, i) => ({
    id: ids[i]!,
    timestamp: new Date(),
    attempts: typeof attempts === "number" ? attempts : attempts[i]!,
    body,
  })));
  const ctx = createExecutionContext();
  // getQueueResult reports which messages were retried but not their delay: the wrapper notes it on the way through.
  const delays = new Map<string, number | undefined>();
  const observed: MessageBatch<unknown> = {
    queue: batch.queue,
    metadata: batch.metadata,
    ackAll: () => batch.ackAll(),
    retryAll: (options) => batch.retryAll(options),
    messages: batch.messages.map((message) => ({
      id: message.id,
      timestamp: message.timestamp,
      body: message.body,
      attempts: message.attempts,
      ack: () => message.ack(),
      retry: (options?: QueueRetryOptions) => {
        delays.set(message.id, options?.delaySeconds);
        message.retry(options);
      },
    })),
  };
  const outcomes = await consumeIndexBatch(observed, deps);
  const result = await getQueueResult(batch, ctx);
  return {
    ids,
    outcomes,
    acked: result.explicitAcks,
    retried: result.retryMessages.map((m: { msgId: string }) => ({ id: m.msgId, delaySeconds: delays.get(m.msgId) })),
  };
}

/** Delivers `bodies` to the Worker's own `queue()` handler (index.ts) as the named queue would. */
export async function deliverToWorker(queue: string, bodies: readonly unknown[]): Promise<{ ids: string[]; acked: string[]; retried: string[] }> {
  const ids = bodies.map(() => `w${++sequence}`);
  const batch = createMessageBatch(queue, bodies.map((body, i) => ({ id: ids[i]!, timestamp: new Date(), attempts: 1, body })));
  const ctx = createExecutionContext();
  await worker.queue(batch, env);
  const result = await getQueueResult(batch, ctx);
  return { ids, acked: result.explicitAcks, retried: result.retryMessages.map((m: { msgId: string }) => m.msgId) };
}

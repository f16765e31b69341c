/**
 * The indexing queue's producer side: a verified webhook becomes queue messages that fit Cloudflare Queues' limits
 * (128 KB a message, 256 KB and 100 messages a `sendBatch`), each stamped with the webhook's version (write-ledger.ts
 * says what it orders).
 *
 * Sizes are measured on the JSON the messages travel as (`contentType: "json"`), in UTF-8 bytes, against a budget a
 * little under the platform's limits to leave room for its per-message overhead. A batch of documents is packed into
 * as few messages as fit; a single document that cannot fit a message is refused (413) before anything is enqueued,
 * rather than stored elsewhere: documents that large (over ~120 KB of text and metadata) are rare, a second store for
 * them would need its own cleanup, and POST /v1/documents indexes them synchronously.
 *
 * @module
 */
import { z } from "zod";
import { ApiError } from "./errors.js";
import { LIMITS, documentId, documentInput, type DocumentInput, type WebhookRequest } from "./schemas.js";

export const QUEUE_LIMITS = {
  /** Per message: the platform's 128 KB less room for its metadata. */
  messageBytes: 120_000,
  /** Per sendBatch: the platform's 256 KB less the same room for every message. */
  batchBytes: 240_000,
  batchMessages: 100,
} as const;

/** One queued write. `key` names the message across retries (and in dead-letter records); `version` orders writes. */
export const indexMessage = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("upsert"),
    key: z.string().min(1),
    version: z.number().int().nonnegative(),
    documents: z.array(documentInput).min(1),
  }),
  z.strictObject({
    kind: z.literal("delete"),
    key: z.string().min(1),
    version: z.number().int().nonnegative(),
    ids: z.array(documentId).min(1),
  }),
]);
export type IndexMessage = z.infer<typeof indexMessage>;

/** The producer seam: a Queues binding satisfies it, tests pass a recorder. */
export interface IndexQueue {
  sendBatch(messages: Iterable<MessageSendRequest<IndexMessage>>): Promise<unknown>;
}

const encoder = new TextEncoder();
export function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value)).byteLength;
}

let lastVersion = 0;
/**
 * The edge's clock in ms, strictly increasing within this isolate: two webhooks accepted one after the other here
 * always order the same way, even within one millisecond (or under a test's pinned clock).
 */
export function nextVersion(nowMs: number): number {
  lastVersion = Math.max(Math.floor(nowMs), lastVersion + 1);
  return lastVersion;
}

/** Packs items greedily into messages within the byte budget; throws for an item that cannot fit even alone. */
function pack<T>(items: readonly T[], envelope: (part: T[]) => IndexMessage, tooLarge: (item: T, index: number, bytes: number) => ApiError): IndexMessage[] {
  const messages: IndexMessage[] = [];
  const emptyBytes = jsonBytes(envelope([]));
  let current: T[] = [];
  let bytes = emptyBytes;
  items.forEach((item, index) => {
    // +1 for the comma between array items.
    const itemBytes = jsonBytes(item) + 1;
    if (emptyBytes + itemBytes > QUEUE_LIMITS.messageBytes) throw tooLarge(item, index, emptyBytes + itemBytes);
    if (bytes + itemBytes > QUEUE_LIMITS.messageBytes) {
      messages.push(envelope(current));
      current = [];
      bytes = emptyBytes;
    }
    current.push(item);
    bytes += itemBytes;
  });
  if (current.length > 0) messages.push(envelope(current));
  return messages;
}

/** The messages of one webhook, all with its version; `key` is the webhook's own key (a part number is appended). */
export function webhookMessages(event: WebhookRequest, version: number, key: string = crypto.randomUUID()): IndexMessage[] {
  // Sized with a placeholder as long as any part number; the real keys are assigned once the parts are known.
  const placeholder = `${key}/${LIMITS.documentsPerRequest}`;
  return packWebhook(event, version, placeholder).map((message, i) => ({ ...message, key: `${key}/${i + 1}` }));
}

function packWebhook(event: WebhookRequest, version: number, keyed: string): IndexMessage[] {
  if (event.event === "upsert") {
    return pack<DocumentInput>(
      event.documents,
      (documents) => ({ kind: "upsert", key: keyed, version, documents }),
      (document, index, bytes) =>
        new ApiError(
          413,
          "payload_too_large",
          `document "${document.id}" (documents.${index}) takes ${bytes} bytes as a queue message; a message holds at most ` +
            `${QUEUE_LIMITS.messageBytes}. Shorten it, or index it synchronously with POST /v1/documents. Nothing was queued.`,
          [{ path: `documents.${index}`, message: "too large for a queue message" }],
        ),
    );
  }
  return pack<string>(
    event.ids,
    (ids) => ({ kind: "delete", key: keyed, version, ids }),
    (_id, index, bytes) =>
      new ApiError(413, "payload_too_large", `ids.${index} takes ${bytes} bytes as a queue message`, [{ path: `ids.${index}`, message: "too large for a queue message" }]),
  );
}

/** Sends messages in as few `sendBatch` calls as the batch limits allow, in order. */
export async function enqueue(queue: IndexQueue, messages: readonly IndexMessage[]): Promise<void> {
  let batch: MessageSendRequest<IndexMessage>[] = [];
  let bytes = 0;
  for (const body of messages) {
    const size = jsonBytes(body);
    if (batch.length > 0 && (bytes + size > QUEUE_LIMITS.batchBytes || batch.length >= QUEUE_LIMITS.batchMessages)) {
      await queue.sendBatch(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ body, contentType: "json" });
    bytes += size;
  }
  if (batch.length > 0) await queue.sendBatch(batch);
}

export interface QueuedWebhook {
  event: WebhookRequest["event"];
  /** Documents (upsert) or ids (delete) accepted onto the queue. */
  queued: number;
  ids: string[];
}

/**
 * Puts a verified webhook on the queue. A failure part-way may leave some of its messages queued; the webhook is
 * then answered 503 and sending it again is safe (writes are idempotent, and the resend carries a newer version).
 */
export async function queueWebhook(queue: IndexQueue, event: WebhookRequest, nowMs: number): Promise<QueuedWebhook> {
  const messages = webhookMessages(event, nextVersion(nowMs));
  try {
    await enqueue(queue, messages);
  } catch (error) {
    throw new ApiError(
      503,
      "queue_unavailable",
      `the indexing queue refused the webhook (${(error as Error).message}); part of it may be queued — send it again, re-delivery is safe`,
      undefined,
      { "Retry-After": "5" },
    );
  }
  const ids = event.event === "upsert" ? event.documents.map((d) => d.id) : event.ids;
  return { event: event.event, queued: ids.length, ids };
}

/**
 * The indexing queue's consumer: applies each message through the ordering ledger (write-ledger.ts), embedding
 * upserted documents origin first with the edge's model as fallback (document-embedder.ts), and acknowledges or
 * retries each message on its own, so one bad message does not hold back the rest of its batch.
 *
 * - Messages of a batch are applied oldest version first: an upsert and a newer delete of one id in the same batch
 *   then apply in their order rather than the newer one refusing the older as stale.
 * - A failed message is retried after {@link backoffSeconds} (2 s, 4 s, 8 s … capped at 5 minutes) and its reason
 *   recorded; after the consumer's `max_retries` the queue moves it to the dead-letter queue, whose consumer
 *   ({@link consumeDeadLetters}) files it where GET /v1/admin/dead-letters shows it.
 * - A body that is not an index message can never succeed: it is filed as a dead letter at once and acknowledged.
 *
 * Nothing is lost or duplicated under redelivery: unchanged documents are recognised by (id, content hash, model
 * version) and cost no embedding, the index's writes are idempotent, and the ledger refuses any write older than
 * the last one applied to an id.
 *
 * @module
 */
import type { EdgeModel } from "./contracts.js";
import type { DeadLetterStore } from "./dead-letters.js";
import { localEmbedder, originFirstEmbedder, type EmbeddingSource, type OriginEmbedApi } from "./document-embedder.js";
import { indexMessage, type IndexMessage } from "./index-queue.js";
import { contentHash, indexDocuments } from "./indexer.js";
import type { SearchIndex } from "./search-index.js";
import { settleAll } from "./settle-all.js";
import type { WriteLedger } from "./write-ledger.js";

export const RETRY_BACKOFF = { baseSeconds: 2, maxSeconds: 300 } as const;

/** Exponential backoff by delivery attempt (1-based): base · 2^(attempt − 1), capped. */
export function backoffSeconds(attempts: number): number {
  return Math.min(RETRY_BACKOFF.maxSeconds, RETRY_BACKOFF.baseSeconds * 2 ** Math.max(0, attempts - 1));
}

/** One index the queue writes to, with the model that embeds for it and the ledger that orders its writes. */
export interface ConsumerTarget {
  loadModel(): Promise<EdgeModel>;
  /** Read for `pending` (what needs embedding); every write goes through `ledger`. */
  index: SearchIndex;
  ledger: WriteLedger;
}

/** The serving index's target, plus the others a model switch adds (model-route.ts). */
export interface IndexConsumerDeps extends ConsumerTarget {
  /**
   * Further indexes every message must reach — the next model's during a switch, the previous model's after one —
   * each embedded by its own model. A message is acknowledged only once every index has it.
   */
  replicas?: ConsumerTarget[];
  /** The GPU origin, when configured: it embeds first, the edge model takes over when it cannot. */
  origin?: OriginEmbedApi;
  deadLetters: DeadLetterStore;
  now(): number;
  log?(message: string): void;
}

export interface MessageOutcome {
  key: string;
  kind: IndexMessage["kind"];
  /** Upserts: stored or replaced / already stored identically. Deletes: removed / not there. */
  applied: string[];
  unchanged: string[];
  /** Refused because a newer write of the id was already applied. */
  stale: string[];
  embeddedBy: Record<EmbeddingSource, number>;
}

/** Applies one message. Throws when any part of it could not be applied; a redelivery then completes it. */
export async function applyIndexMessage(message: IndexMessage, model: EdgeModel, deps: IndexConsumerDeps): Promise<MessageOutcome> {
  const { ledger } = deps;
  const { version } = message;
  if (message.kind === "delete") {
    const outcome = await ledger.delete(version, message.ids);
    return { key: message.key, kind: "delete", applied: outcome.deleted, unchanged: outcome.missing, stale: outcome.stale, embeddedBy: { origin: 0, local: 0 } };
  }
  // Skip the embedding of documents a newer write has overtaken; the ledger checks again when writing.
  const fresh = await ledger.fresh("upsert", version, message.documents.map((d) => d.id));
  const documents = message.documents.filter((d) => fresh.has(d.id));
  const embedder = deps.origin ? originFirstEmbedder(deps.origin, model, deps.log) : localEmbedder(model);
  const outcome = await indexDocuments(model, deps.index, documents, { embedder, store: (prepared) => ledger.upsert(version, prepared) });
  // Documents already stored identically were not written, but this upsert must still order after older deletes.
  const byId = new Map(documents.map((d) => [d.id, d]));
  const refs = await Promise.all(
    outcome.unchanged.map(async (id) => ({ id, contentHash: await contentHash(byId.get(id)!), modelVersion: model.info.version })),
  );
  const confirmed = refs.length > 0 ? await ledger.confirm(version, refs) : { confirmed: [], changed: [], stale: [] };
  if (confirmed.changed.length > 0) {
    throw new Error(`${confirmed.changed.length} documents changed outside the queue while this message was applied (${confirmed.changed.slice(0, 5).join(", ")}); retrying`);
  }
  return {
    key: message.key,
    kind: "upsert",
    applied: outcome.upserted,
    unchanged: confirmed.confirmed,
    stale: [...message.documents.filter((d) => !fresh.has(d.id)).map((d) => d.id), ...outcome.stale, ...confirmed.stale],
    embeddedBy: outcome.embeddedBy,
  };
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The main queue's handler: every message ends acknowledged or retried, never left to the batch's fate. */
export async function consumeIndexBatch(batch: MessageBatch<unknown>, deps: IndexConsumerDeps): Promise<MessageOutcome[]> {
  const log = deps.log ?? console.log;
  const valid: { message: Message<unknown>; body: IndexMessage }[] = [];
  for (const message of batch.messages) {
    const parsed = indexMessage.safeParse(message.body);
    if (parsed.success) {
      valid.push({ message, body: parsed.data });
      continue;
    }
    const issue = parsed.error.issues[0];
    const reason = `not an index message: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim();
    try {
      await deps.deadLetters.recordDead(message.body, message.attempts, deps.now(), reason);
      message.ack();
    } catch (error) {
      log(`could not file malformed message ${message.id} as a dead letter (${reasonOf(error)}); retrying it`);
      message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    }
  }
  valid.sort((a, b) => a.body.version - b.body.version);

  const failed = async (message: Message<unknown>, body: IndexMessage, error: unknown) => {
    const reason = reasonOf(error);
    const delaySeconds = backoffSeconds(message.attempts);
    log(`index message ${body.key} (${body.kind}, attempt ${message.attempts}) failed: ${reason}; retrying in ${delaySeconds} s`);
    await deps.deadLetters.recordFailure(body.key, reason, message.attempts).catch((recordError: unknown) => log(`could not record the failure: ${reasonOf(recordError)}`));
    message.retry({ delaySeconds });
  };

  const targets: ConsumerTarget[] = [deps, ...(deps.replicas ?? [])];
  let models: EdgeModel[];
  try {
    models = await Promise.all(targets.map((target) => target.loadModel()));
  } catch (error) {
    for (const { message, body } of valid) await failed(message, body, error);
    return [];
  }
  const outcomes: MessageOutcome[] = [];
  for (const { message, body } of valid) {
    try {
      // Every index at once. The serving index's outcome is the message's; the others must succeed too, or the message
      // is retried (each index's writes are idempotent, so a retry completes only what is missing). All are awaited
      // before a failure counts, so no write is left running behind a retry.
      const [outcome] = await settleAll(targets.map((target, i) => applyIndexMessage(body, models[i]!, i === 0 ? deps : { ...deps, ...target })));
      outcomes.push(outcome!);
      message.ack();
    } catch (error) {
      await failed(message, body, error);
    }
  }
  return outcomes;
}

/** The dead-letter queue's handler: files every message for the admin route, then acknowledges it. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, deps: Pick<IndexConsumerDeps, "deadLetters" | "now" | "log">): Promise<void> {
  const log = deps.log ?? console.error;
  for (const message of batch.messages) {
    try {
      const letter = await deps.deadLetters.recordDead(message.body, message.attempts, deps.now());
      log(`dead letter ${letter.key}: ${letter.kind} of ${letter.count} (${letter.ids.slice(0, 5).join(", ")}) — ${letter.error}`);
      message.ack();
    } catch (error) {
      log(`could not file dead letter ${message.id}: ${reasonOf(error)}; retrying`);
      message.retry({ delaySeconds: backoffSeconds(message.attempts) });
    }
  }
}

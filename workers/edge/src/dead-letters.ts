/**
 * Dead letters of the indexing queue, kept where an operator can read them (GET /v1/admin/dead-letters): Workers KV,
 * one record per message that exhausted its retries, for {@link DEAD_LETTER_TTL_SECONDS}.
 *
 * The dead-letter queue delivers only the message body, not why it failed, so the main consumer records each
 * failure's reason under the message's key as it happens, and the dead-letter consumer folds the last one into the
 * record. A message that died without a recorded reason (its consumer crashed or ran out of time) says so.
 *
 * @module
 */
import type { IndexMessage } from "./index-queue.js";

/** Dead letters are kept 30 days. */
export const DEAD_LETTER_TTL_SECONDS = 30 * 24 * 3600;
/** A failure's reason is kept 15 days: long enough for every retry of its message. */
const FAILURE_TTL_SECONDS = 15 * 24 * 3600;
const MAX_IDS_SHOWN = 50;
/** Most records `list` reads before sorting (a mass failure must not make the admin route read without end). */
const MAX_SCANNED = 1_000;

export interface DeadLetter {
  key: string;
  kind: IndexMessage["kind"] | "malformed";
  /** The message's document ids (the first 50), so the sender knows what to send again. */
  ids: string[];
  /** How many documents or ids the message carried. */
  count: number;
  version: number | null;
  /** Deliveries to the indexing consumer, as far as recorded. */
  attempts: number;
  /** The last failure recorded for the message. */
  error: string;
  /** Unix ms when it was dead-lettered. */
  deadAt: number;
}

export interface DeadLetterStore {
  /** Notes why delivery `attempts` of the message `key` failed (read back when the message is dead-lettered). */
  recordFailure(key: string, error: string, attempts: number): Promise<void>;
  /** Records a dead message. `error` overrides the recorded failure (a body that could never succeed). */
  recordDead(body: unknown, attempts: number, now: number, error?: string): Promise<DeadLetter>;
  /** The newest dead letters first. */
  list(limit: number): Promise<DeadLetter[]>;
}

function describe(body: unknown): Pick<DeadLetter, "key" | "kind" | "ids" | "count" | "version"> {
  const message = body as Partial<IndexMessage> | null;
  const key = typeof message?.key === "string" ? message.key : crypto.randomUUID();
  const version = typeof message?.version === "number" ? message.version : null;
  if (message?.kind === "upsert" && Array.isArray(message.documents)) {
    const ids = message.documents.map((d) => String((d as { id?: unknown })?.id));
    return { key, kind: "upsert", ids: ids.slice(0, MAX_IDS_SHOWN), count: ids.length, version };
  }
  if (message?.kind === "delete" && Array.isArray(message.ids)) {
    return { key, kind: "delete", ids: message.ids.slice(0, MAX_IDS_SHOWN).map(String), count: message.ids.length, version };
  }
  return { key, kind: "malformed", ids: [], count: 0, version };
}

export class KvDeadLetters implements DeadLetterStore {
  constructor(private readonly kv: KVNamespace) {}

  async recordFailure(key: string, error: string, attempts: number): Promise<void> {
    await this.kv.put(`failure/${key}`, JSON.stringify({ error: error.slice(0, 2_000), attempts }), { expirationTtl: FAILURE_TTL_SECONDS });
  }

  async recordDead(body: unknown, attempts: number, now: number, error?: string): Promise<DeadLetter> {
    const described = describe(body);
    const failure = await this.kv.get<{ error: string; attempts: number }>(`failure/${described.key}`, "json");
    const reason = error ?? failure?.error ?? "no failure was recorded: the consumer crashed or ran out of time on every attempt";
    const letter: DeadLetter = { ...described, attempts: Math.max(attempts, failure?.attempts ?? 0), error: reason, deadAt: now };
    await this.kv.put(`dead/${described.key}`, JSON.stringify(letter), { expirationTtl: DEAD_LETTER_TTL_SECONDS });
    return letter;
  }

  async list(limit: number): Promise<DeadLetter[]> {
    const letters: DeadLetter[] = [];
    let cursor: string | undefined;
    // Keys sort by message key, not time: read them all (dead letters are few, and expire), then sort.
    do {
      const page: KVNamespaceListResult<unknown, string> = await this.kv.list({ prefix: "dead/", ...(cursor ? { cursor } : {}) });
      const values = await Promise.all(page.keys.map((k) => this.kv.get<DeadLetter>(k.name, "json")));
      for (const value of values) if (value) letters.push(value);
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor && letters.length < MAX_SCANNED);
    return letters.sort((a, b) => b.deadAt - a.deadAt).slice(0, limit);
  }
}

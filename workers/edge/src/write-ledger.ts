/**
 * The ordering ledger of queued writes: the contract of the `IndexLedger` Durable Object (index-ledger.ts) and the
 * client that spreads ids over its partitions. Platform-neutral, so the consumer and tests depend on it without
 * importing `cloudflare:workers`.
 *
 * Why a ledger: Queues deliver at least once and in no particular order (a retried message comes back after newer
 * ones), so "upsert A, then delete A" can reach the index as "delete A, upsert A" and resurrect A. Every webhook
 * carries a version (the edge's clock when it accepted the webhook, strictly increasing within an isolate); the ledger
 * remembers, per id, the version of the last write applied — a tombstone for a delete — and refuses older writes.
 * The check and the write happen in one serialised step inside the ledger, so two consumers racing on one id cannot
 * both pass the check and then write in the wrong order. At equal versions (two isolates in the same millisecond) a
 * delete wins over an upsert.
 *
 * @module
 */
import type { DocumentRef, PreparedDocument, UpsertOutcome } from "./shard-api.js";
import { shardOf } from "./sharded-index.js";

/** The index a ledger guards: its shard prefix and shard count (the ledger builds the same SearchIndex from them). */
export interface IndexTarget {
  name: string;
  shards: number;
}

export type WriteKind = "upsert" | "delete";

export interface LedgerUpsertOutcome extends UpsertOutcome {
  /** Ids refused because a newer write (or a delete at the same version) was already applied. */
  stale: string[];
}

export interface LedgerConfirmOutcome {
  /** Still stored exactly as referenced: their version is recorded. */
  confirmed: string[];
  /** Changed or removed since they were checked (by a write outside the queue): embed and write them again. */
  changed: string[];
  stale: string[];
}

export interface LedgerDeleteOutcome {
  deleted: string[];
  missing: string[];
  stale: string[];
}

/** One ledger partition (Durable Object); every call is asynchronous (RPC). */
export interface IndexLedgerApi {
  /** Ids among `ids` that a `kind` write at `version` would still apply to (a cheap pre-check; writes re-check). */
  fresh(kind: WriteKind, version: number, ids: string[]): Promise<string[]>;
  upsert(target: IndexTarget, version: number, documents: PreparedDocument[]): Promise<LedgerUpsertOutcome>;
  /**
   * Records `version` for documents the index already holds exactly (an upsert that changes nothing still orders
   * after older deletes), checking inside the serialised step that they are still stored as referenced.
   */
  confirm(target: IndexTarget, version: number, refs: DocumentRef[]): Promise<LedgerConfirmOutcome>;
  delete(target: IndexTarget, version: number, ids: string[]): Promise<LedgerDeleteOutcome>;
}

/** The Durable Object name of a ledger partition: one per index shard, so the ledger scales with the index. */
export function ledgerName(target: IndexTarget, partition: number): string {
  return `${target.name}#ledger/${partition + 1}-of-${target.shards}`;
}

/** Routes each id to its partition (the same hash as the index's shards) and merges the partitions' answers. */
export class WriteLedger {
  constructor(
    readonly target: IndexTarget,
    private readonly connect: (name: string) => IndexLedgerApi,
  ) {}

  private partition<T>(items: readonly T[], idOf: (item: T) => string): Map<number, T[]> {
    const parts = new Map<number, T[]>();
    for (const item of items) {
      const part = shardOf(idOf(item), this.target.shards);
      parts.set(part, [...(parts.get(part) ?? []), item]);
    }
    return parts;
  }

  private ledger(part: number): IndexLedgerApi {
    return this.connect(ledgerName(this.target, part));
  }

  async fresh(kind: WriteKind, version: number, ids: readonly string[]): Promise<Set<string>> {
    const answers = await Promise.all([...this.partition(ids, (id) => id)].map(([part, subset]) => this.ledger(part).fresh(kind, version, subset)));
    return new Set(answers.flat());
  }

  async upsert(version: number, documents: readonly PreparedDocument[]): Promise<LedgerUpsertOutcome> {
    const parts = this.partition(documents, (d) => d.id);
    const answers = await Promise.all([...parts].map(([part, subset]) => this.ledger(part).upsert(this.target, version, subset)));
    return {
      upserted: answers.flatMap((a) => a.upserted),
      unchanged: answers.flatMap((a) => a.unchanged),
      stale: answers.flatMap((a) => a.stale),
    };
  }

  async confirm(version: number, refs: readonly DocumentRef[]): Promise<LedgerConfirmOutcome> {
    const parts = this.partition(refs, (r) => r.id);
    const answers = await Promise.all([...parts].map(([part, subset]) => this.ledger(part).confirm(this.target, version, subset)));
    return {
      confirmed: answers.flatMap((a) => a.confirmed),
      changed: answers.flatMap((a) => a.changed),
      stale: answers.flatMap((a) => a.stale),
    };
  }

  async delete(version: number, ids: readonly string[]): Promise<LedgerDeleteOutcome> {
    const parts = this.partition(ids, (id) => id);
    const answers = await Promise.all([...parts].map(([part, subset]) => this.ledger(part).delete(this.target, version, subset)));
    return {
      deleted: answers.flatMap((a) => a.deleted),
      missing: answers.flatMap((a) => a.missing),
      stale: answers.flatMap((a) => a.stale),
    };
  }
}

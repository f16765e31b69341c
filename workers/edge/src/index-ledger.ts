/**
 * `IndexLedger`: one partition of the queue's ordering ledger (write-ledger.ts explains why it exists), a SQLite-backed
 * Durable Object. It holds, per document id, the version of the last write applied to the index — for a delete, a
 * tombstone of id and version only, no content — and it performs the queued writes itself, one at a time, so that
 * "is this write still the newest?" and "write it" cannot be separated by another consumer's write of the same id.
 *
 * Tombstones are kept {@link TOMBSTONE_TTL_MS} (longer than a queue keeps a message, retries included), then purged:
 * after that no older write of the id can still arrive.
 *
 * A write that fails part-way records nothing, so its retry re-applies all of it (the index's writes are idempotent).
 *
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env.js";
import { indexForTarget } from "./queue-wiring.js";
import type { DocumentRef, PreparedDocument } from "./shard-api.js";
import type { IndexLedgerApi, IndexTarget, LedgerConfirmOutcome, LedgerDeleteOutcome, LedgerUpsertOutcome, WriteKind } from "./write-ledger.js";

/** 15 days: Queues keep a message at most 14 days. */
export const TOMBSTONE_TTL_MS = 15 * 24 * 3_600_000;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS write_versions (
     id TEXT PRIMARY KEY,
     version INTEGER NOT NULL,
     deleted INTEGER NOT NULL,
     recorded_at INTEGER NOT NULL
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS write_versions_tombstones ON write_versions (deleted, recorded_at)`,
];

const RECORD = `INSERT INTO write_versions (id, version, deleted, recorded_at) VALUES (?, ?, ?, ?)
  ON CONFLICT(id) DO UPDATE SET version = excluded.version, deleted = excluded.deleted, recorded_at = excluded.recorded_at`;

export class IndexLedger extends DurableObject<Env> implements IndexLedgerApi {
  private readonly sql: SqlStorage;
  /** The write in progress; the next one starts when it settles. Writes call out to the index, which would otherwise let others interleave. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private isFresh(kind: WriteKind, version: number, id: string): boolean {
    const row = this.sql.exec<{ version: number; deleted: number }>("SELECT version, deleted FROM write_versions WHERE id = ?", id).toArray()[0];
    if (!row) return true;
    if (version !== row.version) return version > row.version;
    // The same write again (a redelivery: idempotent), or two isolates in one millisecond, where a delete wins.
    return kind === "delete" || row.deleted === 0;
  }

  async fresh(kind: WriteKind, version: number, ids: string[]): Promise<string[]> {
    return ids.filter((id) => this.isFresh(kind, version, id));
  }

  upsert(target: IndexTarget, version: number, documents: PreparedDocument[]): Promise<LedgerUpsertOutcome> {
    return this.serially(async () => {
      const fresh = documents.filter((d) => this.isFresh("upsert", version, d.id));
      const stale = documents.filter((d) => !fresh.includes(d)).map((d) => d.id);
      const outcome = fresh.length > 0 ? await indexForTarget(this.env, target).upsert(fresh) : { upserted: [], unchanged: [] };
      const now = Date.now();
      for (const d of fresh) this.sql.exec(RECORD, d.id, version, 0, now);
      return { upserted: outcome.upserted, unchanged: outcome.unchanged, stale };
    });
  }

  confirm(target: IndexTarget, version: number, refs: DocumentRef[]): Promise<LedgerConfirmOutcome> {
    return this.serially(async () => {
      const fresh = refs.filter((r) => this.isFresh("upsert", version, r.id));
      const stale = refs.filter((r) => !fresh.includes(r)).map((r) => r.id);
      const changed = fresh.length > 0 ? new Set(await indexForTarget(this.env, target).pending(fresh)) : new Set<string>();
      const confirmed = fresh.filter((r) => !changed.has(r.id)).map((r) => r.id);
      const now = Date.now();
      for (const id of confirmed) this.sql.exec(RECORD, id, version, 0, now);
      return { confirmed, changed: [...changed], stale };
    });
  }

  delete(target: IndexTarget, version: number, ids: string[]): Promise<LedgerDeleteOutcome> {
    return this.serially(async () => {
      const fresh = ids.filter((id) => this.isFresh("delete", version, id));
      const stale = ids.filter((id) => !fresh.includes(id));
      const outcome = fresh.length > 0 ? await indexForTarget(this.env, target).delete(fresh) : { deleted: [], missing: [] };
      const now = Date.now();
      for (const id of fresh) this.sql.exec(RECORD, id, version, 1, now);
      this.sql.exec("DELETE FROM write_versions WHERE deleted = 1 AND recorded_at < ?", now - TOMBSTONE_TTL_MS);
      return { deleted: outcome.deleted, missing: outcome.missing, stale };
    });
  }
}

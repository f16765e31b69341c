/**
 * SQLite persistence of one index shard (Durable Object `ctx.storage.sql`): the schema and every statement, so the
 * Durable Object class reads as policy (caching, ranking) and this file as storage.
 *
 * Schema (v4):
 *   documents(id PK, title, text, metadata JSON, content_hash, model_version, dims, dense BLOB float32 LE, length,
 *             updated_at, terms JSON, sparse JSON) — `length` is the BM25 document length (Σ tf of its lexical terms);
 *             `terms` its lexical terms as [[term, tf], …]; `sparse` the sparse head's [[vocabulary id, weight], …] of
 *             a model with that head (NULL otherwise)
 *   token_matrices(doc_id PK, count, dims, codes BLOB int8, scales BLOB float32 LE) WITHOUT ROWID — the late head's
 *             token vectors of documents that have them (src/retrieval/late.ts quantizeTokenMatrix), read only for the
 *             rerank prefix, so kept apart from the rows every other query path scans
 *
 * Each document's postings live in its own row, so a write is one row (two with a token matrix) whatever its length.
 * The inverted indexes are built in the shard's memory from these rows once and then follow every write
 * (shard-views.ts); v3 kept one SQLite row per (term, document) pair, which made a write cost about a hundred B-tree
 * inserts and deletes.
 *
 * Migrations: every CREATE is `IF NOT EXISTS`, so an older database gains the newer tables on first open. A v3
 * database (postings and sparse_postings tables) gains the `terms` and `sparse` columns, filled from those tables in
 * one statement each inside a transaction, which then drops them: nothing is re-embedded.
 *
 * Durable Object SQLite allows at most 100 bound parameters per statement; multi-row statements are chunked below it.
 *
 * @module
 */
import type { Bm25CorpusStats, QuantizedTokenMatrix } from "../../../src/retrieval/index.js";
import type {
  DisplayFields,
  DocumentRef,
  MetadataJson,
  PreparedDocument,
  ScannedDocument,
  ShardStats,
  StoredDocument,
} from "./shard-api.js";

const MAX_BOUND_PARAMETERS = 99;

/** Bumped with every change to SCHEMA below; snapshots of an index (the benchmark's) are only valid for their version. */
export const SHARD_SCHEMA_VERSION = 4;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS documents (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     text TEXT NOT NULL,
     metadata TEXT,
     content_hash TEXT NOT NULL,
     model_version TEXT NOT NULL,
     dims INTEGER NOT NULL,
     dense BLOB NOT NULL,
     length INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     terms TEXT NOT NULL DEFAULT '[]',
     sparse TEXT
   )`,
  `CREATE TABLE IF NOT EXISTS token_matrices (
     doc_id TEXT PRIMARY KEY,
     count INTEGER NOT NULL,
     dims INTEGER NOT NULL,
     codes BLOB NOT NULL,
     scales BLOB NOT NULL
   ) WITHOUT ROWID`,
];

/** v3 → v4: per-document term lists from the per-pair postings tables, which are then dropped. */
const MIGRATE_V3_POSTINGS = [
  `UPDATE documents SET terms = COALESCE(
     (SELECT json_group_array(json_array(p.term, p.tf)) FROM postings p WHERE p.doc_id = documents.id), '[]')`,
  `DROP TABLE postings`,
];
const MIGRATE_V3_SPARSE = [
  `UPDATE documents SET sparse =
     (SELECT json_group_array(json_array(p.term, p.weight)) FROM sparse_postings p WHERE p.doc_id = documents.id)
   WHERE EXISTS (SELECT 1 FROM sparse_postings p WHERE p.doc_id = documents.id)`,
  `DROP TABLE sparse_postings`,
];

/**
 * A replaced or removed document's postings, which the in-memory indexes must take out of their statistics: as stored
 * (JSON), so a write pays for parsing them only when a shard has views to update.
 */
export interface PreviousPostings {
  termsJson: string;
  length: number;
  modelVersion: string;
  sparseJson: string | null;
}

/** One document's row for building the in-memory indexes. */
export interface PostingsRow {
  id: string;
  length: number;
  terms: [string, number][];
}

type DocumentRow = {
  id: string;
  title: string;
  text: string;
  metadata: string | null;
  content_hash: string;
  model_version: string;
  dims: number;
  length: number;
  updated_at: number;
};

/** The columns of a {@link DocumentRow}: everything stored but the vector. */
const DOCUMENT_COLUMNS = "id, title, text, metadata, content_hash, model_version, dims, length, updated_at";

function storedDocument(row: DocumentRow): StoredDocument {
  return {
    id: row.id,
    title: row.title,
    text: row.text,
    metadataJson: row.metadata,
    contentHash: row.content_hash,
    modelVersion: row.model_version,
    dims: row.dims,
    length: row.length,
    updatedAt: row.updated_at,
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

function placeholders(count: number): string {
  return Array.from({ length: count }, () => "?").join(", ");
}

/** Copies exactly the array's bytes (a view may sit inside a larger buffer). */
function vectorBytes(vector: Float32Array | Int8Array): ArrayBuffer {
  return vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength) as ArrayBuffer;
}

export class ShardStore {
  /** `transactionSync` is the object's `ctx.storage.transactionSync`: a migration commits whole or not at all. */
  constructor(
    private readonly sql: SqlStorage,
    transactionSync: <T>(closure: () => T) => T,
  ) {
    transactionSync(() => {
      for (const statement of SCHEMA) sql.exec(statement);
      const tables = new Set(
        sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('postings', 'sparse_postings')`).toArray().map((row) => row.name),
      );
      if (tables.has("postings")) {
        // A v3 (or older) documents table: CREATE IF NOT EXISTS above left it without the v4 columns.
        sql.exec(`ALTER TABLE documents ADD COLUMN terms TEXT NOT NULL DEFAULT '[]'`);
        sql.exec(`ALTER TABLE documents ADD COLUMN sparse TEXT`);
        for (const statement of MIGRATE_V3_POSTINGS) sql.exec(statement);
      }
      if (tables.has("sparse_postings")) for (const statement of MIGRATE_V3_SPARSE) sql.exec(statement);
    });
  }

  /** Stored (content hash, model version) per id, for the ids asked about that exist. */
  states(ids: readonly string[]): Map<string, { contentHash: string; modelVersion: string }> {
    const states = new Map<string, { contentHash: string; modelVersion: string }>();
    for (const chunk of chunks([...new Set(ids)], MAX_BOUND_PARAMETERS)) {
      const rows = this.sql.exec<{ id: string; content_hash: string; model_version: string }>(
        `SELECT id, content_hash, model_version FROM documents WHERE id IN (${placeholders(chunk.length)})`,
        ...chunk,
      );
      for (const row of rows) states.set(row.id, { contentHash: row.content_hash, modelVersion: row.model_version });
    }
    return states;
  }

  /** True when the stored copy of `ref.id` has the same content hash and model version. */
  isCurrent(ref: DocumentRef): boolean {
    const state = this.states([ref.id]).get(ref.id);
    return state !== undefined && state.contentHash === ref.contentHash && state.modelVersion === ref.modelVersion;
  }

  /**
   * Writes a document with its postings, replacing every trace of a previous version, and returns that version's
   * postings (null for a new id). Call inside a transaction.
   */
  write(document: PreparedDocument, now: number): PreviousPostings | null {
    const previous = this.previousPostings(document.id);
    this.sql.exec(`DELETE FROM token_matrices WHERE doc_id = ?`, document.id);
    const sparse = document.sparse && document.sparse.length > 0 ? JSON.stringify(document.sparse) : null;
    this.sql.exec(
      `INSERT INTO documents (id, title, text, metadata, content_hash, model_version, dims, dense, length, updated_at, terms, sparse)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET title = excluded.title, text = excluded.text, metadata = excluded.metadata,
         content_hash = excluded.content_hash, model_version = excluded.model_version, dims = excluded.dims,
         dense = excluded.dense, length = excluded.length, updated_at = excluded.updated_at, terms = excluded.terms,
         sparse = excluded.sparse`,
      document.id,
      document.title,
      document.text,
      document.metadataJson,
      document.contentHash,
      document.modelVersion,
      document.vector.length,
      vectorBytes(document.vector),
      document.length,
      now,
      JSON.stringify(document.terms),
      sparse,
    );
    const tokens = document.tokens;
    // An empty matrix scores as the floor, exactly as a missing one does (late.ts): nothing worth a row.
    if (tokens && tokens.count > 0) {
      this.sql.exec(
        `INSERT INTO token_matrices (doc_id, count, dims, codes, scales) VALUES (?, ?, ?, ?, ?)`,
        document.id,
        tokens.count,
        tokens.dims,
        vectorBytes(tokens.data),
        vectorBytes(tokens.scales),
      );
    }
    return previous;
  }

  /** Removes a document and every trace of it, returning its postings; null when it did not exist. Call inside a transaction. */
  remove(id: string): PreviousPostings | null {
    const previous = this.previousPostings(id);
    if (!previous) return null;
    this.sql.exec(`DELETE FROM token_matrices WHERE doc_id = ?`, id);
    this.sql.exec(`DELETE FROM documents WHERE id = ?`, id);
    return previous;
  }

  private previousPostings(id: string): PreviousPostings | null {
    const row = this.sql
      .exec<{ terms: string; length: number; model_version: string; sparse: string | null }>(
        `SELECT terms, length, model_version, sparse FROM documents WHERE id = ?`,
        id,
      )
      .toArray()[0];
    return row ? { termsJson: row.terms, length: row.length, modelVersion: row.model_version, sparseJson: row.sparse } : null;
  }

  /** Every vector made by `modelVersion` that is at least `minDims` wide, in a stable order. */
  vectors(modelVersion: string, minDims: number): { ids: string[]; vectors: Float32Array[] } {
    const ids: string[] = [];
    const vectors: Float32Array[] = [];
    const rows = this.sql.exec<{ id: string; dense: ArrayBuffer }>(
      `SELECT id, dense FROM documents WHERE model_version = ? AND dims >= ? ORDER BY id`,
      modelVersion,
      minDims,
    );
    for (const row of rows) {
      ids.push(row.id);
      vectors.push(new Float32Array(row.dense));
    }
    return { ids, vectors };
  }

  corpusStats(): Bm25CorpusStats {
    const row = this.sql.exec<{ n: number; avgdl: number | null }>(`SELECT COUNT(*) AS n, AVG(length) AS avgdl FROM documents`).one();
    return { docCount: row.n, avgDocLength: row.avgdl ?? 0 };
  }

  /** Every document's id, BM25 length and terms, in id order: the rows of the in-memory indexes. */
  *postingsRows(): Generator<PostingsRow> {
    for (const row of this.sql.exec<{ id: string; length: number; terms: string }>(`SELECT id, length, terms FROM documents ORDER BY id`)) {
      yield { id: row.id, length: row.length, terms: JSON.parse(row.terms) as [string, number][] };
    }
  }

  /** The sparse terms of every document `modelVersion` made that has them (another version's head scores in another space). */
  *sparseRows(modelVersion: string): Generator<{ id: string; sparse: [number, number][] }> {
    for (const row of this.sql.exec<{ id: string; sparse: string }>(
      `SELECT id, sparse FROM documents WHERE model_version = ? AND sparse IS NOT NULL`,
      modelVersion,
    )) {
      yield { id: row.id, sparse: JSON.parse(row.sparse) as [number, number][] };
    }
  }

  /** Every document's metadata JSON (null for none), for building a filter mask. */
  metadata(): { id: string; metadataJson: MetadataJson }[] {
    return this.sql
      .exec<{ id: string; metadata: string | null }>(`SELECT id, metadata FROM documents`)
      .toArray()
      .map((row) => ({ id: row.id, metadataJson: row.metadata }));
  }

  /** The token matrices of the given documents that `modelVersion` made, keyed by id (see token_matrices above). */
  tokenMatrices(ids: readonly string[], modelVersion: string): Map<string, QuantizedTokenMatrix> {
    const out = new Map<string, QuantizedTokenMatrix>();
    for (const chunk of chunks([...new Set(ids)], MAX_BOUND_PARAMETERS - 1)) {
      const rows = this.sql.exec<{ doc_id: string; count: number; dims: number; codes: ArrayBuffer; scales: ArrayBuffer }>(
        `SELECT t.doc_id, t.count, t.dims, t.codes, t.scales FROM token_matrices t JOIN documents d ON d.id = t.doc_id
         WHERE d.model_version = ? AND t.doc_id IN (${placeholders(chunk.length)})`,
        modelVersion,
        ...chunk,
      );
      for (const row of rows) {
        out.set(row.doc_id, { count: row.count, dims: row.dims, data: new Int8Array(row.codes), scales: new Float32Array(row.scales) });
      }
    }
    return out;
  }

  /** The display fields of the given documents, keyed by id. */
  fields(ids: readonly string[]): Map<string, DisplayFields> {
    const out = new Map<string, DisplayFields>();
    for (const chunk of chunks([...new Set(ids)], MAX_BOUND_PARAMETERS)) {
      const rows = this.sql.exec<{ id: string; title: string; text: string; metadata: string | null }>(
        `SELECT id, title, text, metadata FROM documents WHERE id IN (${placeholders(chunk.length)})`,
        ...chunk,
      );
      for (const row of rows) out.set(row.id, { title: row.title, text: row.text, metadataJson: row.metadata });
    }
    return out;
  }

  get(id: string): StoredDocument | null {
    const row = this.sql.exec<DocumentRow>(`SELECT ${DOCUMENT_COLUMNS} FROM documents WHERE id = ?`, id).toArray()[0];
    return row ? storedDocument(row) : null;
  }

  /** The stored documents among `ids`, in no particular order. */
  documents(ids: readonly string[]): StoredDocument[] {
    const out: StoredDocument[] = [];
    for (const chunk of chunks([...new Set(ids)], MAX_BOUND_PARAMETERS)) {
      const rows = this.sql.exec<DocumentRow>(`SELECT ${DOCUMENT_COLUMNS} FROM documents WHERE id IN (${placeholders(chunk.length)})`, ...chunk);
      for (const row of rows) out.push(storedDocument(row));
    }
    return out;
  }

  /**
   * Up to `limit` documents with ids after `afterId` (all when null), in id order — a range read of the primary key's
   * index, so a page costs its own rows whatever its position in the table.
   */
  scan(afterId: string | null, limit: number): ScannedDocument[] {
    const rows =
      afterId === null
        ? this.sql.exec<{ id: string; content_hash: string; model_version: string }>(
            `SELECT id, content_hash, model_version FROM documents ORDER BY id LIMIT ?`,
            limit,
          )
        : this.sql.exec<{ id: string; content_hash: string; model_version: string }>(
            `SELECT id, content_hash, model_version FROM documents WHERE id > ? ORDER BY id LIMIT ?`,
            afterId,
            limit,
          );
    return rows.toArray().map((row) => ({ id: row.id, contentHash: row.content_hash, modelVersion: row.model_version }));
  }

  /** The counts SQL answers cheaply; the shard adds the postings counts from its in-memory indexes. */
  documentStats(): { documents: number; avgDocLength: number; modelVersions: Record<string, number> } {
    const { docCount, avgDocLength } = this.corpusStats();
    const modelVersions: Record<string, number> = {};
    for (const row of this.sql.exec<{ model_version: string; n: number }>(
      `SELECT model_version, COUNT(*) AS n FROM documents GROUP BY model_version ORDER BY model_version`,
    )) {
      modelVersions[row.model_version] = row.n;
    }
    return { documents: docCount, avgDocLength, modelVersions };
  }

  /** (term, document) pairs of the sparse head over every stored document. */
  sparsePostingCount(): number {
    return this.sql.exec<{ n: number | null }>(`SELECT SUM(json_array_length(sparse)) AS n FROM documents WHERE sparse IS NOT NULL`).one().n ?? 0;
  }

}

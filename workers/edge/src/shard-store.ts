/**
 * SQLite persistence of one index shard (Durable Object `ctx.storage.sql`): the schema and every statement, so the
 * Durable Object class reads as policy (caching, ranking) and this file as storage.
 *
 * Schema (v3):
 *   documents(id PK, title, text, metadata JSON, content_hash, model_version, dims, dense BLOB float32 LE, length,
 *             updated_at)   — `length` is the BM25 document length (Σ tf of its lexical terms)
 *   postings(term, doc_id, tf) PK(term, doc_id) WITHOUT ROWID — the inverted index, clustered by term for lookups,
 *             with a doc_id index for deletes
 *   token_matrices(doc_id PK, count, dims, codes BLOB int8, scales BLOB float32 LE) WITHOUT ROWID — v2: the late
 *             head's token vectors of documents that have them (src/retrieval/late.ts quantizeTokenMatrix), read only
 *             for the rerank prefix, so kept apart from the rows every other query path scans
 *   sparse_postings(term INTEGER, doc_id, weight REAL) PK(term, doc_id) WITHOUT ROWID — v3: the sparse head's term
 *             weights of documents that have them (term = vocabulary id), clustered by term because the sparse list
 *             reads all postings of each query term; a doc_id index for deletes and replacements, as for postings
 *
 * Migrations: every statement is `IF NOT EXISTS`, so an older database gains the newer tables (and their index) on first
 * open and keeps working: its documents simply have no token matrices or sparse postings until they are re-indexed by
 * a model with a late or sparse head.
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
export const SHARD_SCHEMA_VERSION = 3;

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
     updated_at INTEGER NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS postings (
     term TEXT NOT NULL,
     doc_id TEXT NOT NULL,
     tf INTEGER NOT NULL,
     PRIMARY KEY (term, doc_id)
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS postings_by_doc ON postings (doc_id)`,
  `CREATE TABLE IF NOT EXISTS token_matrices (
     doc_id TEXT PRIMARY KEY,
     count INTEGER NOT NULL,
     dims INTEGER NOT NULL,
     codes BLOB NOT NULL,
     scales BLOB NOT NULL
   ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS sparse_postings (
     term INTEGER NOT NULL,
     doc_id TEXT NOT NULL,
     weight REAL NOT NULL,
     PRIMARY KEY (term, doc_id)
   ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS sparse_postings_by_doc ON sparse_postings (doc_id)`,
];

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
  constructor(private readonly sql: SqlStorage) {
    for (const statement of SCHEMA) sql.exec(statement);
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

  /** Writes a document and its postings, replacing every trace of a previous version. Call inside a transaction. */
  write(document: PreparedDocument, now: number): void {
    this.sql.exec(`DELETE FROM postings WHERE doc_id = ?`, document.id);
    this.sql.exec(`DELETE FROM token_matrices WHERE doc_id = ?`, document.id);
    this.sql.exec(`DELETE FROM sparse_postings WHERE doc_id = ?`, document.id);
    this.sql.exec(
      `INSERT INTO documents (id, title, text, metadata, content_hash, model_version, dims, dense, length, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET title = excluded.title, text = excluded.text, metadata = excluded.metadata,
         content_hash = excluded.content_hash, model_version = excluded.model_version, dims = excluded.dims,
         dense = excluded.dense, length = excluded.length, updated_at = excluded.updated_at`,
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
    );
    for (const chunk of chunks(document.terms, Math.floor(MAX_BOUND_PARAMETERS / 3))) {
      this.sql.exec(
        `INSERT INTO postings (term, doc_id, tf) VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")}`,
        ...chunk.flatMap(([term, tf]) => [term, document.id, tf]),
      );
    }
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
    for (const chunk of chunks(document.sparse ?? [], Math.floor(MAX_BOUND_PARAMETERS / 3))) {
      this.sql.exec(
        `INSERT INTO sparse_postings (term, doc_id, weight) VALUES ${chunk.map(() => "(?, ?, ?)").join(", ")}`,
        ...chunk.flatMap(([term, weight]) => [term, document.id, weight]),
      );
    }
  }

  /** Removes a document and every trace of it; false when it did not exist. Call inside a transaction. */
  remove(id: string): boolean {
    const existed = this.sql.exec(`SELECT 1 AS found FROM documents WHERE id = ?`, id).toArray().length > 0;
    if (!existed) return false;
    this.sql.exec(`DELETE FROM postings WHERE doc_id = ?`, id);
    this.sql.exec(`DELETE FROM token_matrices WHERE doc_id = ?`, id);
    this.sql.exec(`DELETE FROM sparse_postings WHERE doc_id = ?`, id);
    this.sql.exec(`DELETE FROM documents WHERE id = ?`, id);
    return true;
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

  /** Every document's id and BM25 length, in id order: the document table of the in-memory lexical index. */
  documentLengths(): { ids: string[]; lengths: Uint32Array } {
    const ids: string[] = [];
    const lengths: number[] = [];
    for (const row of this.sql.exec<{ id: string; length: number }>(`SELECT id, length FROM documents ORDER BY id`)) {
      ids.push(row.id);
      lengths.push(row.length);
    }
    return { ids, lengths: Uint32Array.from(lengths) };
  }

  /** One term's postings, read through the (term, doc_id) primary key without touching the documents table. */
  termPostings(term: string): { docIds: string[]; tfs: number[] } {
    const docIds: string[] = [];
    const tfs: number[] = [];
    for (const row of this.sql.exec<{ doc_id: string; tf: number }>(`SELECT doc_id, tf FROM postings WHERE term = ?`, term)) {
      docIds.push(row.doc_id);
      tfs.push(row.tf);
    }
    return { docIds, tfs };
  }

  /**
   * One sparse term's postings among the documents `modelVersion` made (another version's head scores in another
   * space), through the (term, doc_id) primary key.
   */
  sparsePostings(term: number, modelVersion: string): { docIds: string[]; weights: number[] } {
    const docIds: string[] = [];
    const weights: number[] = [];
    for (const row of this.sql.exec<{ doc_id: string; weight: number }>(
      `SELECT p.doc_id, p.weight FROM sparse_postings p JOIN documents d ON d.id = p.doc_id WHERE p.term = ? AND d.model_version = ?`,
      term,
      modelVersion,
    )) {
      docIds.push(row.doc_id);
      weights.push(row.weight);
    }
    return { docIds, weights };
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

  stats(): ShardStats {
    const { docCount, avgDocLength } = this.corpusStats();
    const postings = this.sql.exec<{ n: number; terms: number }>(`SELECT COUNT(*) AS n, COUNT(DISTINCT term) AS terms FROM postings`).one();
    const modelVersions: Record<string, number> = {};
    for (const row of this.sql.exec<{ model_version: string; n: number }>(
      `SELECT model_version, COUNT(*) AS n FROM documents GROUP BY model_version ORDER BY model_version`,
    )) {
      modelVersions[row.model_version] = row.n;
    }
    const sparsePostings = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM sparse_postings`).one().n;
    return { documents: docCount, terms: postings.terms, postings: postings.n, avgDocLength, modelVersions, ...(sparsePostings > 0 ? { sparsePostings } : {}) };
  }
}

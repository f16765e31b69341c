/**
 * What older index-shard databases looked like (workers/edge/src/shard-store.ts schema history), for the migration
 * tests: each test swaps a shard's tables for these, fills them as the old code did, and opens a ShardStore on them.
 */

/** v1: documents and per-(term, document) postings. v2 added token_matrices, v3 sparse_postings (and its index). */
const V1 = [
  `CREATE TABLE documents (
     id TEXT PRIMARY KEY, title TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT, content_hash TEXT NOT NULL,
     model_version TEXT NOT NULL, dims INTEGER NOT NULL, dense BLOB NOT NULL, length INTEGER NOT NULL, updated_at INTEGER NOT NULL
   )`,
  `CREATE TABLE postings (term TEXT NOT NULL, doc_id TEXT NOT NULL, tf INTEGER NOT NULL, PRIMARY KEY (term, doc_id)) WITHOUT ROWID`,
  `CREATE INDEX postings_by_doc ON postings (doc_id)`,
];
const V2 = [
  `CREATE TABLE token_matrices (doc_id TEXT PRIMARY KEY, count INTEGER NOT NULL, dims INTEGER NOT NULL, codes BLOB NOT NULL, scales BLOB NOT NULL) WITHOUT ROWID`,
];
const V3 = [
  `CREATE TABLE sparse_postings (term INTEGER NOT NULL, doc_id TEXT NOT NULL, weight REAL NOT NULL, PRIMARY KEY (term, doc_id)) WITHOUT ROWID`,
  `CREATE INDEX sparse_postings_by_doc ON sparse_postings (doc_id)`,
];

export interface LegacyDocument {
  id: string;
  text: string;
  modelVersion: string;
  vector: Float32Array;
  terms: [string, number][];
  sparse?: [number, number][];
}

/** Replaces every shard table with the schema of `version` holding `documents`, written as that version wrote them. */
export function writeLegacyShard(sql: SqlStorage, version: 1 | 2 | 3, documents: readonly LegacyDocument[]): void {
  for (const { name } of sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'`).toArray()) {
    sql.exec(`DROP TABLE "${name}"`);
  }
  for (const statement of [...V1, ...(version >= 2 ? V2 : []), ...(version >= 3 ? V3 : [])]) sql.exec(statement);
  for (const document of documents) {
    const length = document.terms.reduce((sum, [, tf]) => sum + tf, 0);
    const dense = document.vector.buffer.slice(document.vector.byteOffset, document.vector.byteOffset + document.vector.byteLength);
    sql.exec(
      `INSERT INTO documents (id, title, text, metadata, content_hash, model_version, dims, dense, length, updated_at) VALUES (?, '', ?, NULL, ?, ?, ?, ?, ?, 0)`,
      document.id,
      document.text,
      `hash-${document.id}`,
      document.modelVersion,
      document.vector.length,
      dense,
      length,
    );
    for (const [term, tf] of document.terms) sql.exec(`INSERT INTO postings (term, doc_id, tf) VALUES (?, ?, ?)`, term, document.id, tf);
    if (version >= 3) {
      for (const [term, weight] of document.sparse ?? []) sql.exec(`INSERT INTO sparse_postings (term, doc_id, weight) VALUES (?, ?, ?)`, term, document.id, weight);
    }
  }
}

/** Table names of the shard, sorted (workerd's own `_cf_` tables left out). */
export function shardTables(sql: SqlStorage): string[] {
  return sql
    .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' ORDER BY name`)
    .toArray()
    .map((row) => row.name);
}

/**
 * The index shard's RPC contract, apart from the Durable Object class so that the app (and tests) can depend on it
 * without importing `cloudflare:workers`. `IndexShard` implements it; `DurableObjectStub<IndexShard>` is its client.
 *
 * The shard stores and ranks; it does not embed or tokenize. Callers hand it prepared documents (vector + term
 * counts, and sparse terms from a model with the sparse head) and prepared queries (vector + terms + sparse terms), so
 * the model runs once in the stateless worker, not in the shard.
 *
 * @module
 */

import type { QuantizedTokenMatrix } from "../../../src/retrieval/late.js";

/**
 * Metadata crosses the RPC boundary as JSON text (a JSON object, or null for none), exactly as it is stored: the shard
 * never looks inside it, and an arbitrary JSON value has no type the RPC stub mapping can check (a recursive JSON type
 * makes it "excessively deep", `unknown` makes it `never`).
 */
export type MetadataJson = string | null;

export type SearchMode = "dense" | "lexical" | "sparse" | "hybrid";

/** Learned sparse terms as [vocabulary id, weight > 0] pairs, ascending by id (src/retrieval/sparse.ts `sparsePairs`). */
export type SparseTermPairs = [number, number][];

/** How hybrid mode fuses its lists: convex combination of normalised scores, or weighted reciprocal rank fusion. */
export type FusionMethod = "convex" | "rrf";

/** Which documents a caller already holds in this exact form; the shard answers which of them need (re)indexing. */
export interface DocumentRef {
  id: string;
  contentHash: string;
  modelVersion: string;
}

/**
 * One entry of a scan: enough to tell whether another index holds the same document. It has {@link DocumentRef}'s
 * shape, so a page of one index's scan can go straight to another index's `pending`.
 */
export interface ScannedDocument {
  id: string;
  contentHash: string;
  modelVersion: string;
}

/** A document ready to store: the text fields plus its embedding and lexical term counts. */
export interface PreparedDocument extends DocumentRef {
  title: string;
  text: string;
  metadataJson: MetadataJson;
  /** L2-normalised embedding (little-endian float32 once stored), `dims` long. */
  vector: Float32Array;
  /** [term, tf] for every distinct lexical term of title + text. */
  terms: [string, number][];
  /** Document length in lexical terms (Σ tf), for BM25 length normalisation. */
  length: number;
  /**
   * The late-interaction head's token vectors, int8 with one scale per token (src/retrieval/late.ts), for the rerank
   * stage. Only from a model with a trained late head: absent otherwise (an untrained stand-in is not worth storing).
   */
  tokens?: QuantizedTokenMatrix;
  /**
   * The sparse head's term weights, for the sparse list. Only from a model with the head (and an index that stores
   * them): absent otherwise, and then the document has no sparse postings.
   */
  sparse?: SparseTermPairs;
}

export interface UpsertOutcome {
  /** Ids stored or replaced. */
  upserted: string[];
  /** Ids skipped because the same (content hash, model version) was already stored. */
  unchanged: string[];
}

export interface FusionWeights {
  dense?: number;
  lexical?: number;
  sparse?: number;
}

/** Corpus-wide BM25 statistics, summed over every shard (see {@link ShardApi.termStats}). */
export interface CorpusTermStats {
  docCount: number;
  avgDocLength: number;
  /** Document frequency per query term over the whole corpus. */
  df: Record<string, number>;
}

/** One shard's share of a search: each list's best `depth` documents of this shard, unfused. */
export interface ShardCandidatesRequest {
  lists: { dense: boolean; lexical: boolean; sparse?: boolean };
  depth: number;
  /** Query embedding (unit length, the search width) — required for the dense list. */
  vector?: Float32Array;
  /** Only vectors (and sparse terms) made by this model version are comparable with the query's. */
  modelVersion?: string;
  /** The query's learned sparse terms (distinct ids) — required for the sparse list. */
  sparseTerms?: SparseTermPairs;
  /** Query word pieces — required for the lexical list. */
  terms?: string[];
  /** The whole corpus's BM25 statistics, so scores compare across shards; absent → this shard's own (one shard). */
  corpus?: CorpusTermStats;
  /**
   * A validated metadata filter as JSON text (see src/retrieval/metadata-filter.ts): a recursive filter type has no
   * shape the RPC stub mapping can check, so it travels as text, like metadata.
   */
  filterJson?: string;
}

export interface ShardCandidatesResult {
  dense?: { id: string; score: number }[];
  lexical?: { id: string; score: number }[];
  sparse?: { id: string; score: number }[];
  /** Milliseconds: building in-memory views after a write, the filter mask, each list (0 for a list not read). */
  timings: { viewMs: number; filterMs: number; denseMs: number; lexicalMs: number; sparseMs: number };
  /** The shard's write generation the lists were read at (see {@link ShardTermStats.generation}). */
  generation: string;
}

/** What the query terms and corpus size look like in one shard (summed by the caller for global BM25). */
export interface ShardTermStats {
  docCount: number;
  totalLength: number;
  df: Record<string, number>;
  /** Opaque; equal in two answers only if no write reached the shard in between (statistics still hold). */
  generation: string;
}

export interface DisplayFields {
  title: string;
  text: string;
  metadataJson: MetadataJson;
}

export interface StoredDocument {
  id: string;
  title: string;
  text: string;
  metadataJson: MetadataJson;
  contentHash: string;
  modelVersion: string;
  dims: number;
  length: number;
  /** Unix milliseconds of the last write. */
  updatedAt: number;
}

export interface ShardStats {
  documents: number;
  /** Distinct lexical terms. */
  terms: number;
  postings: number;
  avgDocLength: number;
  /** Documents per model version (several during a model switch). */
  modelVersions: Record<string, number>;
  /** Learned sparse (term, document) postings; absent when the shard holds none (no model with the sparse head). */
  sparsePostings?: number;
}

/** A shard's share of a reranked page: token matrices and display fields by id (ids it does not hold are absent). */
export interface RerankInputs {
  tokens: Record<string, QuantizedTokenMatrix>;
  fields: Record<string, DisplayFields>;
}

/** The client view of a shard: every call is asynchronous (RPC). */
export interface ShardApi {
  pending(refs: DocumentRef[]): Promise<string[]>;
  upsert(documents: PreparedDocument[]): Promise<UpsertOutcome>;
  deleteMany(ids: string[]): Promise<{ deleted: string[]; missing: string[] }>;
  termStats(terms: string[]): Promise<ShardTermStats>;
  candidates(request: ShardCandidatesRequest): Promise<ShardCandidatesResult>;
  /**
   * The stored token matrices of the given ids that this shard holds and that `modelVersion` made (another version's
   * head is another vector space), by id; ids without one are absent.
   */
  tokenMatrices(ids: string[], modelVersion: string): Promise<Record<string, QuantizedTokenMatrix>>;
  /** Display fields of the given ids that this shard holds, by id. */
  fields(ids: string[]): Promise<Record<string, DisplayFields>>;
  /**
   * {@link tokenMatrices} of `tokenIds` and {@link fields} of `fieldIds` in one round trip: a reranked search knows
   * which documents its page can hold before the rerank orders them, so it need not wait for a second fan-out.
   */
  rerankInputs(tokenIds: string[], fieldIds: string[], modelVersion: string): Promise<RerankInputs>;
  get(id: string): Promise<StoredDocument | null>;
  /** The stored documents among `ids` that this shard holds, in no particular order; missing ids are absent. */
  documents(ids: string[]): Promise<StoredDocument[]>;
  /**
   * Up to `limit` of this shard's documents with ids after `afterId` (from the first when null), in id order: one
   * shard's share of `ShardedIndex.scan`, which resumes each page after the last id it returned.
   */
  scan(afterId: string | null, limit: number): Promise<ScannedDocument[]>;
  stats(): Promise<ShardStats>;
}

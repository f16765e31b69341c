/**
 * The index shard's RPC contract, apart from the Durable Object class so that the app (and tests) can depend on it
 * without importing `cloudflare:workers`. `IndexShard` implements it; `DurableObjectStub<IndexShard>` is its client.
 *
 * The shard stores and ranks; it does not embed or tokenize. Callers hand it prepared documents (vector + term
 * counts) and prepared queries (vector + terms), so the model runs once in the stateless worker, not in the shard.
 *
 * @module
 */

/**
 * Metadata crosses the RPC boundary as JSON text (a JSON object, or null for none), exactly as it is stored: the shard
 * never looks inside it, and an arbitrary JSON value has no type the RPC stub mapping can check (a recursive JSON type
 * makes it "excessively deep", `unknown` makes it `never`).
 */
export type MetadataJson = string | null;

export type SearchMode = "dense" | "lexical" | "hybrid";

/** How hybrid mode fuses its lists: convex combination of normalised scores, or weighted reciprocal rank fusion. */
export type FusionMethod = "convex" | "rrf";

/** Which documents a caller already holds in this exact form; the shard answers which of them need (re)indexing. */
export interface DocumentRef {
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
}

export interface ShardSearchRequest {
  mode: SearchMode;
  topK: number;
  /** Query embedding (unit length) — required for dense and hybrid. */
  vector?: Float32Array;
  /** Only vectors made by this model version are comparable with the query. */
  modelVersion?: string;
  /** Query word pieces — required for lexical and hybrid. */
  terms?: string[];
  /** Hybrid fusion (default "convex"); single-list modes ignore it. */
  fusion?: FusionMethod;
  /**
   * Overrides of the chosen fusion's default weights: `fusionDefault.weights` when that is of the chosen method, else
   * convex lexical 0.7, dense 0.3; rrf lexical 3, dense 1.
   */
  weights?: FusionWeights;
  /**
   * The model's hybrid default (its manifest's tuned fusion): the method when `fusion` is absent, and that method's
   * default weights. Sent by the caller because the shard holds no model; absent → the built-in constants.
   */
  fusionDefault?: { method: FusionMethod; weights: { dense: number; lexical: number } };
  /** How many candidates each list contributes to fusion (default: max(4·topK, 50), capped at 500). */
  candidates?: number;
}

export interface ShardHit {
  id: string;
  /** Fused score in hybrid mode (convex or RRF, as requested); the list's own score (cosine or BM25) otherwise. */
  score: number;
  ranks: { dense?: number; lexical?: number };
  scores: { dense?: number; lexical?: number };
  title: string;
  text: string;
  metadataJson: MetadataJson;
}

export interface ShardSearchResult {
  hits: ShardHit[];
  timings: { matrixMs: number; denseMs: number; lexicalMs: number; fuseMs: number; totalMs: number };
  /** Size of each candidate list before fusion. */
  candidates: { dense: number; lexical: number };
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
}

/** The client view of a shard: every call is asynchronous (RPC). */
export interface ShardApi {
  pending(refs: DocumentRef[]): Promise<string[]>;
  upsert(documents: PreparedDocument[]): Promise<UpsertOutcome>;
  delete(id: string): Promise<{ deleted: boolean }>;
  search(request: ShardSearchRequest): Promise<ShardSearchResult>;
  get(id: string): Promise<StoredDocument | null>;
  stats(): Promise<ShardStats>;
}

/**
 * The index the app talks to, whatever holds the vectors: the embedded default (SQLite Durable Object shards, queried
 * in parallel — sharded-index.ts) or Upstash Vector in production (upstash-index.ts). Routes and the indexer depend
 * on this interface only, so the backend is a configuration choice, not a code path.
 *
 * Contract every backend keeps:
 * - Writes are idempotent by (id, content hash, model version): `pending` names the documents worth embedding, and
 *   `upsert` of an identical document reports it unchanged.
 * - `delete` removes every trace of a document (vector, postings, stored fields).
 * - `search` returns the page [offset, offset + topK) of one ranking, filtered by metadata before ranking (a filter
 *   never shortens a page while more matching documents exist), with the fused score and each list's rank and score.
 * - A backend that can rerank by late interaction says so (`lateRerank: true`) and then honours `request.rerank`: the
 *   first-stage ranking's top k rescored by src/retrieval/late.ts `fuseLateInteraction`, the same k whatever the page.
 *   Upstash does not store token matrices (they would have to ride in its per-vector metadata, several kB each), so it
 *   leaves `lateRerank` unset and the search service refuses a rerank request for it.
 * - A backend that stores learned sparse postings says so (`learnedSparse: true`): the indexer then writes documents'
 *   sparse terms, and `search` reads the sparse list whenever the request carries `sparseTerms`. Upstash's sparse slot
 *   already holds BM25's weights (upstash-sparse.ts), so it leaves `learnedSparse` unset and refuses sparse requests.
 * - `scan` pages through every document in an order of the backend's choosing, stable across pages, and `documents`
 *   reads many stored documents at once: what a model switch needs to walk one index and re-embed into another
 *   without knowing where either keeps its documents.
 *
 * @module
 */
import type { LateFusionWeights, TokenMatrix } from "../../../src/retrieval/late.js";
import type { MetadataFilter } from "../../../src/retrieval/metadata-filter.js";
import type {
  DocumentRef,
  FusionMethod,
  FusionWeights,
  MetadataJson,
  PreparedDocument,
  ScannedDocument,
  SearchMode,
  SparseTermPairs,
  StoredDocument,
  UpsertOutcome,
} from "./shard-api.js";

export type { ScannedDocument } from "./shard-api.js";

/**
 * How deep every search reads each list, whatever the page — and so the deepest result a page can reach. Fusion over
 * truncated lists (and the Hamming stage's choice of rows to rescore) depends on the depth, so only a depth fixed for
 * every page makes consecutive pages tile one ranking: no document twice, none skipped. 100 rather than 500: reading
 * 500 per list per shard tripled the sharded index's search time at 10k documents (RPC and fusion of 4 × 2 × 500
 * candidates) for results past the first 100, which a search API rarely serves; filters narrow further.
 */
export const PAGE_DEPTH = 100;

/** The largest page `scan` serves. */
export const MAX_SCAN_LIMIT = 1_000;

/** Refuses a scan page size outside 1…{@link MAX_SCAN_LIMIT}, the same way in every backend. */
export function checkScanLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SCAN_LIMIT) {
    throw new RangeError(`the scan limit must be a whole number from 1 to ${MAX_SCAN_LIMIT}, got ${limit}`);
  }
}

export interface IndexSearchRequest {
  mode: SearchMode;
  /** Page size. */
  topK: number;
  /** Results to skip (pagination); offset + topK is bounded by the fusion candidate cap. */
  offset: number;
  /** Query embedding (unit length) — required for dense and hybrid. */
  vector?: Float32Array;
  /** Only vectors made by this model version are comparable with the query. */
  modelVersion?: string;
  /** Query word pieces — required for lexical and hybrid. */
  terms?: string[];
  /**
   * The query's learned sparse terms (from the model version in `modelVersion`) — required for sparse mode; in hybrid
   * mode they add the sparse list to the fusion. Backends with `learnedSparse` only.
   */
  sparseTerms?: SparseTermPairs;
  fusion?: FusionMethod;
  weights?: FusionWeights;
  fusionDefault?: { method: FusionMethod; weights: { dense: number; lexical: number } };
  /** How deep each list is read (default {@link PAGE_DEPTH} for every page, so pages tile one ranking). */
  candidates?: number;
  /** Only documents whose metadata matches take part. */
  filter?: MetadataFilter;
  /** Late-interaction rerank of the first stage's top `k` (backends with `lateRerank` only); absent → none. */
  rerank?: IndexRerank;
}

export interface IndexRerank {
  /** Documents rescored: the first stage's best k (≤ MAX_LATE_RERANK_DEPTH), independent of the page. */
  k: number;
  weights: LateFusionWeights;
  /** The query's token vectors, from the model (and model version) that made the query vector. */
  queryTokens: TokenMatrix;
}

export interface IndexHit {
  id: string;
  /** Fused score in hybrid mode; the list's own score (cosine, BM25 or the sparse dot product) otherwise. */
  score: number;
  /** late: rank by MaxSim alone within the reranked prefix (only documents in it that have a token matrix). */
  ranks: { dense?: number; lexical?: number; sparse?: number; late?: number };
  /** late: the MaxSim score. */
  scores: { dense?: number; lexical?: number; sparse?: number; late?: number };
  title: string;
  text: string;
  metadataJson: MetadataJson;
}

export interface IndexSearchResult {
  hits: IndexHit[];
  /** True when the ranking continues past this page (ask again with offset + topK). */
  hasMore: boolean;
  /** Size of each candidate list before fusion, over all shards (sparse: only when the sparse list was read). */
  candidates: { dense: number; lexical: number; sparse?: number };
  /** Milliseconds per stage of the index's own work (names depend on the backend). */
  timings: Record<string, number>;
}

export interface IndexStats {
  backend: "durable-objects" | "upstash";
  documents: number;
  /** Shards (Durable Objects) holding the index; 1 for a backend that shards internally. */
  shards: number;
  /** Documents per model version (several during a model switch). */
  modelVersions: Record<string, number>;
}

export interface SearchIndex {
  /** True when `search` honours `request.rerank` (the backend stores token matrices); absent or false → it cannot. */
  readonly lateRerank?: boolean;
  /** True when the backend stores learned sparse postings and ranks `request.sparseTerms`; absent or false → it cannot. */
  readonly learnedSparse?: boolean;
  /** Ids among `refs` whose stored copy is missing or differs — the only documents worth embedding. */
  pending(refs: DocumentRef[]): Promise<string[]>;
  upsert(documents: PreparedDocument[]): Promise<UpsertOutcome>;
  delete(ids: string[]): Promise<{ deleted: string[]; missing: string[] }>;
  get(id: string): Promise<StoredDocument | null>;
  /** The stored documents among `ids` (any number; missing ids are simply absent), in no particular order. */
  documents(ids: string[]): Promise<StoredDocument[]>;
  /**
   * One page of the index's documents in a stable order (every document exactly once over a full scan while no writes
   * happen; concurrent writes may or may not be seen). `cursor` null starts a scan; the answer's `cursor` is null after
   * the last page, and a page is never empty while its `cursor` is not null. `limit` 1…{@link MAX_SCAN_LIMIT}. A
   * cursor belongs to the index that made it; anything else is refused with an error.
   */
  scan(cursor: string | null, limit: number): Promise<{ documents: ScannedDocument[]; cursor: string | null }>;
  search(request: IndexSearchRequest): Promise<IndexSearchResult>;
  stats(): Promise<IndexStats>;
}

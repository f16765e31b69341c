/**
 * The retrieval core: dense cosine top-k, BM25 over any inverted index, learned sparse terms, fusion (convex combination of normalised
 * scores by default, weighted reciprocal rank fusion on request) and late-interaction (MaxSim) reranking.
 * Platform-neutral (no `node:` imports, no Workers globals).
 *
 * @module
 */
export * from "./types.js";
export { TopK, type Scored } from "./topk.js";
export { bestRowPerOwner, denseSearch, packMatrix, prefixNormalize } from "./dense.js";
export {
  BM25_DEFAULTS,
  bm25Document,
  bm25DocumentScore,
  bm25Idf,
  bm25Scores,
  bm25Search,
  buildBm25Postings,
  termFrequencies,
  type Bm25Document,
  type InMemoryBm25,
} from "./bm25.js";
export { PackedBm25, type Bm25GlobalStats, type PackedBm25SearchOptions, type PackedPostings } from "./bm25-packed.js";
export { LiveDenseIndex, LiveLexicalIndex, LiveSparseIndex, ensureCapacity, type LiveTermStats } from "./live-index.js";
export {
  DEFAULT_CONVEX_WEIGHTS,
  DEFAULT_RRF_WEIGHTS,
  RRF_K,
  THEORETICAL_MIN_SCORES,
  convexCombinationFusion,
  reciprocalRankFusion,
  type ConvexFusionOptions,
  type FusionOptions,
} from "./fusion.js";
export {
  BUILT_IN_FUSION_DEFAULT,
  DEFAULT_FUSION,
  combineRankings,
  hybridWeights,
  listsFor,
  fusionDefaultFor,
  resolveFusion,
  sparseWeight,
  type FusionDefault,
  type FusionMethod,
  type HybridList,
  type HybridOptions,
  type ListSelection,
  type RankingList,
  type SearchMode,
} from "./hybrid.js";
export {
  DEFAULT_LATE_RERANK_DEPTH,
  DEFAULT_LATE_WEIGHTS,
  MAX_LATE_RERANK_DEPTH,
  fuseLateInteraction,
  isQuantized,
  lateRerank,
  maxSim,
  prefixMaxSims,
  quantizeTokenMatrix,
  quantizedTokenMatrixBytes,
  type LateFusionOptions,
  type LateFusionWeights,
  type QuantizedTokenMatrix,
  type TokenMatrix,
} from "./late.js";
export { lexicalTerms } from "./lexical.js";
export { documentText } from "./documents.js";
export { DEFAULT_SNIPPET_CHARS, makeSnippet } from "./snippet.js";
export {
  DEFAULT_RESCORE_FACTOR,
  binaryRescoreSearch,
  compressedBytesPerVector,
  hammingDistance,
  hammingSearch,
  int8Dot,
  int8Search,
  packSignBits,
  popcount32,
  quantizeInt8Rows,
  rescoreInt8,
  signWords,
  type Int8Rows,
} from "./compressed.js";
export { explainedVariance, fitPca, pcaProject, pcaProjectRows, symmetricEigen, type PcaModel, type SymmetricEigen } from "./pca.js";
export { SPARSE_MIN_SCORE, SparseIndex, packedSparseSearch, sparsePairs, type PackedSparsePostings, type SparseVector } from "./sparse.js";
export {
  FILTER_OPERATORS,
  FILTER_PATH,
  matchesFilter,
  type FilterCondition,
  type FilterScalar,
  type MetadataFilter,
} from "./metadata-filter.js";

/**
 * The retrieval core: dense cosine top-k, BM25 over any inverted index, and weighted reciprocal rank fusion.
 * Platform-neutral (no `node:` imports, no Workers globals).
 *
 * @module
 */
export * from "./types.js";
export { TopK, type Scored } from "./topk.js";
export { denseSearch, packMatrix, prefixNormalize } from "./dense.js";
export { BM25_DEFAULTS, bm25Idf, bm25Scores, bm25Search, termFrequencies } from "./bm25.js";
export { DEFAULT_FUSION_WEIGHTS, RRF_K, reciprocalRankFusion, type FusionOptions } from "./fusion.js";
export {
  MAX_FUSION_CANDIDATES,
  MIN_FUSION_CANDIDATES,
  candidateDepth,
  combineRankings,
  listsFor,
  type HybridList,
  type HybridOptions,
  type SearchMode,
} from "./hybrid.js";
export { lexicalTerms } from "./lexical.js";
export { documentText } from "./documents.js";
export { DEFAULT_SNIPPET_CHARS, makeSnippet } from "./snippet.js";

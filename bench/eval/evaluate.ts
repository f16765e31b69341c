/**
 * One evaluation setting over prepared indexes: rank every judged query, compute trec_eval-style metrics on the
 * 1,000-deep ranking, and time each query (its encode time from queries.ts plus this setting's own search work, which
 * includes the lexical side's tokenisation, a PCA projection or sign-bit packing of the query, and MaxSim reranking).
 *
 * Modes:
 * - bm25: BM25 over word pieces (the lexical list alone).
 * - dense: the dense list alone, in the setting's vector format and projection:
 *   float (exact cosine), int8 (scalar-quantised document vectors · float query), binary (Hamming distance of sign bits
 *   only), binary-rescore (Hamming scan for the top 10·k, k = 100, then int8 rescoring against the float query; those
 *   1,000 candidates rescored form the ranking, whose top 100 is exactly binaryRescoreSearch(…, 100)).
 * - hybrid: both lists, 1,000 deep, fused (convex by default, RRF on request) — the Worker's ranking policy. When the
 *   corpus index holds learned sparse terms (an artifact with the sparse head) and the queries carry theirs, the sparse
 *   list joins as a third, as in the Worker: with the weight in force (src/retrieval/hybrid.ts sparseWeight), and not
 *   read at all when that weight is 0. Late modes fuse their first stage the same way.
 * - late: the hybrid ranking, then its top 100 reranked by MaxSim of the query's token vectors against each document's
 *   int8 token matrix (src/retrieval/late.ts); ranks 101–1,000 keep the hybrid order. MaxSim alone: a diagnostic.
 * - hybrid+late: the Worker's rerank stage — the hybrid ranking's top k rescored by MaxSim fused with the hybrid score
 *   (src/retrieval/late.ts fuseLateInteraction, the function the Worker calls), k and weights from the setting.
 * - sparse: the learned sparse list alone (the corpus index must hold the documents' sparse terms, embedded by an
 *   artifact with the sparse head, and the queries theirs); callers check model.ts's sparseUnavailableReason first.
 */
import { progressBar } from "../progress.js";
import { averagePrecisionAt, mean, mrrAt, ndcgAt, percentile, recallAt } from "../../src/eval/metrics.js";
import { queryFlops, type TaesrArchitecture } from "../../src/model/index.js";
import {
  DEFAULT_RESCORE_FACTOR,
  bestRowPerOwner,
  bm25Search,
  MAX_LATE_RERANK_DEPTH,
  combineRankings,
  compressedBytesPerVector,
  denseSearch,
  fuseLateInteraction,
  hammingSearch,
  fusionDefaultFor,
  hybridWeights,
  int8Search,
  sparseWeight,
  lateRerank,
  lexicalTerms,
  packSignBits,
  prefixMaxSims,
  rescoreInt8,
  type FusedHit,
  type FusionDefault,
  type FusionMethod,
  type LateFusionOptions,
  type QuantizedTokenMatrix,
  type RankedHit,
  type RankingList,
} from "../../src/retrieval/index.js";
import type { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import type { DenseViews, LexicalIndex, Projection } from "./corpus-index.js";
import { judgementsOf, type EvalDataset } from "./dataset.js";
import type { EncodedQuery } from "./queries.js";

/** Depth of every ranking: the run file holds the top 1,000 per query as trec_eval expects, and the metrics are computed
 * on exactly that ranking, so `trec_eval` on the run file reproduces them. */
export const CANDIDATES = 1000;
/** How many of the first-stage ranking late interaction reranks. */
export const LATE_RERANK_DEPTH = 100;
/** Binary search: k of the two-stage search (it scans for DEFAULT_RESCORE_FACTOR · k Hamming candidates). */
export const BINARY_RESCORE_K = 100;

export type EvalMode = "bm25" | "dense" | "hybrid" | "late" | "hybrid+late" | "sparse";
export const EVAL_MODES: readonly EvalMode[] = ["bm25", "dense", "hybrid", "late", "hybrid+late", "sparse"];
export type VectorFormat = "float" | "int8" | "binary" | "binary-rescore";
export const VECTOR_FORMATS: readonly VectorFormat[] = ["float", "int8", "binary", "binary-rescore"];

export interface EvalSetting {
  mode: EvalMode;
  /** Width of the dense vectors searched (after projection). */
  dims: number;
  vectors: VectorFormat;
  projection: Projection;
  /** Hybrid and late: how the lists are fused, and weight overrides (default: the fusion's defaults). */
  fusion: FusionMethod;
  weights?: Partial<Record<RankingList, number>>;
  /**
   * The artifact's tuned fusion (manifest `retrieval.fusion`), whose weights are the defaults when `fusion` is its
   * method — as in the Worker. Absent: the built-in constants.
   */
  defaults?: FusionDefault;
  /** hybrid+late: the rerank depth and weights (the artifact's tuned `retrieval.late`, or the request-style override). */
  late?: Pick<LateFusionOptions, "k" | "weights">;
}

export interface EvalInputs {
  dataset: EvalDataset;
  tokenizer: WordPieceTokenizer;
  lexical?: LexicalIndex;
  dense?: DenseViews;
  /** The encoded judged queries, in dataset order (with token vectors for late mode). */
  queries?: readonly EncodedQuery[];
  /** For FLOPs per query; absent for a peer encoder. */
  architecture?: TaesrArchitecture;
}

export interface EvalOptions {
  /** Keep every query's candidate lists (for a weight sweep). */
  keepLists?: boolean;
  /** Collect TREC run lines with this tag. */
  runTag?: string;
  /** Keep every query's NDCG@10 (for paired comparisons of two settings). */
  keepPerQuery?: boolean;
}

export interface IndexBytesPerDoc {
  dense: number | null;
  bm25: number | null;
  late: number | null;
  /** The learned sparse postings, when the setting reads them. */
  sparse?: number;
  total: number;
}

export interface EvalOutcome {
  "ndcg@10": number;
  "mrr@10": number;
  "recall@50": number;
  "recall@100": number;
  "map@100": number;
  queries: number;
  docs: number;
  latency_ms: { p50: number; p95: number };
  /** Mean recursion steps run per query (null without an encoder, or for a peer). */
  mean_depth: number | null;
  mean_query_tokens: number | null;
  /** Mean encoder FLOPs per query (src/model/flops.ts at each query's own token count and depth). */
  flops_per_query: number | null;
  index_bytes_per_doc: IndexBytesPerDoc;
  /** Hybrid and late: the fusion weights in effect (`sparse` when the sparse list took part). */
  weights: { dense: number; lexical: number; sparse?: number } | null;
  /** hybrid+late: the same metrics of the hybrid ranking before the rerank (same queries, same run). */
  first_stage?: { "ndcg@10": number; "recall@100": number };
  runLines?: string[];
  kept?: KeptLists[];
  /** Each query's NDCG@10, in dataset order (`keepPerQuery`). */
  perQueryNdcg10?: number[];
}

export interface KeptLists {
  lists: { dense?: RankedHit<number>[]; lexical?: RankedHit<number>[]; sparse?: RankedHit<number>[] };
  judgements: ReadonlyMap<string, number>;
  /** The query's id (evaluate always sets it): fusion tuning selects the queries an adaptation held out by it. */
  queryId?: string;
  /**
   * hybrid+late: the hybrid ranking (before the rerank), the MaxSim of its top {@link MAX_LATE_RERANK_DEPTH} and the
   * query's token count — everything late tuning needs to re-fuse at other k and weights without scoring again.
   */
  late?: { firstStage: FusedHit<number, RankingList>[]; maxSims: (number | undefined)[]; queryTokens: number };
}

export function usesDense(mode: EvalMode): boolean {
  return mode === "dense" || mode === "hybrid" || mode === "late" || mode === "hybrid+late";
}

export function usesLexical(mode: EvalMode): boolean {
  return mode === "bm25" || mode === "hybrid" || mode === "late" || mode === "hybrid+late";
}

/** Modes that rank with token vectors (the corpus and queries must be embedded with them). */
export function usesTokens(mode: EvalMode): boolean {
  return mode === "late" || mode === "hybrid+late";
}

/**
 * Stored bytes per document of the dense side of a setting: `rowsPerDoc` vectors each (one per passage when documents
 * are scored by their best passage); PCA adds its mean and components, spread over the corpus.
 */
export function denseBytesPerDoc(setting: Pick<EvalSetting, "dims" | "vectors" | "projection">, fullDims: number, docs: number, rowsPerDoc = 1): number {
  const sizes = compressedBytesPerVector(setting.dims);
  const vectors = {
    float: sizes.float32,
    int8: sizes.int8,
    binary: sizes.binary,
    "binary-rescore": sizes.binary + sizes.int8,
  }[setting.vectors] * rowsPerDoc;
  const projection = setting.projection === "pca" ? (4 * (setting.dims * fullDims + fullDims)) / Math.max(1, docs) : 0;
  return vectors + projection;
}

export function evaluate(inputs: EvalInputs, setting: EvalSetting, options: EvalOptions = {}): EvalOutcome {
  const { dataset, tokenizer } = inputs;
  const { mode } = setting;
  const sparseOnly = mode === "sparse";
  if (sparseOnly && (!inputs.dense?.index.sparse || !inputs.queries)) {
    throw new Error("sparse mode needs the corpus's learned sparse terms (embed it with the sparse cut: an artifact with the sparse head) and the queries' (see bench/eval/model.ts sparseUnavailableReason)");
  }
  const dense = usesDense(mode) ? inputs.dense : undefined;
  const lexical = usesLexical(mode) ? inputs.lexical : undefined;
  if (usesDense(mode) && (!dense || !inputs.queries)) throw new Error(`${mode} mode needs the dense index and the encoded queries`);
  if (usesLexical(mode) && !lexical) throw new Error(`${mode} mode needs the BM25 index`);
  if (usesTokens(mode) && !dense?.index.tokens) throw new Error(`${mode} mode needs the corpus token matrices (embed the corpus with token vectors)`);
  if (mode === "hybrid+late" && !setting.late) throw new Error("hybrid+late mode needs the rerank depth and weights (setting.late)");
  if (inputs.queries && inputs.queries.length !== dataset.queries.length) {
    throw new Error(`${inputs.queries.length} encoded queries for ${dataset.queries.length} judged queries`);
  }
  const { dims, vectors, projection } = setting;
  const fused = mode === "hybrid" || mode === "late" || mode === "hybrid+late";
  // The sparse list as the Worker reads it (workers/edge/src/sparse-plan.ts): in fused modes, when the corpus has its
  // terms, and only at a weight above 0.
  const sparseIndex = fused || sparseOnly ? inputs.dense?.index.sparse : undefined;
  const sparseShare = sparseOnly ? 1 : sparseIndex ? sparseWeight(setting.fusion, setting.weights, setting.defaults) : 0;
  const sparse = sparseShare > 0 ? sparseIndex : undefined;
  // Without the sparse list, a three-list default gives way to its two-list tuning, as in the Worker.
  const defaults = setting.defaults && !sparse ? fusionDefaultFor(setting.defaults, false) : setting.defaults;
  const weights = fused ? { ...hybridWeights(setting.fusion, setting.weights, defaults), ...(sparse ? { sparse: sparseShare } : {}) } : null;

  // Built before the clock starts: these are index structures, not per-query work.
  const floatMatrix = dense && vectors === "float" ? dense.matrix(projection, dims) : undefined;
  const int8Rows = dense && (vectors === "int8" || vectors === "binary-rescore") ? dense.int8(projection, dims) : undefined;
  const bitRows = dense && (vectors === "binary" || vectors === "binary-rescore") ? dense.bits(projection, dims) : undefined;
  if (dense && projection === "pca") dense.pca(dims);
  const docTokens = dense?.index.tokens;
  // Documents stored as passage rows are scored by their best row: enough rows that the CANDIDATES best documents
  // are among them (src/retrieval/dense.ts bestRowPerOwner).
  const owners = dense?.index.owners;
  const rowsPerDoc = owners ? dense!.index.maxRowsPerDoc : 1;
  const rowsNeeded = CANDIDATES * rowsPerDoc;

  const firstStageNdcg10: number[] = [];
  const firstStageRecall100: number[] = [];
  const perQuery = { ndcg10: [] as number[], mrr10: [] as number[], recall50: [] as number[], recall100: [] as number[], map100: [] as number[] };
  const latencies: number[] = [];
  const runLines: string[] | undefined = options.runTag ? [] : undefined;
  const kept: KeptLists[] | undefined = options.keepLists ? [] : undefined;
  const bar = usesTokens(mode) ? progressBar("late reranking", dataset.queries.length, "queries") : undefined;

  dataset.queries.forEach((query, index) => {
    const encoded = inputs.queries?.[index];
    if (encoded && encoded.id !== query.id) throw new Error(`encoded query ${index} is ${encoded.id}, expected ${query.id}`);
    const started = performance.now();
    const lists: KeptLists["lists"] = {};
    if (dense && encoded) {
      const q = dense.query(projection, dims, encoded.vector);
      let rows: RankedHit<number>[];
      if (vectors === "float") rows = denseSearch(floatMatrix!, dims, q, rowsNeeded);
      else if (vectors === "int8") rows = int8Search(int8Rows!, q, rowsNeeded);
      else if (vectors === "binary") rows = hammingSearch(bitRows!, dims, packSignBits(q, dims), rowsNeeded);
      else {
        const candidates = hammingSearch(bitRows!, dims, packSignBits(q, dims), DEFAULT_RESCORE_FACTOR * BINARY_RESCORE_K * rowsPerDoc);
        rows = rescoreInt8(candidates, int8Rows!, q, rowsNeeded);
      }
      lists.dense = owners ? bestRowPerOwner(rows, owners, CANDIDATES) : rows;
    }
    if (lexical) lists.lexical = bm25Search(lexicalTerms(tokenizer.tokenize(query.text)), lexical.stats, lexical.postings, CANDIDATES);
    if (sparse) {
      if (!encoded?.sparse) throw new Error(`query ${query.id} has no sparse terms (encode the queries with the sparse cut)`);
      lists.sparse = sparse.search(encoded.sparse, CANDIDATES);
    }
    const searchMode = mode === "bm25" ? "lexical" : mode === "dense" || mode === "sparse" ? mode : "hybrid";
    const firstStage = combineRankings(searchMode, lists, {
      topK: CANDIDATES,
      fusion: setting.fusion,
      weights: weights ?? undefined,
      candidates: CANDIDATES,
    });
    let ranking: { id: number; score: number }[] = firstStage;
    let late: KeptLists["late"];
    if (mode === "late") ranking = lateRanking(ranking, encoded!, docTokens!);
    if (mode === "hybrid+late") {
      const queryTokens = encoded!.tokenVectors;
      if (!queryTokens) throw new Error(`query ${query.id} has no token vectors (encode the queries with token vectors)`);
      // Tuning (kept lists) re-fuses at every k, so it scores the deepest prefix any setting reranks, once; otherwise
      // only the setting's k, as the Worker does — the latency then measures the Worker's rerank, not the tuning's.
      const depth = kept ? MAX_LATE_RERANK_DEPTH : setting.late!.k;
      const maxSims = prefixMaxSims(firstStage, queryTokens, (id) => docTokens![id], depth);
      ranking = fuseLateInteraction(firstStage, maxSims, queryTokens.count, setting.late!);
      late = { firstStage, maxSims, queryTokens: queryTokens.count };
    }
    const firstStageIds = mode === "hybrid+late" ? firstStage.map((hit) => dataset.corpus[hit.id]!.id) : undefined;
    const elapsed = performance.now() - started;
    latencies.push(elapsed + (encoded && (usesDense(mode) || sparseOnly) ? encoded.encodeMs : 0));

    const ranked = ranking.map((hit) => dataset.corpus[hit.id]!.id);
    const judgements = judgementsOf(dataset, query.id);
    if (runLines) ranking.forEach((hit, rank) => runLines.push(`${query.id} Q0 ${ranked[rank]} ${rank + 1} ${hit.score} ${options.runTag}`));
    kept?.push({ lists, judgements, queryId: query.id, ...(late ? { late } : {}) });
    perQuery.ndcg10.push(ndcgAt(10, ranked, judgements));
    if (firstStageIds) {
      firstStageNdcg10.push(ndcgAt(10, firstStageIds, judgements));
      firstStageRecall100.push(recallAt(100, firstStageIds, judgements));
    }
    perQuery.mrr10.push(mrrAt(10, ranked, judgements));
    perQuery.recall50.push(recallAt(50, ranked, judgements));
    perQuery.recall100.push(recallAt(100, ranked, judgements));
    perQuery.map100.push(averagePrecisionAt(100, ranked, judgements));
    bar?.increment();
  });
  bar?.stop();

  const encoded = dense || sparseOnly ? inputs.queries! : [];
  const depths = encoded.flatMap((q) => (q.depth === null ? [] : [q.depth]));
  const tokens = encoded.flatMap((q) => (q.tokens === null ? [] : [q.tokens]));
  const architecture = inputs.architecture;
  const flops =
    architecture && depths.length === encoded.length && encoded.length > 0
      ? mean(encoded.map((q) => queryFlops(architecture, Math.min(Math.max(1, q.tokens ?? 1), architecture.maxLength), q.depth!).total))
      : null;
  const denseBytes = dense ? denseBytesPerDoc(setting, dense.index.fullDims, dataset.corpus.length, dense.index.rows / Math.max(1, dataset.corpus.length)) : null;
  const bm25Bytes = lexical ? lexical.bytesPerDoc : null;
  const lateBytes = usesTokens(mode) ? (dense?.index.tokenBytesPerDoc ?? null) : null;
  const sparseBytes = sparse ? inputs.dense?.index.sparseBytesPerDoc : undefined;

  return {
    "ndcg@10": mean(perQuery.ndcg10),
    "mrr@10": mean(perQuery.mrr10),
    "recall@50": mean(perQuery.recall50),
    "recall@100": mean(perQuery.recall100),
    "map@100": mean(perQuery.map100),
    queries: dataset.queries.length,
    docs: dataset.corpus.length,
    latency_ms: { p50: percentile(latencies, 50), p95: percentile(latencies, 95) },
    mean_depth: depths.length ? mean(depths) : null,
    mean_query_tokens: tokens.length ? mean(tokens) : null,
    flops_per_query: flops,
    index_bytes_per_doc: {
      dense: denseBytes,
      bm25: bm25Bytes,
      late: lateBytes,
      ...(sparseBytes !== undefined ? { sparse: sparseBytes } : {}),
      total: (denseBytes ?? 0) + (bm25Bytes ?? 0) + (lateBytes ?? 0) + (sparseBytes ?? 0),
    },
    weights,
    ...(mode === "hybrid+late" ? { first_stage: { "ndcg@10": mean(firstStageNdcg10), "recall@100": mean(firstStageRecall100) } } : {}),
    ...(runLines ? { runLines } : {}),
    ...(kept ? { kept } : {}),
    ...(options.keepPerQuery ? { perQueryNdcg10: perQuery.ndcg10 } : {}),
  };
}

/**
 * Late interaction over a first-stage ranking: its top {@link LATE_RERANK_DEPTH} reranked by MaxSim, the rest after
 * them in first-stage order. Scores stay strictly decreasing down the whole list (the tail is scored below the lowest
 * MaxSim, one unit per rank) so that trec_eval, which orders a run by score, reads the same ranking from the run file.
 */
function lateRanking(
  first: readonly { id: number; score: number }[],
  query: EncodedQuery,
  docTokens: readonly QuantizedTokenMatrix[],
): { id: number; score: number }[] {
  if (!query.tokenVectors) throw new Error(`query ${query.id} has no token vectors (encode the queries with token vectors)`);
  const head: RankedHit<number>[] = first.slice(0, LATE_RERANK_DEPTH).map((hit, index) => ({ id: hit.id, score: hit.score, rank: index + 1 }));
  const reranked = lateRerank(head, query.tokenVectors, (id) => docTokens[id], LATE_RERANK_DEPTH);
  const floor = reranked.length ? reranked[reranked.length - 1]!.score : 0;
  const tail = first.slice(LATE_RERANK_DEPTH).map((hit, index) => ({ id: hit.id, score: floor - 1 - index }));
  return [...reranked, ...tail];
}

/** Lexical weights the sweep tries, in hundredths so the steps do not accumulate float error: 0.50, 0.55, …, 1.00. */
export const SWEEP_LEXICAL = Array.from({ length: 11 }, (_, i) => (50 + 5 * i) / 100);

/**
 * Re-fuses kept candidate lists at each lexical weight of {@link SWEEP_LEXICAL} (dense = 1 − lexical): NDCG@10 each.
 * A kept sparse list stays in at the `sparse` weight given (the run's own), so the sweep varies only the other two.
 */
export function sweepFusionWeights(
  kept: readonly KeptLists[],
  dataset: EvalDataset,
  fusion: FusionMethod,
  sparse?: number,
): { lexical: number; dense: number; sparse?: number; "ndcg@10": number }[] {
  return SWEEP_LEXICAL.map((lexical) => {
    const dense = Math.round((1 - lexical) * 100) / 100;
    const weights = { lexical, dense, ...(sparse !== undefined ? { sparse } : {}) };
    return { ...weights, "ndcg@10": keptNdcg10(kept, dataset, "hybrid", { fusion, weights }) };
  });
}

/** A fusion to re-rank kept lists by; `sparse` is the sparse list's weight when the lists kept one (0 leaves it out). */
type KeptFusion = { fusion: FusionMethod; weights: { lexical: number; dense: number; sparse?: number } };

/**
 * NDCG@10 per query of kept candidate lists ranked again — fused with the given fusion and weights (hybrid: every
 * kept list, the sparse one only at a sparse weight above 0), or one list alone — over the same 1,000-deep ranking
 * {@link evaluate} scores, without embedding anything again.
 */
export function keptNdcg10PerQuery(
  kept: readonly KeptLists[],
  dataset: EvalDataset,
  mode: "hybrid" | "dense" | "lexical" | "sparse",
  fusion: KeptFusion = { fusion: "convex", weights: { lexical: 1, dense: 1 } },
): number[] {
  return kept.map(({ lists: all, judgements }) => {
    const { sparse, ...pair } = all;
    // A sparse list joins only with a positive weight, as evaluate() and the Worker read it.
    const lists = mode === "sparse" || (sparse && (fusion.weights.sparse ?? 0) > 0) ? { ...pair, sparse } : pair;
    const ranked: FusedHit<number, RankingList>[] = combineRankings(mode, lists, {
      topK: CANDIDATES,
      fusion: fusion.fusion,
      weights: fusion.weights,
      candidates: CANDIDATES,
    });
    return ndcgAt(10, ranked.map((hit) => dataset.corpus[hit.id]!.id), judgements);
  });
}

/** Mean of {@link keptNdcg10PerQuery}. */
export function keptNdcg10(kept: readonly KeptLists[], dataset: EvalDataset, mode: "hybrid" | "dense" | "lexical" | "sparse", fusion?: KeptFusion): number {
  return mean(keptNdcg10PerQuery(kept, dataset, mode, fusion));
}

/** Four decimals, as every figure of the JSON is printed. */
export function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

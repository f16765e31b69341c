/**
 * Labels for the FastREM router: for each labelling query with known relevant documents, how well it retrieves them
 * when the query is embedded at each depth (1, 3, 6) against documents embedded once, the way the index embeds them;
 * the label is the SMALLEST depth whose metric is at least the deepest depth's (ties go to the smaller depth: the same
 * quality for fewer steps). A query that finds nothing at any depth is therefore "easy": more steps would not help it.
 *
 * Sources:
 * - a BEIR dataset's train split (SciFact: 809 train queries and their qrels against the 5,183-document corpus).
 *   Test and dev qrels are never read (the CLI refuses `--split test`; the router schema refuses it too).
 * - optionally, held-out Debian and WordNet pairs (query → its document, retrieved among all held-out documents of its
 *   source): the pairs whose document hashes into the trainer's validation slice (training/src/data/pairs.ts, the same
 *   salt and fraction), so the model never trained on them and the router does not learn SciFact alone.
 *
 * Metric per query: NDCG@10 (what the goal is stated in) or RR (reciprocal rank of the first relevant document in the
 * full ranking; finer-grained, so fewer ties). Queries and documents go through the artifact's own encoder
 * (onnxruntime-node via src/model/encoder.ts), at the served width (128-d) and variant (the edge's: int8w, or int8
 * for older artifacts).
 *
 * Retrieval the metric is taken on: the dense ranking alone (the default), or the hybrid ranking users are served —
 * BM25 over word pieces fused with the dense list by the artifact's fusion (its tuned `retrieval.fusion`), exactly as
 * `npm run eval -- --mode hybrid` ranks (same 1,000 candidates per list). Why both: depth only changes the dense list,
 * and how much that moves what a user sees depends on how much the fusion trusts it. A router that serves hybrid search
 * should be labelled by hybrid retrieval; dense labels ask a stricter question (the dense-only API, `mode: "dense"`).
 * In hybrid, RR is the reciprocal rank of the first relevant document in the fused list (0 when neither list found it).
 *
 * @module
 */
import { fastRemFeatureVector, type FastRemVocab } from "../../../src/model/fastrem.js";
import type { ModelVariant, PassageOptions, TaesrEncoder } from "../../../src/model/index.js";
import { ndcgAt, type Judgements } from "../../../src/eval/metrics.js";
import {
  bm25Search,
  buildBm25Postings,
  combineRankings,
  denseSearch,
  documentText,
  lexicalTerms,
  type FusionDefault,
  type InMemoryBm25,
  type RankedHit,
} from "../../../src/retrieval/index.js";

export type LabelMetric = "ndcg@10" | "rr";

export interface LabelDocument {
  id: string;
  title?: string;
  text: string;
}

export interface LabelQuery {
  id: string;
  text: string;
  /** Relevant documents (gain > 0) by id. */
  judgements: Judgements;
}

/** One labelling source: queries retrieved against their own document pool. */
export interface LabelSource {
  /** e.g. "scifact" or "debian-held-out". */
  dataset: string;
  split: string;
  documents: readonly LabelDocument[];
  queries: readonly LabelQuery[];
}

export interface EmbedSetting {
  dims: number;
  /** Query depths compared, cheapest first (the architecture's easy, medium, hard). */
  depths: readonly number[];
  /** Depth the documents are embedded at ("auto" = the encoder's router, given the length rule by the CLI). */
  documentDepth: number | "auto";
  /** Passages the documents are embedded as (manifest retrieval.documentPassages); absent = whole. */
  documentPassages?: PassageOptions;
  earlyExit: boolean;
  metric: LabelMetric;
  /** The encoder's graphs (recorded; the encoder passed in decides). */
  variant: ModelVariant;
  /** The ranking the metric is taken on (module doc); absent = dense. */
  retrieval?: LabelRetrieval;
}

/** Dense alone, or hybrid with the fusion the artifact serves. */
export type LabelRetrieval = { mode: "dense" } | { mode: "hybrid"; fusion: FusionDefault };

/** Candidates per list in hybrid labelling: bench/eval's CANDIDATES, so labels rank exactly as the eval measures. */
export const HYBRID_LABEL_CANDIDATES = 1000;

export interface LabelledExample {
  source: string;
  id: string;
  text: string;
  /** Word pieces the model reads (after truncation). */
  tokens: number;
  /** Raw features in the order of the `features` names the labels were computed with. */
  features: Float64Array;
  /** Metric at each depth of {@link EmbedSetting.depths}. */
  metrics: number[];
  /** Index into depths of the smallest sufficient depth. */
  label: number;
}

/** Documents per encoder call, as the Worker's indexer and the eval batch them. */
export const DOCUMENT_BATCH = 16;

/** The smallest index whose metric is at least the last (deepest) one's: ties go to the cheaper depth. */
export function smallestSufficient(metrics: readonly number[]): number {
  if (metrics.length === 0) throw new Error("no metrics to label from");
  const deepest = metrics[metrics.length - 1]!;
  // Metrics are computed in float; 1e-12 keeps identical rankings (equal metrics) from losing a tie to rounding.
  return metrics.findIndex((m) => m >= deepest - 1e-12);
}

/** Per-query metric of a ranking already made (row indexes into `documentIds`, best first): NDCG@10 on its top 10,
 * RR from the first relevant row in it (0 when it has none). */
export function rankingMetric(metric: LabelMetric, ranking: readonly { id: number }[], documentIds: readonly string[], judgements: Judgements): number {
  if (metric === "ndcg@10") return ndcgAt(10, ranking.slice(0, 10).map((hit) => documentIds[hit.id]!), judgements);
  const first = ranking.findIndex((hit) => (judgements.get(documentIds[hit.id]!) ?? 0) > 0);
  return first < 0 ? 0 : 1 / (first + 1);
}

/** The hybrid ranking of one query (module doc): its BM25 list fused with the dense list of `query`. */
export function hybridRanking(
  matrix: Float32Array,
  dims: number,
  query: Float32Array,
  lexical: readonly RankedHit<number>[],
  fusion: FusionDefault,
): { id: number }[] {
  const dense = denseSearch(matrix, dims, query, HYBRID_LABEL_CANDIDATES);
  return combineRankings("hybrid", { dense, lexical }, {
    topK: HYBRID_LABEL_CANDIDATES,
    fusion: fusion.method,
    weights: fusion.weights,
    candidates: HYBRID_LABEL_CANDIDATES,
  });
}

/** Per-query metric of the dense ranking (row indexes into `documentIds`, best first; the full ranking for RR). */
export function queryMetric(metric: LabelMetric, matrix: Float32Array, dims: number, documentIds: readonly string[], query: Float32Array, judgements: Judgements): number {
  if (metric === "ndcg@10") {
    const top = denseSearch(matrix, dims, query, 10).map((hit) => documentIds[hit.id]!);
    return ndcgAt(10, top, judgements);
  }
  // RR over the full ranking: 1 / (1 + number of documents scored above the best relevant one).
  const rows = documentIds.length;
  const scores = new Float32Array(rows);
  let best = Number.NEGATIVE_INFINITY;
  let bestRow = -1;
  for (let row = 0; row < rows; row++) {
    let dot = 0;
    for (let i = 0, o = row * dims; i < dims; i++) dot += matrix[o + i]! * query[i]!;
    scores[row] = dot;
    // Compare the stored (float32) scores, never the float64 dot: otherwise the best relevant row, rounded up on
    // storage, would count as ranked above itself.
    if ((judgements.get(documentIds[row]!) ?? 0) > 0 && (scores[row]! > best || bestRow < 0)) {
      best = scores[row]!;
      bestRow = row;
    }
  }
  if (bestRow < 0) return 0;
  let above = 0;
  // Ties are broken by row index, as denseSearch does.
  for (let row = 0; row < rows; row++) if (scores[row]! > best || (scores[row] === best && row < bestRow)) above++;
  return 1 / (above + 1);
}

export interface LabelProgress {
  (event: { phase: "documents" | "queries"; source: string; done: number; total: number }): void;
}

/**
 * Labels every query of every source. `featureNames` fixes the feature order of the examples (the router's columns).
 * The encoder must route documents the way the index does (the CLI hands it the artifact's length rule).
 */
export async function labelSources(
  encoder: TaesrEncoder,
  tokenizer: { encode(text: string, options: { maxLength: number }): number[]; tokenize(text: string): string[] },
  vocab: FastRemVocab,
  featureNames: readonly string[],
  sources: readonly LabelSource[],
  setting: EmbedSetting,
  onProgress?: LabelProgress,
): Promise<LabelledExample[]> {
  const { dims, depths, documentDepth, earlyExit, metric } = setting;
  const retrieval = setting.retrieval ?? { mode: "dense" };
  const maxLength = encoder.architecture.maxLength;
  const examples: LabelledExample[] = [];
  for (const source of sources) {
    const ids = source.documents.map((d) => d.id);
    // The lexical side does not depend on depth: one index per source, one BM25 list per query.
    const bm25: InMemoryBm25 | undefined =
      retrieval.mode === "hybrid"
        ? buildBm25Postings(source.documents.map((d) => lexicalTerms(tokenizer.tokenize(documentText({ title: d.title ?? "", text: d.text })))))
        : undefined;
    const matrix = new Float32Array(source.documents.length * dims);
    for (let start = 0; start < source.documents.length; start += DOCUMENT_BATCH) {
      const batch = source.documents.slice(start, start + DOCUMENT_BATCH).map((d) => documentText({ title: d.title ?? "", text: d.text }));
      const result = await encoder.embed(batch, { dims, depth: documentDepth, earlyExit, ...(setting.documentPassages ? { passages: setting.documentPassages } : {}) });
      result.embeddings.forEach((v, i) => matrix.set(v, (start + i) * dims));
      onProgress?.({ phase: "documents", source: source.dataset, done: Math.min(start + DOCUMENT_BATCH, source.documents.length), total: source.documents.length });
    }
    let done = 0;
    for (const query of source.queries) {
      const metrics: number[] = [];
      const lexical = bm25 ? bm25Search(lexicalTerms(tokenizer.tokenize(query.text)), bm25.stats, bm25.postings, HYBRID_LABEL_CANDIDATES) : undefined;
      for (const depth of depths) {
        // One query at a time, as the edge serves queries (a batch would run at its longest text's depth and padding).
        const { embeddings } = await encoder.embed([query.text], { dims, depth, earlyExit });
        const vector = embeddings[0]!;
        metrics.push(
          retrieval.mode === "hybrid"
            ? rankingMetric(metric, hybridRanking(matrix, dims, vector, lexical!, retrieval.fusion), ids, query.judgements)
            : queryMetric(metric, matrix, dims, ids, vector, query.judgements),
        );
      }
      const tokenIds = tokenizer.encode(query.text, { maxLength });
      examples.push({
        source: source.dataset,
        id: query.id,
        text: query.text,
        tokens: tokenIds.length,
        features: fastRemFeatureVector(tokenIds, vocab, featureNames),
        metrics,
        label: smallestSufficient(metrics),
      });
      onProgress?.({ phase: "queries", source: source.dataset, done: ++done, total: source.queries.length });
    }
  }
  return examples;
}

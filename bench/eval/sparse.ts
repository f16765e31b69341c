/**
 * `npm run eval -- --mode sparse`: learned sparse retrieval with the artifact's SPLADE-style head. The corpus is
 * embedded as the Worker would index it (title + "\n" + text, batches of 16, at the manifest's document depth when it
 * chose one and the depth is auto, else the chosen depth) with sparse terms on,
 * every document's terms go into the in-memory inverted index (src/retrieval/sparse.ts), and each judged query is
 * encoded alone and searched 1,000 deep by the vocabulary dot product; the metrics are those of the other modes
 * (trec_eval conventions, src/eval/metrics.ts). Also reported: the sparse + BM25 fusion (convex, min-max normalised,
 * equal weights; no tuning), since the sparse list is meant as a third hybrid list beside BM25 and dense.
 *
 * The term threshold is 0 and at most `maxTerms` (256) terms are kept per text, as the encoder's defaults: the
 * FLOPS regulariser decides sparsity in training, the cut only bounds the index.
 */
import { progressBar } from "../progress.js";
import { averagePrecisionAt, mean, mrrAt, ndcgAt, percentile, recallAt } from "../../src/eval/metrics.js";
import type { TaesrEncoder } from "../../src/model/index.js";
import { bm25Search, convexCombinationFusion, documentText, lexicalTerms, SparseIndex, type RankedHit } from "../../src/retrieval/index.js";
import type { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { buildLexicalIndex, DOCUMENT_BATCH } from "./corpus-index.js";
import { judgementsOf, type EvalDataset } from "./dataset.js";
import { CANDIDATES, round4 } from "./evaluate.js";

export interface SparseEvalOptions {
  depth: "auto" | 1 | 3 | 6;
  /** The documents' depth when it differs from the queries' (the manifest's `retrieval.documentDepth`). */
  documentDepth?: 1 | 3 | 6;
  earlyExit: boolean;
  maxTerms: number;
}

interface Metrics {
  "ndcg@10": number;
  "mrr@10": number;
  "recall@50": number;
  "recall@100": number;
  "map@100": number;
}

function metricsOf(dataset: EvalDataset, rankings: readonly { queryId: string; ids: number[] }[]): Metrics {
  const per = { ndcg: [] as number[], mrr: [] as number[], r50: [] as number[], r100: [] as number[], map: [] as number[] };
  for (const { queryId, ids } of rankings) {
    const ranked = ids.map((i) => dataset.corpus[i]!.id);
    const judgements = judgementsOf(dataset, queryId);
    per.ndcg.push(ndcgAt(10, ranked, judgements));
    per.mrr.push(mrrAt(10, ranked, judgements));
    per.r50.push(recallAt(50, ranked, judgements));
    per.r100.push(recallAt(100, ranked, judgements));
    per.map.push(averagePrecisionAt(100, ranked, judgements));
  }
  return {
    "ndcg@10": round4(mean(per.ndcg)),
    "mrr@10": round4(mean(per.mrr)),
    "recall@50": round4(mean(per.r50)),
    "recall@100": round4(mean(per.r100)),
    "map@100": round4(mean(per.map)),
  };
}

/** Runs the sparse evaluation and returns the JSON object the CLI prints. */
export async function evaluateSparse(
  encoder: TaesrEncoder,
  tokenizer: WordPieceTokenizer,
  dataset: EvalDataset,
  options: SparseEvalOptions,
): Promise<Record<string, unknown>> {
  const sparse = { threshold: 0, maxTerms: options.maxTerms };
  const embedOptions = { depth: options.depth, earlyExit: options.earlyExit, sparse };
  const documentOptions = { ...embedOptions, depth: options.documentDepth ?? options.depth };
  const index = new SparseIndex<number>();
  let docTerms = 0;
  let docDepth = 0;
  const bar = progressBar("embedding corpus (sparse terms)", dataset.corpus.length, "docs");
  for (let start = 0; start < dataset.corpus.length; start += DOCUMENT_BATCH) {
    const batch = dataset.corpus.slice(start, start + DOCUMENT_BATCH);
    const result = await encoder.embed(batch.map(documentText), documentOptions);
    result.sparse!.forEach((terms, i) => {
      index.add(start + i, terms);
      docTerms += Object.keys(terms).length;
    });
    docDepth += result.depth * batch.length;
    bar.update(Math.min(start + DOCUMENT_BATCH, dataset.corpus.length));
  }
  bar.stop();

  const lexical = buildLexicalIndex(tokenizer, dataset.corpus);
  const sparseRankings: { queryId: string; ids: number[] }[] = [];
  const fusedRankings: { queryId: string; ids: number[] }[] = [];
  const latencies: number[] = [];
  let queryTerms = 0;
  let queryDepth = 0;
  for (const query of dataset.queries.slice(0, 3)) await encoder.embed([query.text], embedOptions); // warm-up, untimed
  for (const query of dataset.queries) {
    const started = performance.now();
    const result = await encoder.embed([query.text], embedOptions);
    const terms = result.sparse![0]!;
    const hits = index.search(terms, CANDIDATES);
    latencies.push(performance.now() - started);
    queryTerms += Object.keys(terms).length;
    queryDepth += result.depth;
    sparseRankings.push({ queryId: query.id, ids: hits.map((h) => h.id) });
    const bm25: RankedHit<number>[] = bm25Search(lexicalTerms(tokenizer.tokenize(query.text)), lexical.stats, lexical.postings, CANDIDATES);
    // Both scores are ≥ 0 (a sum of products of non-negative weights; BM25), which is each list's theoretical minimum.
    const fused = convexCombinationFusion(
      { sparse: hits, lexical: bm25 },
      { weights: { sparse: 1, lexical: 1 }, minScores: { sparse: 0, lexical: 0 }, depth: CANDIDATES, limit: CANDIDATES },
    );
    fusedRankings.push({ queryId: query.id, ids: fused.map((h) => h.id) });
  }
  const queries = Math.max(1, dataset.queries.length);
  return {
    dataset: dataset.name,
    ...metricsOf(dataset, sparseRankings),
    queries: dataset.queries.length,
    docs: dataset.corpus.length,
    latency_ms: { p50: round4(percentile(latencies, 50)), p95: round4(percentile(latencies, 95)) },
    mode: "sparse",
    depth: options.depth,
    mean_depth: round4(queryDepth / queries),
    mean_doc_depth: round4(docDepth / Math.max(1, dataset.corpus.length)),
    max_terms: options.maxTerms,
    mean_query_terms: round4(queryTerms / queries),
    mean_doc_terms: round4(docTerms / Math.max(1, dataset.corpus.length)),
    // A posting as stored here: a 4-byte document slot and a float64 weight in JS arrays; 8 bytes (uint32 + float32)
    // in a packed index, which is the figure given.
    index_bytes_per_doc: round4((8 * index.postingCount) / Math.max(1, dataset.corpus.length)),
    sparse_bm25: { fusion: "convex", weights: { sparse: 1, lexical: 1 }, ...metricsOf(dataset, fusedRankings) },
  };
}

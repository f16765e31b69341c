/**
 * Validation on the held-out pairs: each held-out query retrieves among all held-out documents, at one Matryoshka
 * prefix (128 by default: the edge's working width) and at each routed depth. Reports top-1 accuracy, MRR and NDCG@10
 * (each query has exactly one relevant document, its pair's, so NDCG@10 is 1/log2(rank + 1) inside the top 10, else 0:
 * the figure the BEIR benchmarks report, on the held-out slice).
 *
 * With the late-interaction head (architecture.lateHead), the same figures for MaxSim over the head's token vectors join
 * the result (`late`); with the sparse head, those of the dot product of its term weights with the mean non-zero terms
 * per text (`sparse`) — both at `headDepth` (default: the deepest validated depth).
 *
 * Documents shared by several held-out pairs are counted once: a document identical to the positive is never
 * scored as a competitor (the split is by document, so such duplicates can only occur inside the validation slice).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { WeightName } from "../../../src/model/spec.js";
import type { BatchTokenizer, TokenMatrix } from "../data/batches.js";
import { PairBatcher } from "../data/batches.js";
import { normKey, type TextPair } from "../data/pairs.js";
import { hashString } from "../data/random.js";
import { encode, forward } from "../model/forward.js";
import { lateTokenVectors, maxSimScores } from "../model/late-head.js";
import { sparseHead } from "../model/sparse-head.js";
import { labelRows, visibleWords } from "../data/subspace-labels.js";
import { probeAccuracy, type ProbedSubspace, type ProbeName, type ProbeScore, type SubspaceLossOptions } from "./subspace-loss.js";

export interface ValidationOptions {
  depths: readonly number[];
  dim: number;
  maxQueryLength: number;
  maxDocLength: number;
  /** Rows per forward call (bounds memory; no gradients are kept). */
  chunk?: number;
  /** The run's subspace probes (train/subspace-loss.ts): their accuracy on the held-out queries and documents, at the
   * deepest validated depth, joins the result. */
  probes?: { values: Record<ProbeName, Float32Array>; ranges: SubspaceLossOptions["ranges"] };
  /** Depth whose hidden state the heads (late, sparse) are validated on; default the deepest of `depths`. */
  headDepth?: number;
  /** Documents embedded at this one depth for every query depth, as an index at a fixed document depth holds them
   * (training.documentSteps); it is also the documents' depth for the heads. Default: each depth on both sides. */
  documentDepth?: number;
}

export interface DepthScores {
  acc1: number;
  mrr: number;
  ndcg10: number;
}

export interface ValidationResult {
  pairs: number;
  dim: number;
  byDepth: Record<string, DepthScores>;
  /** The one depth the documents were embedded at (options.documentDepth), when fixed. */
  documentDepth?: number;
  /** Per probed subspace: held-out probe accuracy against the majority-class rate (only when probes were given). */
  subspaces?: Record<ProbedSubspace, ProbeScore>;
  /** MaxSim over the late-interaction head's token vectors at `depth` (only for params with the head). */
  late?: DepthScores & { depth: number };
  /** The sparse head's term-weight dot products (only for params with the head), and its mean non-zero terms per text. */
  sparse?: DepthScores & { depth: number; nonZerosQuery: number; nonZerosDoc: number };
}

/** Term weights [rows, V] of the sparse head at `depth`, per chunk (forward only), concatenated row-major. */
function sparseTermWeights(params: Record<WeightName, tf.Tensor>, matrices: TokenMatrix[], depth: number): { weights: Float32Array; V: number } {
  const V = (params["sparse.bias"] as tf.Tensor).shape[0] as number;
  const rows = matrices.reduce((n, m) => n + m.rows, 0);
  const weights = new Float32Array(rows * V);
  let at = 0;
  for (const m of matrices) {
    const values = tf.tidy(() => {
      const ids = tf.tensor2d(m.ids, [m.rows, m.length], "int32");
      const mask = tf.tensor2d(m.mask, [m.rows, m.length], "float32");
      const { states } = encode(params, ids, mask, depth);
      return sparseHead(params as Parameters<typeof sparseHead>[0], states[depth - 1]!, mask).dataSync() as Float32Array;
    });
    weights.set(values, at * V);
    at += m.rows;
  }
  return { weights, V };
}

/**
 * MaxSim scores [queries, documents] (matrix order) of the late head's token vectors at each side's depth: every
 * text's vectors padded to one length per side, then late-head.ts's chunked maxima (forward only), so memory stays
 * bounded at 512 validation pairs of 128-token documents as in training.
 */
function lateScores(
  params: Record<WeightName, tf.Tensor>,
  queries: TokenMatrix[],
  docs: TokenMatrix[],
  depths: { query: number; doc: number },
  lengths: { query: number; doc: number },
): Float32Array {
  // Each chunk in its own tidy: one tidy around every chunk's encoder pass would keep all their activations (attention
  // probabilities and FFN states of every step) alive at once — gigabytes at 512 pairs, beyond the wasm heap.
  const vectors = (matrices: TokenMatrix[], length: number, depth: number): [tf.Tensor3D, tf.Tensor2D][] =>
    matrices.map((m) =>
      tf.tidy(() => {
        const ids = tf.tensor2d(m.ids, [m.rows, m.length], "int32");
        const mask = tf.tensor2d(m.mask, [m.rows, m.length], "float32");
        const { states } = encode(params, ids, mask, depth);
        const v = lateTokenVectors(params, states[depth - 1]!);
        return [tf.pad(v, [[0, 0], [0, length - m.length], [0, 0]]), tf.pad(mask, [[0, 0], [0, length - m.length]])] as [tf.Tensor3D, tf.Tensor2D];
      }),
    );
  const queryParts = vectors(queries, lengths.query, depths.query);
  const docParts = vectors(docs, lengths.doc, depths.doc);
  try {
    return tf.tidy(() => {
      const join = <T extends tf.Tensor>(parts: [tf.Tensor3D, tf.Tensor2D][], i: 0 | 1) => tf.concat(parts.map((p) => p[i]), 0) as T;
      const scores = maxSimScores(join<tf.Tensor3D>(queryParts, 0), join<tf.Tensor2D>(queryParts, 1), join<tf.Tensor3D>(docParts, 0), join<tf.Tensor2D>(docParts, 1));
      return scores.dataSync() as Float32Array;
    });
  } finally {
    for (const [v, mask] of [...queryParts, ...docParts]) {
      v.dispose();
      mask.dispose();
    }
  }
}

/**
 * Retrieval figures from each query's 1-based rank of its one relevant document. With a single relevant document the
 * ideal DCG is 1, so NDCG@10 reduces to the discount at that rank (the same value src/eval/metrics.ts's ndcgAt gives).
 */
export function scoreRanks(ranks: ArrayLike<number>): DepthScores {
  const n = ranks.length;
  if (n === 0) return { acc1: 0, mrr: 0, ndcg10: 0 };
  let hits = 0;
  let rr = 0;
  let ndcg = 0;
  for (let i = 0; i < n; i++) {
    const rank = ranks[i] as number;
    if (rank === 1) hits++;
    rr += 1 / rank;
    if (rank <= 10) ndcg += 1 / Math.log2(rank + 1);
  }
  return { acc1: hits / n, mrr: rr / n, ndcg10: ndcg / n };
}

/** Normalised prefix embeddings for each requested depth, as row-major [n, dim] arrays. */
function embedAll(
  params: Record<WeightName, tf.Tensor>,
  matrices: TokenMatrix[],
  depths: readonly number[],
  dim: number,
): Float32Array[] {
  const maxDepth = Math.max(...depths);
  const rows = matrices.reduce((n, m) => n + m.rows, 0);
  const out = depths.map(() => new Float32Array(rows * dim));
  let at = 0;
  for (const m of matrices) {
    const values = tf.tidy(() => {
      const ids = tf.tensor2d(m.ids, [m.rows, m.length], "int32");
      const mask = tf.tensor2d(m.mask, [m.rows, m.length], "float32");
      const steps = forward(params, ids, mask, maxDepth);
      return depths.map((d) => {
        const e = tf.slice(steps[d - 1] as tf.Tensor2D, [0, 0], [-1, dim]);
        return tf.mul(e, tf.rsqrt(tf.add(tf.sum(tf.square(e), 1, true), 1e-12))).dataSync() as Float32Array;
      });
    });
    values.forEach((v, i) => (out[i] as Float32Array).set(v, at * dim));
    at += m.rows;
  }
  return out;
}

export function validate(
  params: Record<WeightName, tf.Tensor>,
  pairs: readonly TextPair[],
  tokenizer: BatchTokenizer,
  opts: ValidationOptions,
): ValidationResult {
  const n = pairs.length;
  const byDepth: Record<string, DepthScores> = {};
  if (n < 2) return { pairs: n, dim: opts.dim, byDepth };
  const chunk = opts.chunk ?? 64;
  // Sorting by length before chunking keeps padding low; results are mapped back through `order`.
  const order = pairs.map((_, i) => i);
  const qOrder = [...order].sort((a, b) => (pairs[a] as TextPair).query.length - (pairs[b] as TextPair).query.length);
  const dOrder = [...order].sort((a, b) => (pairs[a] as TextPair).doc.length - (pairs[b] as TextPair).doc.length);
  const padder = new PairBatcher(pairs, tokenizer, { batchSize: 1, maxQueryLength: opts.maxQueryLength, maxDocLength: opts.maxDocLength, seed: 0 });
  const chunks = (idx: number[], pick: (p: TextPair) => string, maxLength: number): TokenMatrix[] => {
    const out: TokenMatrix[] = [];
    for (let s = 0; s < idx.length; s += chunk) {
      out.push(padder.pad(idx.slice(s, s + chunk).map((i) => tokenizer.encode(pick(pairs[i] as TextPair), { maxLength }))));
    }
    return out;
  };
  const qEmb = embedAll(params, chunks(qOrder, (p) => p.query, opts.maxQueryLength), opts.depths, opts.dim);
  const documentDepths = opts.documentDepth === undefined ? opts.depths : [opts.documentDepth];
  const dEmb = embedAll(params, chunks(dOrder, (p) => p.doc, opts.maxDocLength), documentDepths, opts.dim);
  // qRow[i] / dRow[i]: where pair i's query / document sits in the embedding matrices.
  const qRow = new Int32Array(n);
  const dRow = new Int32Array(n);
  qOrder.forEach((pairIndex, row) => (qRow[pairIndex] = row));
  dOrder.forEach((pairIndex, row) => (dRow[pairIndex] = row));
  const docKey = pairs.map((p) => hashString(normKey(p.doc)));
  // Each query's rank of its own document among the distinct held-out documents under `score(query pair, doc pair)`.
  const ranksBy = (score: (i: number, j: number) => number): Int32Array => {
    const ranks = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const positive = score(i, i);
      const seen = new Set<number>([docKey[i] as number]);
      let better = 0;
      for (let j = 0; j < n; j++) {
        const key = docKey[j] as number;
        if (seen.has(key)) continue;
        seen.add(key);
        if (score(i, j) > positive) better++;
      }
      ranks[i] = better + 1;
    }
    return ranks;
  };
  const dim = opts.dim;
  opts.depths.forEach((depth, di) => {
    const Q = qEmb[di] as Float32Array;
    const D = dEmb[opts.documentDepth === undefined ? di : 0] as Float32Array;
    const ranks = ranksBy((i, j) => {
      const qo = (qRow[i] as number) * dim;
      const doff = (dRow[j] as number) * dim;
      let s = 0;
      for (let k = 0; k < dim; k++) s += (Q[qo + k] as number) * (D[doff + k] as number);
      return s;
    });
    byDepth[String(depth)] = scoreRanks(ranks);
  });
  const headDepth = opts.headDepth ?? Math.max(...opts.depths);
  const docHeadDepth = opts.documentDepth ?? headDepth;
  let sparse: ValidationResult["sparse"];
  if ("sparse.bias" in params) {
    const q = sparseTermWeights(params, chunks(qOrder, (p) => p.query, opts.maxQueryLength), headDepth);
    const d = sparseTermWeights(params, chunks(dOrder, (p) => p.doc, opts.maxDocLength), docHeadDepth);
    const V = q.V;
    // Each query as its non-zero terms: the dot product then costs its own terms, not the vocabulary.
    const queryTerms = Array.from({ length: n }, (_, row) => {
      const terms: number[] = [];
      for (let v = 0; v < V; v++) if (q.weights[row * V + v]! > 0) terms.push(v);
      return terms;
    });
    let docNonZeros = 0;
    for (let i = 0; i < d.weights.length; i++) if (d.weights[i]! > 0) docNonZeros++;
    const ranks = ranksBy((i, j) => {
      const qo = (qRow[i] as number) * V;
      const dOff = (dRow[j] as number) * V;
      let s = 0;
      for (const v of queryTerms[qRow[i] as number]!) s += q.weights[qo + v]! * d.weights[dOff + v]!;
      return s;
    });
    sparse = {
      depth: headDepth,
      ...scoreRanks(ranks),
      nonZerosQuery: queryTerms.reduce((a, t) => a + t.length, 0) / n,
      nonZerosDoc: docNonZeros / n,
    };
  }
  let late: ValidationResult["late"];
  if ("late.proj.w" in params) {
    const depth = headDepth;
    const qChunks = chunks(qOrder, (p) => p.query, opts.maxQueryLength);
    const dChunks = chunks(dOrder, (p) => p.doc, opts.maxDocLength);
    const length = (matrices: TokenMatrix[]) => Math.max(...matrices.map((m) => m.length));
    const scores = lateScores(params, qChunks, dChunks, { query: depth, doc: docHeadDepth }, { query: length(qChunks), doc: length(dChunks) });
    late = { depth, ...scoreRanks(ranksBy((i, j) => scores[(qRow[i] as number) * n + (dRow[j] as number)]!)) };
  }
  const fixedDocuments = opts.documentDepth === undefined ? {} : { documentDepth: opts.documentDepth };
  if (!opts.probes) return { pairs: n, dim: opts.dim, byDepth, ...fixedDocuments, ...(late ? { late } : {}), ...(sparse ? { sparse } : {}) };
  // Full-width embeddings of every held-out query and document (one more forward pass, at the deepest depth only).
  const depth = Math.max(...opts.depths);
  const width = (params["out.proj.b"] as tf.Tensor).shape[0] as number;
  const [qFull] = embedAll(params, chunks(qOrder, (p) => p.query, opts.maxQueryLength), [depth], width);
  const [dFull] = embedAll(params, chunks(dOrder, (p) => p.doc, opts.maxDocLength), [opts.documentDepth ?? depth], width);
  const all = new Float32Array(2 * n * width);
  all.set(qFull as Float32Array);
  all.set(dFull as Float32Array, n * width);
  // Labelled on the words the model sees, as in training.
  const visible = (text: string, maxLength: number) => visibleWords(text, tokenizer.encode(text, { maxLength }).length);
  const labels = labelRows([
    ...qOrder.map((i) => ({ text: visible((pairs[i] as TextPair).query, opts.maxQueryLength), source: (pairs[i] as TextPair).source })),
    ...dOrder.map((i) => ({ text: visible((pairs[i] as TextPair).doc, opts.maxDocLength), source: (pairs[i] as TextPair).source })),
  ]);
  return {
    pairs: n,
    dim: opts.dim,
    byDepth,
    ...fixedDocuments,
    subspaces: probeAccuracy(all, width, labels, opts.probes.values, opts.probes.ranges),
    ...(late ? { late } : {}),
    ...(sparse ? { sparse } : {}),
  };
}

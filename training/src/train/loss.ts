/**
 * Matryoshka InfoNCE with in-batch negatives, applied at every supervised recursion step (deep supervision).
 *
 * For each supervised step t and each Matryoshka prefix m: slice the first m dims of the query and document
 * embeddings, L2-normalise, logits = q·dᵀ / τ, and the cross-entropy of the diagonal (the positive) — row-wise
 * (query→doc) and, when symmetric, column-wise (doc→query). Prefix losses are averaged; step losses are combined with
 * the configured step weights (normalised to sum 1), so the total's scale does not depend on how many are supervised.
 *
 * Cross-step pairs (`crossSteps`): the router embeds a short query in 1 step and a long document in 6, so serving
 * compares embeddings from different depths. Same-step supervision alone leaves those comparisons untrained — the
 * ablation measured SciFact NDCG@10 0.015 with the router's mixed depths against 0.038–0.041 at any one depth on both
 * sides. With `crossSteps`, every (query step, document step) pair of supervised steps gets the loss, weighted by the
 * product of the two steps' weights (normalised to sum 1 over all pairs).
 *
 * Fixed-depth documents (`documentSteps`): when the index embeds every document at one depth (an artifact's
 * retrieval.documentDepth), documents need supervising only there. Each query step is paired with each document step;
 * a query step's loss is the mean over the document steps, and query steps combine by their weights. The caller then
 * encodes documents only as deep as the deepest document step — most of a batch's tokens run through fewer blocks.
 *
 * Hard negatives: the document matrix may hold more rows than the query matrix — the positives first (row i is query
 * i's), then mined negatives that every query is scored against (see infoNce).
 *
 * Wasm-friendly by construction: the similarity matMul takes an explicitly transposed operand (ops.matMul2d, whose
 * gradients also avoid the slow transposed paths), and log-sum-exp is spelled with Max/Sub/Exp/Sum/Log because wasm has
 * no LogSoftmax kernel.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { matMul2d } from "../model/ops.js";

export interface ContrastiveLossOptions {
  temperature: number;
  symmetric: boolean;
  /** Matryoshka prefixes (ascending, last = full width). */
  dims: readonly number[];
  /** 1-based recursion steps that receive the loss, and their weights (same length). */
  steps: readonly number[];
  stepWeights: readonly number[];
  /** Also supervise queries at each step against documents at every other supervised step (see the module doc). */
  crossSteps?: boolean;
  /** 1-based steps the documents are supervised at (see the module doc); absent = `steps`, as for the queries. */
  documentSteps?: readonly number[];
}

export interface ContrastiveLoss {
  total: tf.Scalar;
  /** Loss per supervised step (mean over prefixes), same order as options.steps. */
  perStep: tf.Scalar[];
}

/** Row-wise L2 normalisation; the epsilon keeps an all-zero row finite (it happens at initialisation with tiny inits). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(x, tf.rsqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));
}

/** log Σ exp along `axis`, stabilised by the max (Max's gradient cancels exactly, so the value is what matters). */
export function logSumExp(x: tf.Tensor2D, axis: 0 | 1): tf.Tensor1D {
  const max = tf.max(x, axis, true);
  return tf.add(tf.log(tf.sum(tf.exp(tf.sub(x, max)), axis)), tf.reshape(max, [-1])) as tf.Tensor1D;
}

const eyeCache = new Map<string, Float32Array>();
/** The [n, cols] identity (ones on (i, i)) as data, not tf.eye, so no backend-specific kernel is involved; cached. */
function eyeData(n: number, cols: number): Float32Array {
  const key = `${n}x${cols}`;
  let eye = eyeCache.get(key);
  if (!eye) {
    eye = new Float32Array(n * cols);
    for (let i = 0; i < n; i++) eye[i * cols + i] = 1;
    eyeCache.set(key, eye);
  }
  return eye;
}

/**
 * InfoNCE of a [B, C] logit matrix (C ≥ B) whose diagonal holds the positives; columns B… are extra negatives (hard
 * negatives, data/hard-negatives.ts). Query→doc rows normalise over every column. The doc→query direction (symmetric)
 * only exists for the B positive documents: a negative has no query of its own, so its column is left out there.
 */
export function infoNce(logits: tf.Tensor2D, symmetric: boolean): tf.Scalar {
  const [n, cols] = logits.shape;
  if (cols < n) throw new Error(`infoNce: ${n} queries but only ${cols} documents (positives come first, one per query)`);
  const positives = tf.sum(tf.mul(logits, tf.tensor2d(eyeData(n, cols), [n, cols])), 1);
  const rowLoss = tf.mean(tf.sub(logSumExp(logits, 1), positives));
  if (!symmetric) return rowLoss as tf.Scalar;
  const square = cols === n ? logits : (tf.slice(logits, [0, 0], [n, n]) as tf.Tensor2D);
  const colLoss = tf.mean(tf.sub(logSumExp(square, 0), positives));
  return tf.mul(tf.add(rowLoss, colLoss), 0.5) as tf.Scalar;
}

/** InfoNCE at every Matryoshka prefix of one pair of embedding matrices, averaged over prefixes. */
export function matryoshkaInfoNce(q: tf.Tensor2D, d: tf.Tensor2D, opts: ContrastiveLossOptions): tf.Scalar {
  const invTemp = 1 / opts.temperature;
  const losses = opts.dims.map((m) => {
    const qn = l2Normalize(m === q.shape[1] ? q : tf.slice(q, [0, 0], [-1, m]));
    const dn = l2Normalize(m === d.shape[1] ? d : tf.slice(d, [0, 0], [-1, m]));
    const logits = tf.mul(matMul2d(qn, tf.transpose(dn)), invTemp) as tf.Tensor2D;
    return infoNce(logits, opts.symmetric);
  });
  return tf.div(tf.addN(losses), losses.length) as tf.Scalar;
}

/**
 * The deep-supervised loss. `qSteps[t-1]` / `dSteps[t-1]` are the embeddings after recursion step t (as forward returns
 * them); only the configured steps contribute (`dSteps` needs only as many as the deepest document step).
 */
export function contrastiveLoss(qSteps: tf.Tensor2D[], dSteps: tf.Tensor2D[], opts: ContrastiveLossOptions): ContrastiveLoss {
  const at = (steps: tf.Tensor2D[], step: number, side: string): tf.Tensor2D => {
    const embedding = steps[step - 1];
    if (!embedding) throw new Error(`loss wants ${side} recursion step ${step} but forward returned ${steps.length} steps`);
    return embedding;
  };
  const weightOf = (i: number) => opts.stepWeights[i] ?? 1;
  const weightSum = opts.steps.reduce((sum, _, i) => sum + weightOf(i), 0);
  const documentSteps = opts.documentSteps;
  if (documentSteps) {
    const perStep = opts.steps.map((qStep) => {
      const losses = documentSteps.map((dStep) => matryoshkaInfoNce(at(qSteps, qStep, "query"), at(dSteps, dStep, "document"), opts));
      return (losses.length === 1 ? losses[0]! : tf.div(tf.addN(losses), losses.length)) as tf.Scalar;
    });
    return { total: tf.addN(perStep.map((l, i) => tf.mul(l, weightOf(i) / weightSum))) as tf.Scalar, perStep };
  }
  const perStep = opts.steps.map((step) => matryoshkaInfoNce(at(qSteps, step, "query"), at(dSteps, step, "document"), opts));
  if (!opts.crossSteps) {
    return { total: tf.addN(perStep.map((l, i) => tf.mul(l, weightOf(i) / weightSum))) as tf.Scalar, perStep };
  }
  const terms: { loss: tf.Scalar; weight: number }[] = [];
  opts.steps.forEach((qStep, i) =>
    opts.steps.forEach((dStep, j) => {
      const loss = i === j ? perStep[i]! : matryoshkaInfoNce(at(qSteps, qStep, "query"), at(dSteps, dStep, "document"), opts);
      terms.push({ loss, weight: weightOf(i) * weightOf(j) });
    }),
  );
  const termWeightSum = terms.reduce((sum, term) => sum + term.weight, 0);
  return { total: tf.addN(terms.map(({ loss, weight }) => tf.mul(loss, weight / termWeightSum))) as tf.Scalar, perStep };
}

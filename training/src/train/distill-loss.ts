/**
 * The late head as the dense embedding's teacher (`training.objectives.late.distill`): the dense student learns, for
 * each query of a micro-batch, the late head's whole ranking of the batch's documents — not only which one is the
 * positive (InfoNCE's hard label) but how close each negative is (TCT-ColBERT; Lin, Yang & Lin 2021, which distils a
 * ColBERT teacher into a bi-encoder this way).
 *
 * Why this teacher: on SciFact the shipped adapted model's MaxSim ranks held-out train queries far better than its
 * dense embedding (taesr-edge-scifact@0.6.0: MaxSim alone NDCG@10 0.606, dense 0.482), and it is computed from the same
 * hidden states in the same micro-batch, so the signal costs nothing extra to compute.
 *
 *   teacher p_t = softmax(MaxSim / τ_t)     τ_t defaults to the late objective's own τ: the distribution the head's
 *                                          InfoNCE calibrates. Constant: its gradient would move the head and encoder
 *                                          towards whatever the student already believes.
 *   student p_s = softmax(q·dᵀ / τ)   at every supervised query step against the documents it is trained with, at
 *                                      every Matryoshka prefix (the dense loss's own pairs, loss.ts), averaged
 *   loss        = mean over queries of KL(p_t ‖ p_s)
 *
 * A first try divided MaxSim by the query's token count (a mean cosine, on the student's scale) and used the dense τ:
 * adapting taesr-edge-scifact@0.6.0 with it, the dense InfoNCE rose from 0.3 to 0.8–1.7 within 70 updates (KL
 * 0.3–0.8) — the student pulled off its positives, most likely by a teacher that division made too flat (nearly any
 * 128-token abstract holds a close match for each query token). The head's own τ is the scale it was trained at.
 *
 * The lexical teacher (`distill.bm25: α`): the head and BM25 rank together, a product of experts per query row,
 *
 *   teacher p_t = softmax(MaxSim / τ_t + α · (σ_late / σ_bm25) · BM25)      σ: the row's standard deviation
 *
 * so at α = 1 BM25 spreads the row's logits as widely as the head does (an equal-weight fusion, the kind the tuned
 * hybrid search uses), and the teacher stays about as sharp as the head alone. Why: on SciFact BM25 (0.684 test) and
 * the hybrid (0.720) rank far better than the dense student (0.478, taesr-edge-scifact@0.7.0), and the student's
 * mined negatives are exactly the documents it cannot tell from the positive by itself. BM25 reads whole documents
 * (data/lexical-scores.ts: the run's training documents as the index); a row whose query shares no term with any of
 * the batch's documents keeps the head's distribution.
 *
 * Measured (README, the adapted model's row): continuing taesr-edge-scifact@0.7.0 for 240 updates on negatives it
 * mined, α = 1 against the head alone gave held-out dense NDCG@10 0.516 vs 0.519 and SciFact test 0.472 vs 0.483 (length
 * rule), with the KL 4–6× the head-alone one throughout: the fused teacher pulls the student further than it can follow.
 * A smaller α is untried.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { matMul2d } from "../model/ops.js";
import { l2Normalize, logSumExp } from "./loss.js";

/** micro-batch.ts's `late.distill` option: the objective resolved against the run's config. */
export interface DistillObjective {
  /** total += weight · distillation loss. */
  weight: number;
  /** τ_t of the teacher's softmax over MaxSim. */
  temperature: number;
  /** α of the lexical teacher (see the module doc); absent: the late head alone teaches. */
  bm25?: number;
}

/** The teacher's distribution over documents for each query, a constant, and its entropy summed over the rows. */
export interface Teacher {
  probabilities: tf.Tensor2D;
  entropy: number;
}

/** The batch's BM25 scores (data/lexical-scores.ts, row-major like the MaxSim matrix) and their weight α. */
export interface LexicalTeacher {
  scores: Float32Array;
  weight: number;
}

/** Standard deviation of row r of a row-major matrix with `cols` columns. */
function rowStd(values: ArrayLike<number>, r: number, cols: number): number {
  let sum = 0;
  let sumSq = 0;
  for (let c = 0; c < cols; c++) {
    const v = values[r * cols + c]!;
    sum += v;
    sumSq += v * v;
  }
  const mean = sum / cols;
  return Math.sqrt(Math.max(0, sumSq / cols - mean * mean));
}

/**
 * The teacher for each query of a [B, C] MaxSim matrix, as a constant: softmax(MaxSim / τ_t), or with a lexical
 * teacher softmax(MaxSim / τ_t + α · (σ_late / σ_bm25) · BM25) per row. Built from the scores' values, so nothing
 * upstream is differentiated through it.
 */
export function teacherDistribution(maxSim: tf.Tensor2D, temperature: number, lexical?: LexicalTeacher): Teacher {
  if (!(temperature > 0)) throw new Error(`distillation: temperature must be > 0, got ${temperature}`);
  const [rows, cols] = maxSim.shape;
  const logits = Float32Array.from(maxSim.dataSync(), (v) => v / temperature);
  if (lexical) {
    if (!(lexical.weight >= 0)) throw new Error(`distillation: the lexical teacher's weight must be ≥ 0, got ${lexical.weight}`);
    if (lexical.scores.length !== rows * cols) {
      throw new Error(`distillation: ${lexical.scores.length} lexical scores for a [${rows}, ${cols}] MaxSim matrix (the batch's BM25 scores are missing or stale)`);
    }
    for (let r = 0; r < rows; r++) {
      const lexicalStd = rowStd(lexical.scores, r, cols);
      // No query term in any of the batch's documents: BM25 has no opinion on this row.
      if (lexicalStd === 0) continue;
      const lateStd = rowStd(logits, r, cols);
      const scale = (lexical.weight * (lateStd > 0 ? lateStd : 1)) / lexicalStd;
      for (let c = 0; c < cols; c++) logits[r * cols + c]! += scale * lexical.scores[r * cols + c]!;
    }
  }
  const probabilities = new Float32Array(rows * cols);
  let entropy = 0;
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < cols; c++) max = Math.max(max, logits[r * cols + c]!);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(logits[r * cols + c]! - max);
    for (let c = 0; c < cols; c++) {
      const p = Math.exp(logits[r * cols + c]! - max) / sum;
      probabilities[r * cols + c] = p;
      if (p > 0) entropy -= p * Math.log(p);
    }
  }
  return { probabilities: tf.tensor2d(probabilities, [rows, cols]), entropy };
}

/**
 * mean over rows of KL(p ‖ softmax(studentLogits)): the cross-entropy against the teacher minus the teacher's entropy
 * (a constant, so the value is the KL, 0 when the student agrees, and the gradient is the cross-entropy's).
 */
export function klFromTeacher(teacher: Teacher, studentLogits: tf.Tensor2D): tf.Scalar {
  const p = teacher.probabilities;
  if (p.shape[0] !== studentLogits.shape[0] || p.shape[1] !== studentLogits.shape[1]) {
    throw new Error(`distillation: teacher [${p.shape}] and student [${studentLogits.shape}] rank different documents`);
  }
  const rows = p.shape[0];
  const logStudent = tf.sub(studentLogits, tf.reshape(logSumExp(studentLogits, 1), [-1, 1]));
  const crossEntropy = tf.div(tf.neg(tf.sum(tf.mul(p, logStudent))), rows);
  return tf.sub(crossEntropy, teacher.entropy / rows) as tf.Scalar;
}

/**
 * The distillation loss for one micro-batch: the dense student at each (query embedding, document embedding) pair the
 * dense loss supervises and at each Matryoshka prefix, against one teacher distribution; the mean of the KLs.
 */
export function distillLoss(
  teacher: Teacher,
  pairs: readonly { q: tf.Tensor2D; d: tf.Tensor2D }[],
  opts: { dims: readonly number[]; temperature: number },
): tf.Scalar {
  if (pairs.length === 0) throw new Error("distillation: no (query, document) embeddings to distil into");
  const terms = pairs.flatMap(({ q, d }) =>
    opts.dims.map((m) => {
      const qn = l2Normalize(m === q.shape[1] ? q : tf.slice(q, [0, 0], [-1, m]));
      const dn = l2Normalize(m === d.shape[1] ? d : tf.slice(d, [0, 0], [-1, m]));
      return klFromTeacher(teacher, tf.mul(matMul2d(qn, tf.transpose(dn)), 1 / opts.temperature) as tf.Tensor2D);
    }),
  );
  return (terms.length === 1 ? terms[0]! : tf.div(tf.addN(terms), terms.length)) as tf.Scalar;
}

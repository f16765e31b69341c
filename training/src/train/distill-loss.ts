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
}

/**
 * The teacher's distribution over documents for each query, as a constant tensor: softmax(MaxSim / τ_t) of a [B, C]
 * score matrix. Built from the scores' values, so nothing upstream is differentiated through it.
 */
export function teacherDistribution(maxSim: tf.Tensor2D, temperature: number): tf.Tensor2D {
  if (!(temperature > 0)) throw new Error(`distillation: temperature must be > 0, got ${temperature}`);
  const probabilities = tf.tidy(() => {
    const logits = tf.mul(maxSim, 1 / temperature) as tf.Tensor2D;
    return tf.exp(tf.sub(logits, tf.reshape(logSumExp(logits, 1), [-1, 1])));
  });
  const constant = tf.tensor2d(probabilities.dataSync() as Float32Array, maxSim.shape);
  probabilities.dispose();
  return constant;
}

/**
 * mean over rows of KL(p ‖ softmax(studentLogits)): the cross-entropy against the teacher minus the teacher's entropy
 * (a constant, so the value is the KL, 0 when the student agrees, and the gradient is the cross-entropy's).
 */
export function klFromTeacher(teacher: tf.Tensor2D, studentLogits: tf.Tensor2D): tf.Scalar {
  if (teacher.shape[0] !== studentLogits.shape[0] || teacher.shape[1] !== studentLogits.shape[1]) {
    throw new Error(`distillation: teacher [${teacher.shape}] and student [${studentLogits.shape}] rank different documents`);
  }
  const p = teacher.dataSync();
  let entropy = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) entropy -= p[i]! * Math.log(p[i]!);
  const rows = teacher.shape[0];
  const logStudent = tf.sub(studentLogits, tf.reshape(logSumExp(studentLogits, 1), [-1, 1]));
  const crossEntropy = tf.div(tf.neg(tf.sum(tf.mul(teacher, logStudent))), rows);
  return tf.sub(crossEntropy, entropy / rows) as tf.Scalar;
}

/**
 * The distillation loss for one micro-batch: the dense student at each (query embedding, document embedding) pair the
 * dense loss supervises and at each Matryoshka prefix, against one teacher distribution; the mean of the KLs.
 */
export function distillLoss(
  teacher: tf.Tensor2D,
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

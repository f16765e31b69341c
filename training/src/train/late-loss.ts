/**
 * The late-interaction objective (ColBERT; Khattab & Zaharia 2020): in-batch InfoNCE over MaxSim scores.
 *
 *   s(q, d)  = Σ_{real i of q} max_{real j of d} v_qi · v_dj     (model/late-head.ts; v = the head's unit token vectors)
 *   ranking  = infoNce(s / τ)  query → document only               (loss.ts: every document row, the hard-negative rows
 *                                                                    after the positives included)
 * Query → document only: MaxSim is asymmetric (a sum over the query's tokens), and ColBERT trains that direction alone.
 * τ defaults to 0.1, not ColBERT's 1 (raw MaxSim sums as logits): a sum of Tq cosines spans ±Tq, but at the start one
 * text's token vectors are alike and two texts' MaxSim sums differ by a fraction of one cosine, so at τ 1 the softmax
 * is nearly flat and the head learns slowly. Measured on the tiny config (H 64, dim 32, lossSteps [1], 100 updates of
 * 16 pairs): held-out MaxSim MRR 0.112 → 0.181 at τ 1, → 0.231 at τ 0.1.
 *
 * The head is supervised at the listed recursion steps (default: the deepest supervised step, the state a long
 * document is embedded at) and the losses are averaged; serving applies the head to h of whatever step the encoder
 * stopped at (routed depth, early exit).
 *
 * @example
 *   const loss = lateLoss(params, q.states[5]!, qMask, d.states[5]!, dMask, 1); // scalar
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ParamTensors } from "../model/forward.js";
import { lateTokenVectors, maxSimScores } from "../model/late-head.js";
import { distillLoss, teacherDistribution, type DistillObjective, type LexicalTeacher } from "./distill-loss.js";
import { infoNce } from "./loss.js";

/** τ when the config names none (see the module doc for the measurement behind it). */
export const DEFAULT_LATE_TEMPERATURE = 0.1;

/** micro-batch.ts's `late` option: the objective resolved against the run's config. */
export interface LateObjective {
  /** total = dense + weight · mean over steps of the late InfoNCE. */
  weight: number;
  temperature: number;
  /** 1-based recursion steps whose hidden state the head is trained on. */
  steps: readonly number[];
  /** The head as the dense embedding's teacher (distill-loss.ts), on the mean of those steps' MaxSim. */
  distill?: DistillObjective;
}

/** MaxSim [B, C] of queries hq [B,Tq,H] against documents hd [C≥B,Td,H] (positives first) through the head. */
export function lateScores(params: ParamTensors, hq: tf.Tensor3D, qMask: tf.Tensor2D, hd: tf.Tensor3D, dMask: tf.Tensor2D): tf.Tensor2D {
  return maxSimScores(lateTokenVectors(params, hq), qMask, lateTokenVectors(params, hd), dMask);
}

/** The late InfoNCE of a MaxSim matrix from {@link lateScores}. */
export function lateRankingLoss(scores: tf.Tensor2D, temperature: number): tf.Scalar {
  if (!(temperature > 0)) throw new Error(`late loss: temperature must be > 0, got ${temperature}`);
  return infoNce(tf.mul(scores, 1 / temperature) as tf.Tensor2D, false);
}

/** The late InfoNCE for hidden states of queries hq [B,Tq,H] and documents hd [C≥B,Td,H] (positives first). */
export function lateLoss(
  params: ParamTensors,
  hq: tf.Tensor3D,
  qMask: tf.Tensor2D,
  hd: tf.Tensor3D,
  dMask: tf.Tensor2D,
  temperature: number,
): tf.Scalar {
  return lateRankingLoss(lateScores(params, hq, qMask, hd, dMask), temperature);
}

/** The late objective's terms of one micro-batch: its InfoNCE and, with `late.distill`, the distillation KL. */
export interface LateTerms {
  /** Mean over the late steps of the late InfoNCE (unweighted). */
  late: tf.Scalar;
  /** KL of the dense student to the MaxSim teacher (unweighted); absent without `late.distill`. */
  distill?: tf.Scalar;
  /** weight · late + distill.weight · distill: what the objective adds to the micro-batch's total. */
  total: tf.Scalar;
}

/**
 * The late objective from the MaxSim matrices of its steps (`scoresPerStep[i]` for `late.steps[i]`), and the dense
 * (query, document) embeddings at each loss step for the distillation: the one definition micro-batch.ts (under the
 * tape) and gradient-cache.ts (over cached outputs) both differentiate. `lexicalScores` are the batch's BM25 scores,
 * needed when the teacher fuses them (`distill.bm25`).
 */
export function lateObjectiveTerms(
  scoresPerStep: readonly tf.Tensor2D[],
  late: LateObjective,
  densePairs: readonly { q: tf.Tensor2D; d: tf.Tensor2D }[],
  dense: { dims: readonly number[]; temperature: number },
  lexicalScores: Float32Array | undefined,
): LateTerms {
  const meanOf = (xs: readonly tf.Tensor[]) => (xs.length === 1 ? xs[0]! : tf.div(tf.addN(xs as tf.Tensor[]), xs.length));
  const lateTerm = meanOf(scoresPerStep.map((scores) => lateRankingLoss(scores, late.temperature))) as tf.Scalar;
  let total = tf.mul(lateTerm, late.weight) as tf.Scalar;
  if (!late.distill) return { late: lateTerm, total };
  let lexical: LexicalTeacher | undefined;
  if (late.distill.bm25 !== undefined) {
    if (!lexicalScores) throw new Error("the lexical distillation teacher needs each batch's BM25 scores (PairBatcher options.lexical)");
    lexical = { scores: lexicalScores, weight: late.distill.bm25 };
  }
  const teacher = teacherDistribution(meanOf(scoresPerStep) as tf.Tensor2D, late.distill.temperature, lexical);
  const kl = distillLoss(teacher, densePairs, { dims: dense.dims, temperature: dense.temperature });
  total = tf.add(total, tf.mul(kl, late.distill.weight)) as tf.Scalar;
  return { late: lateTerm, distill: kl, total };
}

/**
 * The `late` option of micro-batch.ts from `training.objectives.late` (undefined when off): temperature 0.1 and the
 * deepest supervised step unless the config names others; a distillation's teacher temperature defaults to the late
 * objective's own (distill-loss.ts says why).
 */
export function lateObjectiveOf(
  objective:
    | {
        weight: number;
        temperature?: number | undefined;
        steps?: number[] | undefined;
        distill?: { weight: number; temperature?: number | undefined; bm25?: number | undefined } | undefined;
      }
    | undefined,
  lossSteps: readonly number[],
): LateObjective | undefined {
  if (!objective) return undefined;
  const { distill } = objective;
  const temperature = objective.temperature ?? DEFAULT_LATE_TEMPERATURE;
  return {
    weight: objective.weight,
    temperature,
    steps: objective.steps ?? [Math.max(...lossSteps)],
    ...(distill
      ? { distill: { weight: distill.weight, temperature: distill.temperature ?? temperature, ...(distill.bm25 !== undefined ? { bm25: distill.bm25 } : {}) } }
      : {}),
  };
}

/**
 * The sparse objective (SPLADE; Formal et al. 2021): InfoNCE over vocabulary dot products plus the FLOPS regulariser.
 *
 *   score(q, d) = Σ_v q_v · d_v                          (no temperature: the term weights carry their own scale)
 *   ranking     = infoNce(scores)                        (loss.ts: in-batch negatives; documents may have more rows
 *                                                          than queries — hard negatives follow the positives)
 *   FLOPS(W)    = Σ_v (mean_b W_b,v)²                    a smooth proxy of the posting-list work a query costs: it
 *                                                          pushes whole vocabulary entries to zero across the batch,
 *                                                          not just small weights (an L1 would spread sparsity evenly)
 *   total       = ranking + λ_q(t)·FLOPS(Q) + λ_d(t)·FLOPS(D)
 *   λ(t)        = λ · min(1, t / warmupSteps)²            SPLADE's quadratic warm-up: a full regulariser from step 0
 *                                                          zeroes the term weights before ranking has shaped them
 *
 * @example
 *   const { total, ranking, flopsQuery, flopsDoc } = sparseLoss(qw, dw, { lambdaQuery: 3e-4, lambdaDoc: 1e-4 }, true);
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { matMul2d } from "../model/ops.js";
import { infoNce } from "./loss.js";

export interface SparseLossWeights {
  /** λ_q and λ_d already warmed up for this update (sparseLambdas). */
  lambdaQuery: number;
  lambdaDoc: number;
}

export interface SparseLoss {
  total: tf.Scalar;
  /** The InfoNCE part alone. */
  ranking: tf.Scalar;
  /** FLOPS(Q) and FLOPS(D), before their λ. */
  flopsQuery: tf.Scalar;
  flopsDoc: tf.Scalar;
}

/** Σ_v (mean over rows of w[:,v])² for term weights w [rows, V]. */
export function flopsRegularizer(w: tf.Tensor2D): tf.Scalar {
  return tf.sum(tf.square(tf.mean(w, 0))) as tf.Scalar;
}

/** λ(t) = λ · min(1, step / warmupSteps)², step counted from 0 (the first update has no regulariser). */
export function warmedLambda(lambda: number, step: number, warmupSteps: number): number {
  if (!(lambda >= 0)) throw new Error(`sparse λ must be ≥ 0, got ${lambda}`);
  if (warmupSteps <= 0) return lambda;
  const r = Math.min(1, Math.max(0, step) / warmupSteps);
  return lambda * r * r;
}

/** The configured λs at update `step` (0-based). */
export function sparseLambdas(
  config: { lambdaQuery: number; lambdaDoc: number; warmupSteps: number },
  step: number,
): SparseLossWeights {
  return {
    lambdaQuery: warmedLambda(config.lambdaQuery, step, config.warmupSteps),
    lambdaDoc: warmedLambda(config.lambdaDoc, step, config.warmupSteps),
  };
}

/** Ranking loss + FLOPS regularisers for query term weights q [B,V] and document term weights d [≥B,V]. */
export function sparseLoss(q: tf.Tensor2D, d: tf.Tensor2D, weights: SparseLossWeights, symmetric: boolean): SparseLoss {
  if (q.shape[1] !== d.shape[1]) throw new Error(`sparse loss: query width ${q.shape[1]} ≠ document width ${d.shape[1]}`);
  const scores = matMul2d(q, tf.transpose(d));
  const ranking = infoNce(scores, symmetric);
  const flopsQuery = flopsRegularizer(q);
  const flopsDoc = flopsRegularizer(d);
  const total = tf.add(ranking, tf.add(tf.mul(flopsQuery, weights.lambdaQuery), tf.mul(flopsDoc, weights.lambdaDoc))) as tf.Scalar;
  return { total, ranking, flopsQuery, flopsDoc };
}

/** micro-batch.ts's `sparse` option for update `step` (0-based) from `training.objectives.sparse`; undefined when off. */
export function sparseObjectiveAt(
  objective: { weight: number; lambdaQuery: number; lambdaDoc: number; warmupSteps: number } | undefined,
  step: number,
): (SparseLossWeights & { weight: number }) | undefined {
  return objective ? { weight: objective.weight, ...sparseLambdas(objective, step) } : undefined;
}

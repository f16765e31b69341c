/**
 * Gradients of the contrastive loss over one or more micro-batches, the unit of work both the coordinating trainer
 * and its data-parallel gradient workers (data-parallel.ts) run.
 *
 * Each micro-batch is its own InfoNCE problem (its pairs are each other's negatives); gradients are summed over the
 * micro-batches here and divided by the total count by whoever combines them, so one update is the mean of the
 * micro-batch gradients however they were spread over processes and accumulation steps.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { weightNamesIn, type WeightName } from "../../../src/model/spec.js";
import type { EncodedBatch } from "../data/batches.js";
import { forward } from "../model/forward.js";
import type { TaesrParams } from "../model/params.js";
import { contrastiveLoss, type ContrastiveLossOptions } from "./loss.js";

export interface MicroBatchResult {
  /** Σ over micro-batches of d(loss)/d(weight); the caller owns (and disposes) the tensors. */
  gradSums: Record<WeightName, tf.Tensor>;
  /** Loss of each micro-batch, in order. */
  losses: number[];
  /** Per supervised recursion step, the loss of each micro-batch ([microBatch][step]). */
  perStep: number[][];
  /** Real (unpadded) tokens encoded. */
  tokens: number;
  /** Positions the backend computed on, padding included. */
  paddedTokens: number;
}

function toTensors(batch: EncodedBatch): { qIds: tf.Tensor2D; qMask: tf.Tensor2D; dIds: tf.Tensor2D; dMask: tf.Tensor2D } {
  const { queries: q, docs: d } = batch;
  return {
    qIds: tf.tensor2d(q.ids, [q.rows, q.length], "int32"),
    qMask: tf.tensor2d(q.mask, [q.rows, q.length], "float32"),
    dIds: tf.tensor2d(d.ids, [d.rows, d.length], "int32"),
    dMask: tf.tensor2d(d.mask, [d.rows, d.length], "float32"),
  };
}

export interface MicroBatchOptions {
  /** Gradient checkpointing in the forward pass (forward.ts EncodeOptions): lower peak memory, one extra block forward
   * per step in the backward pass; the gradients are the same. */
  checkpoint?: boolean;
}

/** Runs forward + backward on each micro-batch in turn and sums the gradients (only one batch's activations live). */
export function microBatchGradients(
  params: TaesrParams,
  lossOptions: ContrastiveLossOptions,
  batches: readonly EncodedBatch[],
  options: MicroBatchOptions = {},
): MicroBatchResult {
  if (batches.length === 0) throw new Error("microBatchGradients needs at least one batch");
  const maxStep = Math.max(...lossOptions.steps);
  // The model's own weights (they depend on its block: spec.ts weightNames).
  const names = weightNamesIn(params);
  const variables = names.map((n) => params[n]);
  const byVarName = new Map<string, WeightName>(names.map((n) => [params[n].name, n]));
  let gradSums: Record<WeightName, tf.Tensor> | undefined;
  const losses: number[] = [];
  const perStep: number[][] = [];
  let tokens = 0;
  let paddedTokens = 0;
  for (const batch of batches) {
    let perStepTensors: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const x = toTensors(batch);
      const encodeOptions = { checkpoint: options.checkpoint ?? false };
      const qSteps = forward(params, x.qIds, x.qMask, maxStep, undefined, encodeOptions);
      const dSteps = forward(params, x.dIds, x.dMask, maxStep, undefined, encodeOptions);
      const { total, perStep: stepLosses } = contrastiveLoss(qSteps, dSteps, lossOptions);
      // variableGrads runs f inside a tidy; keep the per-step losses for logging (disposed below).
      perStepTensors = stepLosses.map((l) => tf.keep(l));
      return total;
    }, variables);
    losses.push(value.dataSync()[0] as number);
    perStep.push(perStepTensors.map((l) => l.dataSync()[0] as number));
    value.dispose();
    for (const l of perStepTensors) l.dispose();
    const named = {} as Record<WeightName, tf.Tensor>;
    for (const [varName, g] of Object.entries(grads)) {
      const name = byVarName.get(varName);
      if (!name) throw new Error(`gradient for unknown variable ${varName}`);
      named[name] = g;
    }
    if (!gradSums) {
      gradSums = named;
    } else {
      for (const name of names) {
        const sum = tf.add(gradSums[name], named[name]);
        gradSums[name].dispose();
        named[name].dispose();
        gradSums[name] = sum;
      }
    }
    tokens += batch.queries.tokens + batch.docs.tokens;
    paddedTokens += batch.queries.rows * batch.queries.length + batch.docs.rows * batch.docs.length;
  }
  return { gradSums: gradSums as Record<WeightName, tf.Tensor>, losses, perStep, tokens, paddedTokens };
}

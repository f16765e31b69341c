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
import { LATE_WEIGHT_NAMES, SPARSE_WEIGHT_NAMES, weightNamesIn, type WeightName } from "../../../src/model/spec.js";
import type { EncodedBatch } from "../data/batches.js";
import { encode } from "../model/forward.js";
import { encodeInLengthGroups } from "./length-groups.js";
import type { TaesrParams } from "../model/params.js";
import { sparseHead } from "../model/sparse-head.js";
import { contrastiveLoss, type ContrastiveLossOptions } from "./loss.js";
import { sparseLoss, type SparseLossWeights } from "./sparse-loss.js";
import { lateObjectiveTerms, lateScores, type LateObjective } from "./late-loss.js";
import { labelRows } from "../data/subspace-labels.js";
import { cachedMicroBatchGradients, type GradientCacheOptions } from "./gradient-cache.js";
import { probeNames, subspaceLoss, type ProbeName, type SubspaceLossOptions, type SubspaceProbes } from "./subspace-loss.js";

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
  /** Per micro-batch, each objective's value when more than the dense one is trained (e.g. {dense, sparse, …}); else []. */
  objectives: Record<string, number>[];
  /** Σ over micro-batches of d(loss)/d(probe) for the subspace probes (subspace-loss.ts), when they are trained. */
  auxGradSums?: Record<ProbeName, tf.Tensor>;
}

/** The batch's padding masks, [rows, length] as padded: what the heads read beside the states. */
function masksOf(batch: EncodedBatch): { qMask: tf.Tensor2D; dMask: tf.Tensor2D } {
  const { queries: q, docs: d } = batch;
  return { qMask: tf.tensor2d(q.mask, [q.rows, q.length], "float32"), dMask: tf.tensor2d(d.mask, [d.rows, d.length], "float32") };
}

function toTensors(batch: EncodedBatch): { qIds: tf.Tensor2D; qMask: tf.Tensor2D; dIds: tf.Tensor2D; dMask: tf.Tensor2D } {
  const { queries: q, docs: d } = batch;
  return { qIds: tf.tensor2d(q.ids, [q.rows, q.length], "int32"), dIds: tf.tensor2d(d.ids, [d.rows, d.length], "int32"), ...masksOf(batch) };
}

export interface MicroBatchOptions {
  /** Gradient checkpointing in the forward pass (forward.ts EncodeOptions): lower peak memory, one extra block forward
   * per step in the backward pass; the gradients are the same. */
  checkpoint?: boolean;
  /** The sparse objective (sparse-loss.ts) on the head over the deepest supervised step's hidden states: total =
   * dense + weight · (ranking + λ_q·FLOPS(Q) + λ_d·FLOPS(D)), λs already warmed up for this update. */
  sparse?: SparseLossWeights & { weight: number };
  /** The subspace objectives (subspace-loss.ts): the training-only probes and the loss options, on each batch's probe
   * sample (batch.probe: texts drawn uniformly from the training pairs, labelled from their text and source). */
  subspaces?: { probes: SubspaceProbes; loss: SubspaceLossOptions };
  /** The late-interaction objective (late-loss.ts) on the head over the listed steps' hidden states: total = dense +
   * weight · mean over those steps of the MaxSim InfoNCE. */
  late?: LateObjective;
  /** training.trainHeadsOnly (config.ts): differentiate only the weights of the heads whose objective is given, on
   * hidden states the encoder computed forward only; no dense loss. */
  headsOnly?: boolean;
  /** training.gradientCache (gradient-cache.ts): the same loss and gradients with at most this many rows encoded
   * with gradients at a time, for micro-batches whose backward pass would not fit. */
  gradientCache?: GradientCacheOptions;
}

/**
 * Where the document side of a micro-batch stops, and which document state a head's query step k is trained against:
 * step k itself when documents are supervised at the query steps; with fixed-depth documents (loss.ts documentSteps),
 * the deepest document step — the state the index computes a document's heads from.
 */
export function documentStepOf(lossOptions: ContrastiveLossOptions): { deepest: number; paired: (queryStep: number) => number } {
  const fixed = lossOptions.documentSteps;
  if (!fixed) return { deepest: Math.max(...lossOptions.steps), paired: (k) => k };
  const deepest = Math.max(...fixed);
  return { deepest, paired: () => deepest };
}

/** Mean non-zero term weights per row of w [rows, V] (how sparse the head's output is). */
function meanNonZeros(w: tf.Tensor2D): number {
  const data = w.dataSync();
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i]! > 0) count++;
  return count / Math.max(1, w.shape[0]);
}

/** Runs forward + backward on each micro-batch in turn and sums the gradients (only one batch's activations live). */
export function microBatchGradients(
  params: TaesrParams,
  lossOptions: ContrastiveLossOptions,
  batches: readonly EncodedBatch[],
  options: MicroBatchOptions = {},
): MicroBatchResult {
  if (batches.length === 0) throw new Error("microBatchGradients needs at least one batch");
  if (options.headsOnly) return headGradients(params, lossOptions, batches, options);
  if (options.gradientCache) return cachedMicroBatchGradients(params, lossOptions, batches, options, options.gradientCache);
  const maxStep = Math.max(...lossOptions.steps);
  const docStep = documentStepOf(lossOptions);
  // The model's own weights (they depend on its block: spec.ts weightNames).
  const names = weightNamesIn(params);
  const variables = names.map((n) => params[n]);
  const byVarName = new Map<string, WeightName>(names.map((n) => [params[n].name, n]));
  // The subspace probes are differentiated with the model but summed apart: they are not model weights.
  const probes = options.subspaces?.probes;
  const auxByVarName = new Map<string, ProbeName>(probes ? probeNames().map((n) => [probes[n].name, n]) : []);
  if (probes) variables.push(...probeNames().map((n) => probes[n]));
  let auxGradSums: Record<ProbeName, tf.Tensor> | undefined;
  let gradSums: Record<WeightName, tf.Tensor> | undefined;
  const losses: number[] = [];
  const perStep: number[][] = [];
  let tokens = 0;
  let paddedTokens = 0;
  const objectives: Record<string, number>[] = [];
  for (const batch of batches) {
    let perStepTensors: tf.Scalar[] = [];
    let objectiveTensors: Record<string, tf.Tensor> = {};
    let subspaceTensors: Record<string, tf.Tensor> = {};
    let lateTensors: Record<string, tf.Tensor> = {};
    let queryPositions = 0;
    let docPositions = 0;
    let probePositions = 0;
    const { value, grads } = tf.variableGrads(() => {
      // The encoders run in length groups on the token matrices; the heads read the states under the full masks.
      const x = masksOf(batch);
      const encodeOptions = { checkpoint: options.checkpoint ?? false };
      const q = encodeInLengthGroups(params, batch.queries, maxStep, encodeOptions);
      queryPositions = q.paddedPositions;
      const d = encodeInLengthGroups(params, batch.docs, docStep.deepest, encodeOptions);
      docPositions = d.paddedPositions;
      const { total, perStep: stepLosses } = contrastiveLoss(q.embeddings, d.embeddings, lossOptions);
      // variableGrads runs f inside a tidy; keep the per-step losses for logging (disposed below).
      perStepTensors = stepLosses.map((l) => tf.keep(l));
      let withSubspaces = total;
      if (options.subspaces) {
        const sample = batch.probe;
        if (!sample) throw new Error("the subspace objectives need each batch's probe sample (PairBatcher options.probeRows)");
        const probe = encodeInLengthGroups(params, sample.matrix, Math.max(...options.subspaces.loss.steps), encodeOptions);
        probePositions = probe.paddedPositions;
        const sub = subspaceLoss(options.subspaces.probes, probe.embeddings, labelRows(sample.rows), options.subspaces.loss);
        // With the sparse objective its record keeps `dense` (and disposes that kept tensor before this one is read).
        const dense = options.sparse ? {} : { dense: total };
        subspaceTensors = Object.fromEntries(Object.entries({ ...dense, subspaces: sub.total, ...sub.perSubspace }).map(([k, t]) => [k, tf.keep(t)]));
        withSubspaces = tf.add(total, sub.total) as tf.Scalar;
      }
      let withLate = withSubspaces;
      if (options.late) {
        const { steps } = options.late;
        const scoresPerStep = steps.map((k) => {
          if (!Number.isInteger(k) || k < 1 || k > maxStep) throw new Error(`late objective: step ${k} is not a computed step (1…${maxStep})`);
          return lateScores(params, q.states[k - 1]!, x.qMask, d.states[docStep.paired(k) - 1]!, x.dMask);
        });
        const pairs = lossOptions.steps.map((k) => ({ q: q.embeddings[k - 1]!, d: d.embeddings[docStep.paired(k) - 1]! }));
        const terms = lateObjectiveTerms(scoresPerStep, options.late, pairs, lossOptions, batch.lexical);
        // The sparse and subspace records already hold `dense` (and dispose that kept tensor before this one is read).
        lateTensors = { ...(options.sparse || options.subspaces ? {} : { dense: tf.keep(total) }), late: tf.keep(terms.late) };
        if (terms.distill) lateTensors.distill = tf.keep(terms.distill);
        withLate = tf.add(withSubspaces, terms.total) as tf.Scalar;
      }
      if (!options.sparse) return withLate;
      const qw = sparseHead(params, q.states[maxStep - 1]!, x.qMask);
      const dw = sparseHead(params, d.states[docStep.deepest - 1]!, x.dMask);
      const sparse = sparseLoss(qw, dw, options.sparse, lossOptions.symmetric);
      objectiveTensors = Object.fromEntries(
        Object.entries({ dense: total, sparse: sparse.total, sparseRanking: sparse.ranking, flopsQuery: sparse.flopsQuery, flopsDoc: sparse.flopsDoc, qw, dw }).map(
          ([k, t]) => [k, tf.keep(t)],
        ),
      );
      return tf.add(withLate, tf.mul(sparse.total, options.sparse.weight)) as tf.Scalar;
    }, variables);
    losses.push(value.dataSync()[0] as number);
    perStep.push(perStepTensors.map((l) => l.dataSync()[0] as number));
    value.dispose();
    for (const l of perStepTensors) l.dispose();
    if (options.sparse) {
      const { qw, dw, ...scalars } = objectiveTensors;
      objectives.push({
        ...Object.fromEntries(Object.entries(scalars).map(([k, t]) => [k, t.dataSync()[0] as number])),
        nonZerosQuery: meanNonZeros(qw as tf.Tensor2D),
        nonZerosDoc: meanNonZeros(dw as tf.Tensor2D),
      });
      for (const t of Object.values(objectiveTensors)) t.dispose();
    }
    if (options.subspaces) {
      const values = Object.fromEntries(Object.entries(subspaceTensors).map(([k, t]) => [k, t.dataSync()[0] as number]));
      // One record per micro-batch: join the sparse objective's when it made one.
      if (options.sparse) Object.assign(objectives[objectives.length - 1]!, values);
      else objectives.push(values);
      for (const t of Object.values(subspaceTensors)) t.dispose();
    }
    if (options.late) {
      const values = Object.fromEntries(Object.entries(lateTensors).map(([k, t]) => [k, t.dataSync()[0] as number]));
      if (options.sparse || options.subspaces) Object.assign(objectives[objectives.length - 1]!, values);
      else objectives.push(values);
      for (const t of Object.values(lateTensors)) t.dispose();
    }
    const named = {} as Record<WeightName, tf.Tensor>;
    const auxNamed = {} as Record<ProbeName, tf.Tensor>;
    for (const [varName, g] of Object.entries(grads)) {
      const probe = auxByVarName.get(varName);
      if (probe) {
        auxNamed[probe] = g;
        continue;
      }
      const name = byVarName.get(varName);
      if (!name) throw new Error(`gradient for unknown variable ${varName}`);
      named[name] = g;
    }
    gradSums = addInto(gradSums, named);
    if (probes) auxGradSums = addInto(auxGradSums, auxNamed);
    // The probe sample is encoded only when the subspace objective is trained.
    tokens += batch.queries.tokens + batch.docs.tokens + (options.subspaces ? (batch.probe?.matrix.tokens ?? 0) : 0);
    paddedTokens += queryPositions + docPositions + probePositions;
  }
  return {
    gradSums: gradSums as Record<WeightName, tf.Tensor>,
    losses,
    perStep,
    tokens,
    paddedTokens,
    objectives,
    ...(auxGradSums ? { auxGradSums } : {}),
  };
}

/**
 * The heads-only update (training.trainHeadsOnly): the encoder runs outside the gradient tape, so its hidden states are
 * constants of the heads' losses and nothing upstream of them is differentiated or recorded; gradients exist only for
 * the trained heads' own weights (AdamW leaves every weight without one untouched). The sparse head's tied token table
 * is read, not trained. total = Σ weight · objective over the heads given.
 */
function headGradients(
  params: TaesrParams,
  lossOptions: ContrastiveLossOptions,
  batches: readonly EncodedBatch[],
  options: MicroBatchOptions,
): MicroBatchResult {
  if (options.subspaces) throw new Error("trainHeadsOnly cannot train the subspace probes: they read the frozen embedding");
  const names = weightNamesIn(params).filter(
    (n) => (options.sparse !== undefined && (SPARSE_WEIGHT_NAMES as readonly string[]).includes(n)) || (options.late !== undefined && (LATE_WEIGHT_NAMES as readonly string[]).includes(n)),
  );
  if (names.length === 0) throw new Error("trainHeadsOnly: no head to train (give the sparse or late objective of a model with that head)");
  const maxStep = Math.max(...lossOptions.steps);
  const docStep = documentStepOf(lossOptions);
  let gradSums: Record<WeightName, tf.Tensor> | undefined;
  const losses: number[] = [];
  const objectives: Record<string, number>[] = [];
  let tokens = 0;
  let paddedTokens = 0;
  for (const batch of batches) {
    const x = toTensors(batch);
    const [qStates, dStates] = tf.tidy(() => [encode(params, x.qIds, x.qMask, maxStep).states, encode(params, x.dIds, x.dMask, docStep.deepest).states] as const);
    let kept: Record<string, tf.Tensor> = {};
    try {
      const { value, grads } = tf.variableGrads(() => {
        const parts: tf.Scalar[] = [];
        const record: Record<string, tf.Tensor> = {};
        if (options.sparse) {
          const qw = sparseHead(params, qStates[maxStep - 1]!, x.qMask);
          const dw = sparseHead(params, dStates[docStep.deepest - 1]!, x.dMask);
          const sparse = sparseLoss(qw, dw, options.sparse, lossOptions.symmetric);
          Object.assign(record, { sparse: sparse.total, sparseRanking: sparse.ranking, flopsQuery: sparse.flopsQuery, flopsDoc: sparse.flopsDoc, qw, dw });
          parts.push(tf.mul(sparse.total, options.sparse.weight) as tf.Scalar);
        }
        if (options.late) {
          const scoresPerStep = options.late.steps.map((k) => {
            if (!Number.isInteger(k) || k < 1 || k > maxStep) throw new Error(`late objective: step ${k} is not a computed step (1…${maxStep})`);
            return lateScores(params, qStates[k - 1]!, x.qMask, dStates[docStep.paired(k) - 1]!, x.dMask);
          });
          // No dense pairs: the config refuses distillation with trainHeadsOnly (the dense embedding stays fixed).
          const terms = lateObjectiveTerms(scoresPerStep, options.late, [], lossOptions, undefined);
          record.late = terms.late;
          parts.push(terms.total);
        }
        kept = Object.fromEntries(Object.entries(record).map(([k, t]) => [k, tf.keep(t)]));
        return parts.length === 1 ? parts[0]! : (tf.addN(parts) as tf.Scalar);
      }, names.map((n) => params[n]));
      losses.push(value.dataSync()[0] as number);
      value.dispose();
      const { qw, dw, ...scalars } = kept;
      objectives.push({
        ...Object.fromEntries(Object.entries(scalars).map(([k, t]) => [k, t.dataSync()[0] as number])),
        ...(qw && dw ? { nonZerosQuery: meanNonZeros(qw as tf.Tensor2D), nonZerosDoc: meanNonZeros(dw as tf.Tensor2D) } : {}),
      });
      const byVarName = new Map<string, WeightName>(names.map((n) => [params[n].name, n]));
      const named = {} as Record<WeightName, tf.Tensor>;
      for (const [varName, g] of Object.entries(grads)) {
        const name = byVarName.get(varName);
        if (!name) throw new Error(`gradient for unknown variable ${varName}`);
        named[name] = g;
      }
      gradSums = addInto(gradSums, named);
    } finally {
      for (const t of [...Object.values(kept), ...qStates, ...dStates, ...Object.values(x)]) t.dispose();
    }
    tokens += batch.queries.tokens + batch.docs.tokens;
    paddedTokens += batch.queries.rows * batch.queries.length + batch.docs.rows * batch.docs.length;
  }
  return { gradSums: gradSums as Record<WeightName, tf.Tensor>, losses, perStep: batches.map(() => []), tokens, paddedTokens, objectives };
}

/**
 * sum + next, name by name (both disposed; a new record when there is no sum yet). A name with no gradient in `next`
 * (null: a weight the loss does not reach, such as a head without its objective) adds nothing, so it stays out of the
 * sums and the optimiser leaves that weight as it is (trainer.ts updates the weights the sums name).
 */
export function addInto<N extends string>(sum: Record<N, tf.Tensor> | undefined, next: Partial<Record<N, tf.Tensor | null>>): Record<N, tf.Tensor> {
  const total = sum ?? ({} as Record<N, tf.Tensor>);
  for (const [name, g] of Object.entries(next) as [N, tf.Tensor | null][]) {
    if (!g) continue;
    const before = total[name];
    if (!before) {
      total[name] = g;
      continue;
    }
    total[name] = tf.add(before, g);
    before.dispose();
    g.dispose();
  }
  return total;
}

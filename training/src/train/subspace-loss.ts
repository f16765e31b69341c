/**
 * Subspace objectives: a linear probe per named subspace of the embedding (src/model/taesr-config.ts), trained jointly
 * with the model so each range carries one property — temporal [192,256) and procedural [256,320) with binary
 * cross-entropy, contextual [320,384) with a 4-way softmax cross-entropy (labels: data/subspace-labels.ts).
 *
 * The probe is a cosine classifier: one learned prototype per class (`aux.<subspace>.w`, [classes, width]), and the
 * logit of class c for a row is PROBE_SCALE · cos(slice, prototype_c) — the slice being the row's subspace components,
 * at each supervised recursion step (the contrastive loss's steps and step weights, or objectives.subspaces.steps
 * equally weighted). The binary labels use two prototypes and z = logit₁ − logit₀, for which BCE is exactly the
 * two-class softmax cross-entropy. The first attempt —
 * z = x·w + b on the batch's own rows — left held-out accuracy at the majority rate for all three probes after 60
 * updates of the tiny config, for two reasons (with both addressed, contextual reached 0.906 against a majority of 0.430):
 * - Untrained embeddings are anisotropic (every text's slice points nearly the same way: cosine 0.97 between unrelated
 *   texts), so a plain linear probe learns that common direction as a bias and hands the model no useful gradient.
 *   Seeded random prototypes are nearly orthogonal to it, so from the first update the gradient pushes each row's slice
 *   towards its class's prototype, with the scale of a contrastive logit.
 * - The batcher sorts pairs by document length within windows (data/batches.ts), so one batch is mostly one source
 *   (often all of it) and has a skewed share of temporal and procedural texts: any per-class offset then chases each
 *   batch's class mix (the training loss fell below the prior's, held-out accuracy did not move) while the embedding
 *   stays untouched. So the labelled rows are not the batch's own but a uniform sample of the training texts drawn for
 *   each batch (PairBatcher.probeSample; `training.objectives.subspaces.rows`).
 * Comparing directions also keeps the objective off the slice's norm: a subspace cannot satisfy its probe by growing and
 * crowding the cosine the retrieval losses train.
 *
 * Class balancing. With the two fixes above contextual learnt, but temporal and procedural stayed at their majority
 * rates: about 9 % of the texts the probes see are temporal and 3 % procedural (tiny config), so "always no" is
 * already within a few hundredths of the unweighted optimum and the gradient that would separate the classes is mostly
 * the negatives'. Each row's loss is therefore weighted by its class, w_c = 1 / (K · p_c), with p_c the class's share
 * of the texts the probe rows are drawn from and K the classes present (sklearn's "balanced" weights): the expected loss
 * is then the mean of the per-class losses — the cross-entropy counterpart of balanced accuracy, the figure validation
 * reports — and its scale stays that of the unweighted mean (Σ_c p_c w_c = 1), so `weight` keeps its meaning.
 * - Weights, not balanced sampling of the probe rows: one sample of rows serves all three probes, and drawing it to
 *   balance temporal would skew the procedural and contextual mixes (procedural texts are mostly Debian's), i.e. bias
 *   the other probes in ways that need weights to undo anyway. Weighting leaves the sample exactly as it was drawn.
 * - p_c from the population, not from each micro-batch: 32 rows hold about one procedural text, so a per-batch
 *   frequency would be 0, 1/32 or 2/32 from batch to batch and the weight would jump with it (and be undefined in the
 *   many batches without a positive). The shares are estimated once per run from PROBE_POPULATION_DRAWS texts drawn the
 *   way probe rows are (data/batches.ts PairBatcher.probePopulation, seeded by the run's seed): every data-parallel rank
 *   and a resumed run compute the same weights, so bit-exactness and exact resume hold with no extra state.
 * - The per-row mean is over rows (Σ w_i ℓ_i / n), not normalised by Σ w_i: a batch without a positive then still
 *   pulls the negatives with their small weight instead of a full one, so the estimate of the balanced loss stays
 *   unbiased from batch to batch.
 * - A share below MIN_CLASS_SHARE counts as that share, which caps a weight at 1 / (K · MIN_CLASS_SHARE): a class seen
 *   a handful of times would otherwise put one row's gradient above the global clip norm and stall the update.
 * `training.objectives.subspaces.classBalance: "none"` trains the unweighted loss (the earlier behaviour).
 *
 * The semantic subspace [0,192) needs no term of its own: the Matryoshka InfoNCE at the 64- and 128-d prefixes (loss.ts)
 * already trains its leading 128 dims as a standalone retrieval embedding, and every probe reads only components at 192
 * and beyond, so no auxiliary gradient lands on the semantic range directly.
 *
 * The probes are training-only parameters (`aux.<subspace>.w`): the trainer keeps them out of the model's weight
 * list (so the exported artifact is unchanged), updates them with their own AdamW under the same schedule and the
 * joint gradient clipping, and checkpoints them with their moments so a resume is exact.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { parseTaesrConfig, type SubspaceName } from "../../../src/model/taesr-config.js";
import { CONTEXT_CLASSES, type SubspaceLabelRows } from "../data/subspace-labels.js";
import { fillNormal, mulberry32 } from "../model/params.js";
import { restoreVariables, type LoadedCheckpoint } from "./checkpoint.js";
import { l2Normalize, logSumExp } from "./loss.js";
import { AdamW, type AdamWOptions } from "./optimizer.js";

/** The subspaces that get a probe (semantic is trained by the retrieval losses: see the module comment). */
export const PROBED_SUBSPACES = ["temporal", "procedural", "contextual"] as const satisfies readonly SubspaceName[];
export type ProbedSubspace = (typeof PROBED_SUBSPACES)[number];

/** Prototypes of each probe: two for the binary labels (no, yes), one per source for the contextual label. */
export const PROBE_CLASSES: Record<ProbedSubspace, number> = { temporal: 2, procedural: 2, contextual: CONTEXT_CLASSES.length };

/** Logit scale of the cosine classifier (1 / temperature): cosines in [−1, 1] need it to reach confident probabilities;
 * 10 is the usual order for normalised-softmax classifiers (NormFace, CosFace use 10–64). */
export const PROBE_SCALE = 10;

export type ProbeName = `aux.${ProbedSubspace}.w`;
export type SubspaceProbes = Record<ProbeName, tf.Variable>;

export interface SubspaceLossOptions {
  /** Half-open [start, end) component range of each probed subspace in the output embedding. */
  ranges: Record<ProbedSubspace, readonly [number, number]>;
  /** Overall weight of the subspace terms against the contrastive loss (which has weight 1). */
  weight: number;
  /** Relative weight of each subspace's term. */
  weights: Record<ProbedSubspace, number>;
  /** 1-based supervised recursion steps and their weights (normalised to sum 1), as in loss.ts. */
  steps: readonly number[];
  stepWeights: readonly number[];
  /** Per subspace, the loss weight of each class (index = label), from {@link balancedClassWeights}; absent: all 1. */
  classWeights?: ProbeClassWeights;
}

/** Loss weight of each class of each probe (index = class: no/yes for the binary labels, CONTEXT_CLASSES order). */
export type ProbeClassWeights = Record<ProbedSubspace, readonly number[]>;

export interface SubspaceLoss {
  /** weight · Σ_s weights[s] · loss[s]: what joins the contrastive total. */
  total: tf.Scalar;
  /** Each subspace's unweighted loss (mean over rows, step-weighted mean over steps). */
  perSubspace: Record<ProbedSubspace, tf.Scalar>;
}

export function probeNames(): ProbeName[] {
  return PROBED_SUBSPACES.map((s) => `aux.${s}.w` as const);
}

/** Seeded standard-normal prototypes, drawn in JS like the model's weights (params.ts) so every backend starts from the
 * same values. Unnamed variables: tfjs variable names are global, and one process may train several runs (tests). */
export function initProbes(ranges: SubspaceLossOptions["ranges"], seed: number): SubspaceProbes {
  const probes = {} as SubspaceProbes;
  PROBED_SUBSPACES.forEach((s, i) => {
    const [start, end] = ranges[s];
    if (!(end > start)) throw new Error(`subspace ${s}: empty range [${start}, ${end})`);
    const values = fillNormal(new Float32Array(PROBE_CLASSES[s] * (end - start)), 1, mulberry32((seed ^ (0x5b5 + i * 0x9e37)) >>> 0));
    probes[`aux.${s}.w`] = tf.tidy(() => tf.variable(tf.tensor2d(values, [PROBE_CLASSES[s], end - start]), true));
  });
  return probes;
}

/** Class logits [rows, classes]: PROBE_SCALE · cos(subspace slice of each row, each class prototype). */
export function probeLogits(probes: Record<ProbeName, tf.Tensor>, subspace: ProbedSubspace, embedding: tf.Tensor2D, range: readonly [number, number]): tf.Tensor2D {
  const [start, end] = range;
  if (end > embedding.shape[1]) throw new Error(`subspace [${start}, ${end}) lies outside the ${embedding.shape[1]}-d embedding`);
  const slice = l2Normalize(tf.slice(embedding, [0, start], [-1, end - start]));
  const prototypes = l2Normalize(probes[`aux.${subspace}.w`] as tf.Tensor2D);
  return tf.mul(tf.matMul(slice, prototypes, false, true), PROBE_SCALE) as tf.Tensor2D;
}

/** Mean of per-row losses [n], each times its row weight when given (divided by n, not by the weights' sum). */
function rowMean(losses: tf.Tensor1D, rowWeights?: Float32Array): tf.Scalar {
  if (!rowWeights) return tf.mean(losses) as tf.Scalar;
  if (rowWeights.length !== losses.shape[0]) throw new Error(`${rowWeights.length} row weights for ${losses.shape[0]} rows`);
  return tf.mean(tf.mul(losses, tf.tensor1d(rowWeights))) as tf.Scalar;
}

/**
 * Mean binary cross-entropy of logits [n, 1] against 0/1 targets: softplus(z) − y·z, which is stable for any z; each
 * row's term times `rowWeights[i]` when given.
 */
export function binaryCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, rowWeights?: Float32Array): tf.Scalar {
  const z = tf.reshape(logits, [-1]);
  return rowMean(tf.sub(tf.softplus(z), tf.mul(targets, z)) as tf.Tensor1D, rowWeights);
}

/**
 * Mean softmax cross-entropy of logits [n, C] against class indices (log-sum-exp spelled as loss.ts does for wasm);
 * each row's term times `rowWeights[i]` when given.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, classes: Int32Array, rowWeights?: Float32Array): tf.Scalar {
  const [n, c] = logits.shape;
  const oneHot = new Float32Array(n * c);
  classes.forEach((k, i) => {
    if (!(k >= 0 && k < c)) throw new Error(`class ${k} of row ${i} is outside [0, ${c})`);
    oneHot[i * c + k] = 1;
  });
  const picked = tf.sum(tf.mul(logits, tf.tensor2d(oneHot, [n, c])), 1);
  return rowMean(tf.sub(logSumExp(logits, 1), picked) as tf.Tensor1D, rowWeights);
}

/** Texts drawn to estimate the class shares behind the balancing weights (see the module comment): enough for a 3 %
 * class to be counted within about ±10 % of its share, and a second or two of tokenising. */
export const PROBE_POPULATION_DRAWS = 8192;
/** Shares below this count as this share: caps a class weight at 1 / (K · MIN_CLASS_SHARE) (see the module comment). */
export const MIN_CLASS_SHARE = 0.01;

/**
 * "Balanced" class weights of every probe from labelled rows drawn like the probe rows: w_c = 1 / (K · max(p_c,
 * MIN_CLASS_SHARE)), K = the classes present. A class absent from the rows gets the capped weight (it is rarer than
 * the draws could see), and contributes nothing to the expected loss.
 * @throws Error for no rows (the shares would be undefined).
 */
export function balancedClassWeights(labels: SubspaceLabelRows): ProbeClassWeights {
  const rows = labels.contextual.length;
  if (rows === 0) throw new Error("balancedClassWeights: no labelled rows to estimate the class shares from");
  const out = {} as Record<ProbedSubspace, number[]>;
  for (const s of PROBED_SUBSPACES) {
    const counts = new Array<number>(PROBE_CLASSES[s]).fill(0);
    for (const k of labels[s]) counts[k] = (counts[k] ?? 0) + 1;
    const present = Math.max(1, counts.filter((n) => n > 0).length);
    out[s] = counts.map((n) => 1 / (present * Math.max(n / rows, MIN_CLASS_SHARE)));
  }
  return out;
}

/** Each row's weight: its class's weight in `weights` (a label outside the weights' classes is refused). */
function rowWeightsOf(subspace: ProbedSubspace, labels: SubspaceLabelRows, weights: readonly number[]): Float32Array {
  return Float32Array.from(labels[subspace], (k, i) => {
    const w = weights[k];
    if (w === undefined) throw new Error(`${subspace} label ${k} of row ${i} has no class weight (${weights.length} classes)`);
    return w;
  });
}

/** One subspace's loss on the rows of one embedding matrix. */
export function subspaceTerm(
  probes: Record<ProbeName, tf.Tensor>,
  subspace: ProbedSubspace,
  embedding: tf.Tensor2D,
  range: readonly [number, number],
  labels: SubspaceLabelRows,
  classWeights?: readonly number[],
): tf.Scalar {
  const rows = embedding.shape[0];
  if (labels[subspace].length !== rows) throw new Error(`${subspace} labels: ${labels[subspace].length} for ${rows} rows`);
  const rowWeights = classWeights ? rowWeightsOf(subspace, labels, classWeights) : undefined;
  const logits = probeLogits(probes, subspace, embedding, range);
  if (subspace === "contextual") return softmaxCrossEntropy(logits, labels.contextual, rowWeights);
  const z = tf.sub(tf.slice(logits, [0, 1], [-1, 1]), tf.slice(logits, [0, 0], [-1, 1])) as tf.Tensor2D;
  return binaryCrossEntropy(z, tf.tensor1d(labels[subspace] as Float32Array), rowWeights);
}

/**
 * The subspace loss over the supervised steps. `steps[t-1]` holds the embeddings of the labelled rows after recursion
 * step t (as forward returns them): the batch's probe sample (data/batches.ts PairBatcher.probeSample), queries and
 * documents alike.
 */
export function subspaceLoss(
  probes: Record<ProbeName, tf.Tensor>,
  steps: tf.Tensor2D[],
  labels: SubspaceLabelRows,
  opts: SubspaceLossOptions,
): SubspaceLoss {
  const weightOf = (i: number) => opts.stepWeights[i] ?? 1;
  const weightSum = opts.steps.reduce((sum, _, i) => sum + weightOf(i), 0);
  const embeddings = opts.steps.map((step) => {
    const embedding = steps[step - 1];
    if (!embedding) throw new Error(`subspace loss wants recursion step ${step} but forward returned ${steps.length} steps`);
    return embedding;
  });
  const perSubspace = {} as Record<ProbedSubspace, tf.Scalar>;
  for (const s of PROBED_SUBSPACES) {
    const terms = embeddings.map((e, i) => tf.mul(subspaceTerm(probes, s, e, opts.ranges[s], labels, opts.classWeights?.[s]), weightOf(i) / weightSum));
    perSubspace[s] = tf.addN(terms) as tf.Scalar;
  }
  const total = tf.mul(tf.addN(PROBED_SUBSPACES.map((s) => tf.mul(perSubspace[s], opts.weights[s]))), opts.weight) as tf.Scalar;
  return { total, perSubspace };
}

/** The probed subspaces' ranges from a model config's `subspaces` (semantic is dropped). */
export function probedRanges(subspaces: Record<SubspaceName, readonly [number, number]>): SubspaceLossOptions["ranges"] {
  const out = {} as SubspaceLossOptions["ranges"];
  for (const s of PROBED_SUBSPACES) out[s] = subspaces[s];
  return out;
}


/** The trainer's side of the objective: probes, their optimiser and the loss options (absent when not configured). */
export interface SubspaceObjective {
  probes: SubspaceProbes;
  /** The probes' own AdamW: the model's hyperparameters, stepped in the same updates at lrScale × its learning rate. */
  optimizer: AdamW;
  lrScale: number;
  loss: SubspaceLossOptions;
}

/** Checkpoint tensor names: the probes and their moments under "probe.", apart from the model's "param." / "adam.". */
export function probeCheckpointTensors(o: SubspaceObjective): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const n of probeNames()) {
    out[`probe.${n}`] = o.probes[n];
    out[`probe.adam.m.${n}`] = o.optimizer.m[n] as tf.Variable;
    out[`probe.adam.v.${n}`] = o.optimizer.v[n] as tf.Variable;
  }
  return out;
}

/**
 * Restores the probes and their moments from a checkpoint. A checkpoint written without the objective (it was switched
 * on for the continuation) has none: the probes then start fresh, and the return value says so.
 */
export function restoreProbes(loaded: LoadedCheckpoint, o: SubspaceObjective): boolean {
  if (!loaded.tensors.has(`probe.${probeNames()[0]}`)) return false;
  restoreVariables(loaded, "probe.", o.probes);
  restoreVariables(loaded, "probe.adam.m.", o.optimizer.m);
  restoreVariables(loaded, "probe.adam.v.", o.optimizer.v);
  o.optimizer.t = loaded.state.probeAdamT ?? loaded.state.adamT;
  return true;
}

export function disposeObjective(o: SubspaceObjective): void {
  for (const v of Object.values(o.probes)) v.dispose();
  o.optimizer.dispose();
}

/** The probes' values as plain arrays (sent to data-parallel workers with the model's weights). */
export function probesToFloat32(probes: SubspaceProbes): Record<ProbeName, Float32Array> {
  const out = {} as Record<ProbeName, Float32Array>;
  for (const n of probeNames()) out[n] = probes[n].dataSync() as Float32Array;
  return out;
}

/** Assigns values sent by rank 0 (probesToFloat32) to a worker's probes. */
export function assignProbes(probes: SubspaceProbes, values: Record<ProbeName, Float32Array>): void {
  for (const n of probeNames()) {
    const variable = probes[n];
    const data = values[n];
    if (!data || data.length !== variable.size) throw new Error(`probe ${n}: ${data?.length ?? 0} values sent, the probe has ${variable.size}`);
    tf.tidy(() => variable.assign(tf.tensor(data, variable.shape, "float32")));
  }
}

/**
 * The objective as `training.objectives.subspaces` configures it, on the default subspace ranges of the model config.
 * `classWeights` (from {@link balancedClassWeights}) weight each row's loss by its class; absent, every row counts 1.
 */
export function createSubspaceObjective(
  config: { weight: number; probeLrScale: number } & Record<ProbedSubspace, number>,
  steps: readonly number[],
  stepWeights: readonly number[],
  adam: AdamWOptions,
  seed: number,
  classWeights?: ProbeClassWeights,
): SubspaceObjective {
  const ranges = probedRanges(parseTaesrConfig({}).subspaces);
  const probes = initProbes(ranges, seed);
  return {
    probes,
    optimizer: new AdamW(probes, adam),
    lrScale: config.probeLrScale,
    loss: {
      ranges,
      weight: config.weight,
      weights: { temporal: config.temporal, procedural: config.procedural, contextual: config.contextual },
      steps,
      stepWeights,
      ...(classWeights ? { classWeights } : {}),
    },
  };
}

/** The class weights for a log line: "temporal 0.55/5.9 | procedural …" (no/yes, or one per contextual class). */
export function describeClassWeights(weights: ProbeClassWeights): string {
  return PROBED_SUBSPACES.map((s) => `${s} ${weights[s].map((w) => w.toFixed(2)).join("/")}`).join(" | ");
}

/** A probe's accuracy on labelled rows against the majority-class rate of the same rows (what a constant guess gets). */
export interface ProbeScore {
  accuracy: number;
  chance: number;
  /** Mean per-class recall over the classes present: 1 / classes for any constant guess, so a rare label (procedural
   * texts are a few percent) cannot look learnt by always answering "no". */
  balancedAccuracy: number;
  rows: number;
  /** Rows of the majority class / of each class (contextual), for reading `chance`. */
  classCounts: number[];
}

/**
 * Each probe's held-out accuracy on embeddings (row-major [rows, width]; any positive scaling of a row is fine: the
 * class is the prototype of largest cosine). Plain arrays, no tfjs: run on whatever produced the embeddings.
 */
export function probeAccuracy(
  embeddings: Float32Array,
  width: number,
  labels: SubspaceLabelRows,
  probes: Record<ProbeName, Float32Array>,
  ranges: SubspaceLossOptions["ranges"],
): Record<ProbedSubspace, ProbeScore> {
  const rows = embeddings.length / width;
  const out = {} as Record<ProbedSubspace, ProbeScore>;
  for (const s of PROBED_SUBSPACES) {
    const [start, end] = ranges[s];
    const classes = PROBE_CLASSES[s];
    const w = probes[`aux.${s}.w`];
    const sliceWidth = end - start;
    const prototypeNorm = (c: number) => Math.sqrt(w.subarray(c * sliceWidth, (c + 1) * sliceWidth).reduce((a, v) => a + v * v, 0)) || 1;
    const prototypeNorms = Array.from({ length: classes }, (_, c) => prototypeNorm(c));
    const counts = new Array<number>(classes).fill(0);
    const hits = new Array<number>(classes).fill(0);
    let correct = 0;
    for (let r = 0; r < rows; r++) {
      // The slice's own norm scales every cosine alike, so the arg max needs only the prototypes' norms.
      const cosines = Array.from({ length: classes }, (_, c) => {
        let dot = 0;
        for (let k = start; k < end; k++) dot += (embeddings[r * width + k] as number) * (w[c * sliceWidth + k - start] as number);
        return dot / (prototypeNorms[c] as number);
      });
      const predicted = cosines.indexOf(Math.max(...cosines));
      const truth = s === "contextual" ? (labels.contextual[r] as number) : (labels[s][r] as number);
      counts[truth] = (counts[truth] ?? 0) + 1;
      if (predicted === truth) {
        correct++;
        hits[truth] = (hits[truth] ?? 0) + 1;
      }
    }
    const present = counts.flatMap((c, k) => (c > 0 ? [(hits[k] as number) / c] : []));
    out[s] = {
      accuracy: rows ? correct / rows : 0,
      chance: rows ? Math.max(...counts) / rows : 0,
      balancedAccuracy: present.length ? present.reduce((a, b) => a + b, 0) / present.length : 0,
      rows,
      classCounts: counts,
    };
  }
  return out;
}

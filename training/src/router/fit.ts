/**
 * Fitting the FastREM router (src/model/fastrem.ts): multinomial logistic regression over standardised features,
 * plain full-batch gradient descent with L2, written out by hand (a few thousand examples and a dozen features: no
 * framework is worth its start-up here), plus the k-fold cross-validation and the choice of the decision confidence.
 *
 * Determinism: the weights start at zero and the bias at the log class priors, every step uses the whole set, and the
 * only randomness — the fold assignment — comes from a seeded generator, so the same examples and options give the
 * same router bit for bit.
 *
 * Objective: mean cross-entropy + (l2 / 2)·‖W‖² (the bias is not penalised: it only encodes class frequencies).
 * Features are standardised (z = (x − mean) / std, std of a constant feature taken as 1) so one learning rate and one
 * L2 strength suit every feature, whatever its scale (token counts vs fractions).
 *
 * @module
 */
import { FASTREM_CLASSES, classProbabilities, cumulativeRoute, type SoftmaxModel } from "../../../src/model/fastrem.js";
import { createRng, shuffleInPlace } from "../data/random.js";

export interface FitOptions {
  /** L2 strength on the weights (not the bias). */
  l2: number;
  /** Full-batch gradient steps. */
  epochs: number;
  learningRate: number;
}

export const DEFAULT_FIT: FitOptions = { l2: 0.01, epochs: 2000, learningRate: 0.5 };

export interface SoftmaxFit extends SoftmaxModel {
  /** The objective after the last step (mean cross-entropy + L2 term), for reports and tests. */
  loss: number;
}

/** Per-feature mean and standard deviation (population); a constant feature gets std 1 so it standardises to 0. */
export function standardisation(rows: readonly ArrayLike<number>[]): { mean: number[]; std: number[] } {
  if (rows.length === 0) throw new Error("standardisation needs at least one example");
  const F = rows[0]!.length;
  const mean = new Array<number>(F).fill(0);
  const std = new Array<number>(F).fill(0);
  for (const x of rows) for (let j = 0; j < F; j++) mean[j]! += x[j]!;
  for (let j = 0; j < F; j++) mean[j]! /= rows.length;
  for (const x of rows) for (let j = 0; j < F; j++) std[j]! += (x[j]! - mean[j]!) ** 2;
  for (let j = 0; j < F; j++) {
    const s = Math.sqrt(std[j]! / rows.length);
    std[j] = s > 1e-12 ? s : 1;
  }
  return { mean, std };
}

/**
 * Fits the softmax regression to `rows` (raw features) and labels `y` ∈ {0, …, classes − 1}.
 * @throws Error on empty input, ragged rows or labels out of range.
 */
export function fitSoftmax(rows: readonly ArrayLike<number>[], y: readonly number[], options: FitOptions = DEFAULT_FIT, classes = FASTREM_CLASSES.length): SoftmaxFit {
  const N = rows.length;
  if (N === 0 || N !== y.length) throw new Error(`fitSoftmax: ${N} rows for ${y.length} labels`);
  const F = rows[0]!.length;
  if (rows.some((x) => x.length !== F)) throw new Error("fitSoftmax: every row needs the same number of features");
  if (y.some((c) => !Number.isInteger(c) || c < 0 || c >= classes)) throw new Error(`fitSoftmax: labels must be integers 0…${classes - 1}`);
  const { l2, epochs, learningRate } = options;
  const { mean, std } = standardisation(rows);
  const Z = rows.map((x) => Float64Array.from({ length: F }, (_, j) => (x[j]! - mean[j]!) / std[j]!));

  // Bias at the log priors (add-one smoothed, so an absent class is improbable, not impossible): the zero-weight model
  // already predicts the class frequencies, and gradient descent only has to learn what the features add.
  const counts = new Array<number>(classes).fill(0);
  for (const c of y) counts[c]!++;
  const bias = counts.map((n) => Math.log((n + 1) / (N + classes)));
  const W = Array.from({ length: classes }, () => new Float64Array(F));

  const logits = new Float64Array(classes);
  const p = new Float64Array(classes);
  const gW = Array.from({ length: classes }, () => new Float64Array(F));
  const gb = new Float64Array(classes);
  let loss = Number.NaN;
  for (let epoch = 0; epoch <= epochs; epoch++) {
    for (const g of gW) g.fill(0);
    gb.fill(0);
    let ce = 0;
    for (let i = 0; i < N; i++) {
      const z = Z[i]!;
      let max = Number.NEGATIVE_INFINITY;
      for (let c = 0; c < classes; c++) {
        let s = bias[c]!;
        const w = W[c]!;
        for (let j = 0; j < F; j++) s += w[j]! * z[j]!;
        logits[c] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += (p[c] = Math.exp(logits[c]! - max));
      ce += Math.log(sum) + max - logits[y[i]!]!;
      for (let c = 0; c < classes; c++) {
        const d = p[c]! / sum - (c === y[i] ? 1 : 0);
        gb[c]! += d;
        const g = gW[c]!;
        for (let j = 0; j < F; j++) g[j]! += d * z[j]!;
      }
    }
    let penalty = 0;
    for (const w of W) for (let j = 0; j < F; j++) penalty += w[j]! * w[j]!;
    loss = ce / N + (l2 / 2) * penalty;
    if (epoch === epochs) break; // the last pass only measures the loss of the final weights
    for (let c = 0; c < classes; c++) {
      const w = W[c]!;
      const g = gW[c]!;
      for (let j = 0; j < F; j++) w[j]! -= learningRate * (g[j]! / N + l2 * w[j]!);
      bias[c]! -= learningRate * (gb[c]! / N);
    }
  }
  return { mean, std, weights: W.map((w) => Array.from(w)), bias, loss };
}

/** argmax class of each row under `model`. */
export function predictClasses(model: SoftmaxModel, rows: readonly ArrayLike<number>[]): number[] {
  return rows.map((x) => {
    const p = classProbabilities(model, x);
    return p.indexOf(Math.max(...p));
  });
}

/** confusion[true][predicted]. */
export function confusionMatrix(truth: readonly number[], predicted: readonly number[], classes = FASTREM_CLASSES.length): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  truth.forEach((t, i) => m[t]![predicted[i]!]!++);
  return m;
}

export function accuracy(truth: readonly number[], predicted: readonly number[]): number {
  if (truth.length === 0) return 0;
  return truth.reduce((n, t, i) => n + (t === predicted[i] ? 1 : 0), 0) / truth.length;
}

/**
 * k-fold cross-validation: the class probabilities of every example from a model fitted without its fold. Folds are a
 * seeded shuffle cut into k near-equal parts. k < 2 (or fewer examples than folds) is refused: there would be no
 * held-out estimate to report.
 */
export function outOfFoldProbabilities(rows: readonly ArrayLike<number>[], y: readonly number[], folds: number, seed: number, options: FitOptions = DEFAULT_FIT): number[][] {
  if (!Number.isInteger(folds) || folds < 2) throw new Error(`folds must be an integer ≥ 2, got ${folds}`);
  if (rows.length < folds) throw new Error(`${rows.length} examples cannot make ${folds} folds`);
  const order = shuffleInPlace(Array.from({ length: rows.length }, (_, i) => i), createRng(seed));
  const foldOf = new Array<number>(rows.length);
  order.forEach((index, position) => (foldOf[index] = position % folds));
  const out = new Array<number[]>(rows.length);
  for (let k = 0; k < folds; k++) {
    const train = order.filter((i) => foldOf[i] !== k);
    // A fold whose training part has one class only still fits (the bias carries it); nothing to special-case.
    const model = fitSoftmax(train.map((i) => rows[i]!), train.map((i) => y[i]!), options);
    for (const i of order) if (foldOf[i] === k) out[i] = classProbabilities(model, rows[i]!);
  }
  return out;
}

/** Per example, the metric reached at each class's depth (index = class), e.g. NDCG@10 at depths 1, 3, 6. */
export type MetricByClass = readonly number[];

export interface PolicyFigures {
  confidence: number;
  /** Mean requested depth over the examples. */
  meanDepth: number;
  /** Mean metric of the routed depths. */
  metric: number;
  /** Mean metric with every example at the deepest class. */
  metricAlwaysHard: number;
  /** 1 − metric / metricAlwaysHard (0 when the deep metric is 0); negative when routing helps. */
  relativeLoss: number;
  routes: Record<(typeof FASTREM_CLASSES)[number], number>;
}

/** What routing `probabilities` with the cumulative rule at `confidence` costs and yields on the labelled examples. */
export function policyFigures(
  probabilities: readonly (readonly number[])[],
  metrics: readonly MetricByClass[],
  depths: readonly number[],
  confidence: number,
  guard: readonly boolean[] = [],
): PolicyFigures {
  const routes = { easy: 0, medium: 0, hard: 0 };
  let depth = 0;
  let metric = 0;
  let deep = 0;
  const hard = FASTREM_CLASSES.length - 1;
  probabilities.forEach((p, i) => {
    // guard[i]: the example is longer than the router's maxTokens and goes to hard without the classifier.
    const route = guard[i] ? "hard" : cumulativeRoute(p, confidence);
    const c = FASTREM_CLASSES.indexOf(route);
    routes[route]++;
    depth += depths[c]!;
    metric += metrics[i]![c]!;
    deep += metrics[i]![hard]!;
  });
  const n = Math.max(1, probabilities.length);
  const meanMetric = metric / n;
  const meanDeep = deep / n;
  return {
    confidence,
    meanDepth: depth / n,
    metric: meanMetric,
    metricAlwaysHard: meanDeep,
    relativeLoss: meanDeep > 0 ? 1 - meanMetric / meanDeep : meanMetric >= meanDeep ? 0 : 1,
    routes,
  };
}

/**
 * Confidences tried by {@link chooseConfidence}: 0.05, 0.10, …, 0.95, then 0.96 … 1.00 — finer at the top, where a
 * weak router's cheap routes are decided (in hundredths, so no float drift).
 */
export const CONFIDENCE_GRID = [...Array.from({ length: 19 }, (_, i) => (5 * (i + 1)) / 100), 0.96, 0.97, 0.98, 0.99, 1];

/**
 * The decision confidence: the cheapest (lowest mean depth) grid point whose relative metric loss against always-hard
 * is at most `maxRelativeLoss` on out-of-fold probabilities; ties in depth go to the larger confidence (the safer
 * router). Confidence 1.00 routes nearly everything hard, so some point always qualifies.
 */
export function chooseConfidence(
  probabilities: readonly (readonly number[])[],
  metrics: readonly MetricByClass[],
  depths: readonly number[],
  maxRelativeLoss: number,
  guard: readonly boolean[] = [],
): { chosen: PolicyFigures; grid: PolicyFigures[] } {
  const grid = CONFIDENCE_GRID.map((confidence) => policyFigures(probabilities, metrics, depths, confidence, guard));
  const ok = grid.filter((p) => p.relativeLoss <= maxRelativeLoss + 1e-12);
  const pool = ok.length > 0 ? ok : [grid[grid.length - 1]!];
  const chosen = pool.reduce((best, p) => (p.meanDepth < best.meanDepth - 1e-12 || (Math.abs(p.meanDepth - best.meanDepth) <= 1e-12 && p.confidence > best.confidence) ? p : best));
  return { chosen, grid };
}

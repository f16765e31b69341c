/**
 * Drift detection: is the traffic a model serves still like the queries it was checked against?
 *
 * Each query contributes one feature vector: its embedding (the d components the edge searches with), its token
 * coverage, and ln(1 + its word pieces). {@link RunningStats} keeps count, mean and variance of those vectors in
 * constant memory (Welford's update), and two accumulators merge exactly (Chan et al.'s parallel formula), so each
 * isolate accumulates its own queries and a Durable Object merges them, in any order and grouping, into the same
 * numbers a single pass would give.
 *
 * Token coverage ({@link tokenCoverage}) is the share of a query's word pieces that the vocabulary really covers: all
 * but [UNK] (a whole word the vocabulary cannot spell: content the model never sees) and single letters or digits (a
 * word spelt out character by character because no merge covers it: content the model sees as noise). These are the
 * router's `unkFraction` and `singleCharFraction` (fastrem.ts), so coverage = 1 − both. Isolated punctuation counts as
 * covered: the pre-tokeniser always splits it off, nothing better exists for it. A one-letter piece that is a real
 * morpheme (the plural "##s") counts as uncovered too; the baseline is measured the same way, so only changes matter.
 *
 * The score ({@link driftScore}) asks three questions, each as the squared shift of a mean in units of the baseline's
 * spread (a diagonal Mahalanobis distance, i.e. a standardised mean difference, squared):
 *   embedding  mean over the d components of ((m_j − μ_j) / σ_j)²: has what people ask about moved?
 *   coverage   ((c̄ − μ_c) / σ_c)²: does the vocabulary cover them as well as it did?
 *   length     the same for ln(1 + pieces): do they type as much?
 * Each is bias-corrected: with no drift at all, (m_j − μ_j)² is still s_j²/n + σ_j²/N on average (the live window's
 * and the baseline's own sampling error, n and N queries), so that is subtracted and the estimate of the true squared
 * shift is centred on 0 whatever n is. score = √max(0, mean of the three): the RMS shift of the three signals in
 * baseline standard deviations (0.1 = the means moved a tenth of a spread), weighted equally so that 128 embedding
 * components do not drown the two scalars.
 *
 * The threshold comes from the baseline queries themselves ({@link calibrateThreshold}): many times over, split them at
 * random into a "live" sample of minimumCount queries and a baseline of the rest, and score one against the other.
 * Those scores are what "no drift" looks like; the threshold is their (1 − falseAlarmRate) quantile. The correction
 * keeps the no-drift scores centred on 0 and their spread only shrinks as the window grows, so a window of more than
 * minimumCount queries raises a false alarm less often than stated. Fewer than minimumCount give no verdict at all:
 * small samples do not cry wolf. The rate holds for traffic drawn like the baseline queries; a baseline should be
 * computed from queries like the ones the deployment expects.
 *
 * Platform-neutral: plain arithmetic, no I/O.
 *
 * @module
 */
import { isSingleCharPiece } from "./fastrem.js";
import { mulberry32 } from "./init.js";
import type { DriftBaseline, Moments } from "./spec.js";

/** The tokenizer's unknown-word piece (src/tokenizer UNK_TOKEN; not imported: src/model does not depend on src/tokenizer). */
const UNK_PIECE = "[UNK]";

/** Scalars after the embedding components in every feature vector. */
export const SCALAR_FEATURES = ["coverage", "logLength"] as const;

/**
 * Floors under the baseline spreads, so a component that hardly varied in the baseline (a dead embedding dimension, a
 * baseline whose every piece was covered) cannot turn a tiny live change into an enormous score. Embedding components
 * of a unit vector are ~1/√d ≈ 0.09 at 128-d; a coverage or log-length change under 0.01 is not news.
 */
const MIN_STD = { embedding: 1e-3, scalar: 1e-2 } as const;

/** The serialised form of {@link RunningStats} (Durable Object storage, RPC). */
export interface RunningStatsJSON {
  count: number;
  mean: number[];
  /** Sum of squared deviations from the mean, per component. */
  m2: number[];
}

/** Count, mean and variance per component of a stream of vectors, mergeable exactly. */
export class RunningStats {
  count = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;

  constructor(readonly dims: number) {
    if (!Number.isInteger(dims) || dims < 1) throw new RangeError(`RunningStats: dims must be a positive integer, got ${dims}`);
    this.mean = new Float64Array(dims);
    this.m2 = new Float64Array(dims);
  }

  /** Welford's update. */
  add(x: ArrayLike<number>): void {
    if (x.length !== this.dims) throw new RangeError(`RunningStats: expected ${this.dims} components, got ${x.length}`);
    this.count++;
    for (let j = 0; j < this.dims; j++) {
      const delta = x[j]! - this.mean[j]!;
      this.mean[j]! += delta / this.count;
      this.m2[j]! += delta * (x[j]! - this.mean[j]!);
    }
  }

  /** Chan et al.'s pairwise merge: afterwards this holds the statistics of both streams together. */
  merge(other: RunningStats): void {
    if (other.dims !== this.dims) throw new RangeError(`RunningStats: cannot merge ${other.dims} components into ${this.dims}`);
    if (other.count === 0) return;
    const n = this.count + other.count;
    const weight = (this.count * other.count) / n;
    for (let j = 0; j < this.dims; j++) {
      const delta = other.mean[j]! - this.mean[j]!;
      this.mean[j]! += (delta * other.count) / n;
      this.m2[j]! += other.m2[j]! + delta * delta * weight;
    }
    this.count = n;
  }

  /** Sample variance (n − 1 denominator) of component j; 0 below two samples. */
  variance(j: number): number {
    return this.count < 2 ? 0 : this.m2[j]! / (this.count - 1);
  }

  toJSON(): RunningStatsJSON {
    return { count: this.count, mean: Array.from(this.mean), m2: Array.from(this.m2) };
  }

  /** @throws RangeError when the JSON is not well-formed statistics (of `dims` components, when given). */
  static fromJSON(json: RunningStatsJSON, dims?: number): RunningStats {
    const n = json.mean?.length;
    if (!Number.isInteger(json.count) || json.count < 0) throw new RangeError(`RunningStats: count must be a whole number ≥ 0, got ${json.count}`);
    if (!n || json.m2?.length !== n) throw new RangeError("RunningStats: mean and m2 must be non-empty arrays of one length");
    if (dims !== undefined && n !== dims) throw new RangeError(`RunningStats: expected ${dims} components, got ${n}`);
    if (![...json.mean, ...json.m2].every(Number.isFinite) || json.m2.some((v) => v < 0)) {
      throw new RangeError("RunningStats: mean and m2 must be finite numbers, m2 ≥ 0");
    }
    const stats = new RunningStats(n);
    stats.count = json.count;
    stats.mean.set(json.mean);
    stats.m2.set(json.m2);
    return stats;
  }
}

/** A query's word pieces and the share of them the vocabulary covers (see the module doc). */
export interface TokenCoverage {
  pieces: number;
  coverage: number;
}

/**
 * Coverage of one query's word pieces (as `WordPieceTokenizer.tokenize` returns them). A query with no pieces at all
 * has coverage 0: the encoder feeds it as a lone [UNK].
 */
export function tokenCoverage(pieces: readonly string[]): TokenCoverage {
  if (pieces.length === 0) return { pieces: 0, coverage: 0 };
  let uncovered = 0;
  for (const piece of pieces) if (piece === UNK_PIECE || isSingleCharPiece(piece)) uncovered++;
  return { pieces: pieces.length, coverage: 1 - uncovered / pieces.length };
}

/** One query's features: the embedding's components, then coverage and ln(1 + pieces) ({@link SCALAR_FEATURES}). */
export function queryFeatures(embedding: ArrayLike<number>, pieces: readonly string[]): Float64Array {
  const { pieces: count, coverage } = tokenCoverage(pieces);
  const features = new Float64Array(embedding.length + SCALAR_FEATURES.length);
  for (let j = 0; j < embedding.length; j++) features[j] = embedding[j]!;
  features[embedding.length] = coverage;
  features[embedding.length + 1] = Math.log1p(count);
  return features;
}

/** An accumulator for queries embedded at `dims` components. */
export function driftAccumulator(dims: number): RunningStats {
  return new RunningStats(dims + SCALAR_FEATURES.length);
}

/** The baseline's statistics in the feature layout: count, and mean and spread per feature. */
export interface BaselineMoments {
  count: number;
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
}

/** The layout-ordered moments of a manifest baseline. */
export function baselineMoments(baseline: DriftBaseline): BaselineMoments {
  return {
    count: baseline.count,
    mean: [...baseline.mean, baseline.coverage.mean, baseline.logLength.mean],
    std: [...baseline.std, baseline.coverage.std, baseline.logLength.std],
  };
}

export interface DriftScore {
  /** √max(0, mean of the three components' squared shifts): see the module doc. */
  score: number;
  /** RMS standardised shift of the embedding components (√ of the bias-corrected mean square, floored at 0). */
  embedding: number;
  /** Signed standardised shifts (live mean − baseline mean) / baseline std, uncorrected: which way things moved. */
  coverage: number;
  logLength: number;
}

/**
 * Scores `live` (≥ 2 queries) against the baseline. Each feature j gives a bias-corrected squared standardised shift
 * q_j = ((m_j − μ_j)² − s_j²/n − σ_j²/N) / σ_j², with s_j² the live sample variance and σ_j the (floored) baseline spread.
 */
export function driftScore(live: RunningStats, baseline: BaselineMoments): DriftScore {
  const dims = live.dims - SCALAR_FEATURES.length;
  if (baseline.mean.length !== live.dims || baseline.std.length !== live.dims) {
    throw new RangeError(`driftScore: the baseline has ${baseline.mean.length} features, the live statistics ${live.dims}`);
  }
  if (live.count < 2) throw new RangeError("driftScore: needs at least 2 live queries (a variance)");
  const n = live.count;
  const shift = (j: number, floor: number): { squared: number; signed: number } => {
    const sd = Math.max(baseline.std[j]!, floor);
    const d = live.mean[j]! - baseline.mean[j]!;
    return { squared: (d * d - live.variance(j) / n - (sd * sd) / baseline.count) / (sd * sd), signed: d / sd };
  };
  let embedding = 0;
  for (let j = 0; j < dims; j++) embedding += shift(j, MIN_STD.embedding).squared;
  embedding /= dims;
  const coverage = shift(dims, MIN_STD.scalar);
  const logLength = shift(dims + 1, MIN_STD.scalar);
  return {
    score: Math.sqrt(Math.max(0, (embedding + coverage.squared + logLength.squared) / 3)),
    embedding: Math.sqrt(Math.max(0, embedding)),
    coverage: coverage.signed,
    logLength: logLength.signed,
  };
}

/** The verdict on a window of live queries. */
export type DriftAssessment =
  | { status: "insufficient_data"; count: number; minimumCount: number; threshold: number; drifted: false; score: null; components: null }
  | {
      status: "ok";
      count: number;
      minimumCount: number;
      threshold: number;
      drifted: boolean;
      score: number;
      components: {
        embedding: number;
        coverage: { shift: number; live: number; baseline: number };
        logLength: { shift: number; live: number; baseline: number };
      };
    };

/** The verdict: no score below the baseline's minimumCount, else the score against its threshold. */
export function assessDrift(live: RunningStats, baseline: DriftBaseline): DriftAssessment {
  const { minimumCount, threshold } = baseline;
  // At least 2 whatever the manifest says: the correction needs a live variance.
  if (live.count < Math.max(minimumCount, 2)) {
    return { status: "insufficient_data", count: live.count, minimumCount, threshold, drifted: false, score: null, components: null };
  }
  const scored = driftScore(live, baselineMoments(baseline));
  const dims = baseline.mean.length;
  return {
    status: "ok",
    count: live.count,
    minimumCount,
    threshold,
    drifted: scored.score > threshold,
    score: scored.score,
    components: {
      embedding: scored.embedding,
      coverage: { shift: scored.coverage, live: live.mean[dims]!, baseline: baseline.coverage.mean },
      logLength: { shift: scored.logLength, live: live.mean[dims + 1]!, baseline: baseline.logLength.mean },
    },
  };
}

/** Statistics of feature vectors as baseline moments (sample standard deviations). */
export function momentsOf(stats: RunningStats): BaselineMoments {
  return { count: stats.count, mean: stats.mean, std: Array.from({ length: stats.dims }, (_, j) => Math.sqrt(stats.variance(j))) };
}

export interface CalibrationOptions {
  /** Live sample size the threshold is calibrated at: the baseline's minimumCount. */
  sampleSize: number;
  replicates: number;
  /** Share of no-drift samples allowed above the threshold, e.g. 0.01. */
  falseAlarmRate: number;
  seed: number;
}

export interface Calibration {
  threshold: number;
  /** The share of replicates that scored above the threshold (≤ falseAlarmRate; less with ties). */
  falseAlarmRate: number;
  nullQuantiles: { p50: number; p90: number; p99: number };
}

/**
 * The threshold from the baseline queries' own features (see the module doc): `replicates` random splits into a live
 * sample of `sampleSize` queries and a baseline of the rest, each scored; the threshold is the smallest score that at
 * most ⌊falseAlarmRate · replicates⌋ of them exceed.
 */
export function calibrateThreshold(features: readonly ArrayLike<number>[], options: CalibrationOptions): Calibration {
  const { sampleSize, replicates, falseAlarmRate, seed } = options;
  const total = features.length;
  if (!Number.isInteger(sampleSize) || sampleSize < 2) throw new RangeError(`calibrateThreshold: sampleSize must be ≥ 2, got ${sampleSize}`);
  if (total - sampleSize < 2) {
    throw new RangeError(`calibrateThreshold: ${total} queries cannot give a sample of ${sampleSize} and a baseline of at least 2`);
  }
  if (!(falseAlarmRate > 0 && falseAlarmRate < 1)) throw new RangeError(`calibrateThreshold: falseAlarmRate must be in (0, 1), got ${falseAlarmRate}`);
  const allowedAbove = Math.floor(falseAlarmRate * replicates);
  if (!Number.isInteger(replicates) || allowedAbove < 1) {
    throw new RangeError(`calibrateThreshold: ${replicates} replicates cannot resolve a false-alarm rate of ${falseAlarmRate}`);
  }
  const dims = features[0]!.length;
  const random = mulberry32(seed);
  const order = Array.from({ length: total }, (_, i) => i);
  const scores = new Float64Array(replicates);
  for (let r = 0; r < replicates; r++) {
    // A partial Fisher–Yates shuffle: the first sampleSize entries become a uniform random sample.
    for (let i = 0; i < sampleSize; i++) {
      const k = i + Math.floor(random() * (total - i));
      [order[i], order[k]] = [order[k]!, order[i]!];
    }
    const live = new RunningStats(dims);
    const rest = new RunningStats(dims);
    for (let i = 0; i < total; i++) (i < sampleSize ? live : rest).add(features[order[i]!]!);
    scores[r] = driftScore(live, momentsOf(rest)).score;
  }
  scores.sort();
  const threshold = scores[replicates - 1 - allowedAbove]!;
  const quantile = (p: number) => scores[Math.min(replicates - 1, Math.floor(p * replicates))]!;
  return {
    threshold,
    falseAlarmRate: scores.filter((s) => s > threshold).length / replicates,
    nullQuantiles: { p50: quantile(0.5), p90: quantile(0.9), p99: quantile(0.99) },
  };
}

/** What a baseline records besides its statistics (the {@link DriftBaseline} fields of the same names). */
export interface BaselineInit {
  embedding: DriftBaseline["embedding"];
  source: DriftBaseline["source"];
  date: string;
  calibration: CalibrationOptions;
}

/**
 * A manifest baseline from the reference queries' features ({@link queryFeatures}, embedded as `init.embedding` says),
 * threshold calibrated at `init.calibration.sampleSize` = minimumCount. Figures are kept to 6 significant digits (4 for
 * the threshold and quantiles), far below their sampling error, so the manifest stays readable.
 */
export function baselineFromFeatures(features: readonly ArrayLike<number>[], init: BaselineInit): DriftBaseline {
  const dims = init.embedding.dims;
  const stats = new RunningStats(dims + SCALAR_FEATURES.length);
  for (const f of features) stats.add(f);
  const calibration = calibrateThreshold(features, init.calibration);
  const round = (x: number, digits = 6) => Number(x.toPrecision(digits));
  const moments = (j: number): Moments => ({ mean: round(stats.mean[j]!), std: round(Math.sqrt(stats.variance(j))) });
  const { p50, p90, p99 } = calibration.nullQuantiles;
  return {
    embedding: init.embedding,
    count: stats.count,
    mean: Array.from({ length: dims }, (_, j) => round(stats.mean[j]!)),
    std: Array.from({ length: dims }, (_, j) => round(Math.sqrt(stats.variance(j)))),
    coverage: moments(dims),
    logLength: moments(dims + 1),
    minimumCount: init.calibration.sampleSize,
    threshold: round(calibration.threshold, 4),
    falseAlarmRate: round(calibration.falseAlarmRate, 4),
    calibration: {
      replicates: init.calibration.replicates,
      seed: init.calibration.seed,
      nullQuantiles: { p50: round(p50, 4), p90: round(p90, 4), p99: round(p99, 4) },
    },
    source: init.source,
    date: init.date,
  };
}

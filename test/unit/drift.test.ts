/**
 * Drift maths (src/model/drift.ts) on synthetic data whose truth is known: exact merging, token coverage, and the
 * score/threshold behaving as documented (no verdict below the minimum, in-distribution windows below the threshold,
 * shifted ones above it); and the manifest field that carries a baseline.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { artifactsRoot, defaultArtifactDir } from "../../bench/default-artifact.js";
import {
  RunningStats,
  assessDrift,
  baselineFromFeatures,
  driftAccumulator,
  parseManifest,
  queryFeatures,
  tokenCoverage,
  type DriftBaseline,
} from "../../src/model/index.js";
import { mulberry32 } from "../../src/model/init.js";

/** N(0, 1) draws (Box–Muller) from a seeded generator. */
function normals(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
}

const DIMS = 16;

/**
 * Synthetic query features in the real layout: a DIMS-d "embedding" with correlated components (a shared factor, as
 * real embedding components share directions), coverage in [0, 1] and a log length.
 */
function population(seed: number, shift: { embedding?: number; coverage?: number; logLength?: number } = {}) {
  const z = normals(mulberry32(seed));
  return (): Float64Array => {
    const f = new Float64Array(DIMS + 2);
    const shared = z();
    for (let j = 0; j < DIMS; j++) f[j] = 0.05 * (0.6 * shared + 0.8 * z()) + (j % 3) * 0.01 + (shift.embedding ?? 0) * 0.05;
    f[DIMS] = Math.min(1, Math.max(0, 0.88 + 0.09 * z() + (shift.coverage ?? 0) * 0.09));
    f[DIMS + 1] = 3 + 0.35 * z() + (shift.logLength ?? 0) * 0.35;
    return f;
  };
}

function draw(next: () => Float64Array, n: number): Float64Array[] {
  return Array.from({ length: n }, next);
}

function window(features: readonly Float64Array[]): RunningStats {
  const stats = driftAccumulator(DIMS);
  for (const f of features) stats.add(f);
  return stats;
}

const calibration = { sampleSize: 100, replicates: 400, falseAlarmRate: 0.05, seed: 11 };
const baseline: DriftBaseline = baselineFromFeatures(draw(population(1), 1_000), {
  embedding: { variant: "int8", dims: DIMS, depth: "auto", ranking: "hybrid" },
  source: { dataset: "synthetic", file: "none", queries: 1_000 },
  date: "2026-01-01",
  calibration,
});

describe("RunningStats", () => {
  it("merges exactly: any grouping of the stream gives the single pass's count, mean and variance", () => {
    const rows = draw(population(2), 257);
    const single = window(rows);
    // Uneven chunks, an empty one among them, merged in a tree rather than left to right.
    const cuts = [0, 1, 1, 40, 100, 101, 257];
    const parts = cuts.slice(1).map((end, i) => window(rows.slice(cuts[i], end)));
    const left = parts[0]!;
    left.merge(parts[1]!);
    left.merge(parts[2]!);
    const right = parts[3]!;
    right.merge(parts[4]!);
    right.merge(parts[5]!);
    left.merge(right);
    expect(left.count).toBe(single.count);
    for (let j = 0; j < single.dims; j++) {
      expect(left.mean[j]).toBeCloseTo(single.mean[j]!, 12);
      expect(left.variance(j)).toBeCloseTo(single.variance(j), 12);
    }
    // And the single pass is the textbook two-pass mean and sample variance.
    const mean0 = rows.reduce((s, r) => s + r[0]!, 0) / rows.length;
    const var0 = rows.reduce((s, r) => s + (r[0]! - mean0) ** 2, 0) / (rows.length - 1);
    expect(single.mean[0]).toBeCloseTo(mean0, 12);
    expect(single.variance(0)).toBeCloseTo(var0, 12);
  });

  it("survives its JSON form and refuses malformed statistics", () => {
    const stats = window(draw(population(3), 10));
    expect(RunningStats.fromJSON(JSON.parse(JSON.stringify(stats.toJSON())) as ReturnType<RunningStats["toJSON"]>, DIMS + 2).toJSON()).toEqual(stats.toJSON());
    expect(() => RunningStats.fromJSON(stats.toJSON(), DIMS)).toThrow(/expected 16 components/);
    expect(() => RunningStats.fromJSON({ count: -1, mean: [0], m2: [0] })).toThrow(/count/);
    expect(() => RunningStats.fromJSON({ count: 2, mean: [0], m2: [-1] })).toThrow(/m2 ≥ 0/);
  });
});

describe("tokenCoverage", () => {
  it("counts [UNK] and single letters or digits as uncovered, merges and punctuation as covered", () => {
    // "glycolysis" spelt with one merge; "qz" spelt out letter by letter; one unknown word; a comma.
    expect(tokenCoverage(["glyco", "##lysis", "q", "##z", "[UNK]", ","])).toEqual({ pieces: 6, coverage: 0.5 });
    // The router's definition: a one-letter continuation such as the plural "##s" counts as spelt out too; the
    // baseline's coverage is measured the same way, so only a change in it matters.
    const plural = tokenCoverage(["protein", "##s", "7"]);
    expect(plural.pieces).toBe(3);
    expect(plural.coverage).toBeCloseTo(1 / 3, 12);
    expect(tokenCoverage([])).toEqual({ pieces: 0, coverage: 0 });
    const features = queryFeatures(Float32Array.of(0.6, 0.8), ["cell", "##s"]);
    expect(Array.from(features)).toEqual([Math.fround(0.6), Math.fround(0.8), 0.5, Math.log1p(2)]);
  });
});

describe("the drift score and its threshold", () => {
  it("calibrates a threshold above most no-drift scores and states the rate it achieved", () => {
    expect(baseline.minimumCount).toBe(100);
    expect(baseline.threshold).toBeGreaterThan(0);
    expect(baseline.falseAlarmRate).toBeLessThanOrEqual(0.05);
    expect(baseline.calibration.nullQuantiles.p90).toBeLessThanOrEqual(baseline.threshold);
  });

  it("gives no verdict below the minimum count, however far the sample has moved", () => {
    const verdict = assessDrift(window(draw(population(4, { embedding: 5 }), 99)), baseline);
    expect(verdict).toMatchObject({ status: "insufficient_data", count: 99, minimumCount: 100, drifted: false, score: null });
  });

  it("leaves fresh in-distribution windows below the threshold at about the stated rate", () => {
    const next = population(5);
    let alarms = 0;
    const trials = 200;
    for (let t = 0; t < trials; t++) if (assessDrift(window(draw(next, 100)), baseline).drifted) alarms++;
    // Calibrated at 5 %; the binomial spread over 200 trials is ±1.5 points.
    expect(alarms / trials).toBeLessThanOrEqual(0.1);
    // A larger window is judged more surely: none of these raise an alarm.
    for (let t = 0; t < 20; t++) expect(assessDrift(window(draw(next, 1_000)), baseline).drifted).toBe(false);
  });

  it("crosses the threshold when the embeddings move, when coverage falls, and when queries get longer", () => {
    for (const shift of [{ embedding: 0.6 }, { coverage: -1 }, { logLength: 1 }]) {
      const verdict = assessDrift(window(draw(population(6, shift), 200)), baseline);
      expect(verdict.status).toBe("ok");
      if (verdict.status !== "ok") continue;
      expect(verdict.drifted, JSON.stringify(shift)).toBe(true);
      expect(verdict.score).toBeGreaterThan(verdict.threshold);
    }
    const fell = assessDrift(window(draw(population(7, { coverage: -1 }), 200)), baseline);
    expect(fell.status === "ok" && fell.components.coverage.shift).toBeLessThan(-0.5);
  });
});

describe("the manifest's drift baseline", () => {
  it("is optional, validated, and present in the bundled artifact", async () => {
    const text = await readFile(path.join(await defaultArtifactDir(), "manifest.json"), "utf8");
    const raw = JSON.parse(text) as Record<string, unknown>;
    const bundled = parseManifest(raw);
    expect(bundled.drift?.mean).toHaveLength(bundled.drift!.embedding.dims);
    // Calibrated on the embeddings the Worker makes: the variant it bundles, its default width, routed for hybrid search.
    const { variant } = JSON.parse(await readFile(path.join(artifactsRoot, "bundled.json"), "utf8")) as { variant: string };
    expect(bundled.drift?.embedding).toEqual({ variant, dims: 128, depth: "auto", ranking: "hybrid" });
    const { drift: _drift, ...older } = raw;
    expect(parseManifest(older).drift).toBeUndefined();
    expect(() => parseManifest({ ...raw, drift: { ...bundled.drift, std: [1, 2] } })).toThrow(/has 2 entries, embedding.dims is 128\n.*drift\.std/);
    expect(() => parseManifest({ ...raw, drift: { ...bundled.drift, embedding: { ...bundled.drift!.embedding, dims: 100 } } })).toThrow(/matryoshkaDims/);
  });
});

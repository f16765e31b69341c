/**
 * The subspace objectives (src/train/subspace-loss.ts): the loss against a plain-JS computation of the same formula
 * (slice → scaled cosine to each class prototype → BCE of the two-class margin / softmax CE, step-weighted, query and
 * document rows pooled), its
 * gradients w.r.t. an embedding and a probe against central finite differences (wasm, the training backend), and the
 * held-out probe accuracy helper.
 */
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../src/backend.js";
import type { SubspaceLabelRows } from "../src/data/subspace-labels.js";
import { mulberry32 } from "../src/model/params.js";
import {
  MIN_CLASS_SHARE,
  PROBED_SUBSPACES,
  PROBE_SCALE,
  balancedClassWeights,
  probeAccuracy,
  probeNames,
  subspaceLoss,
  type ProbeName,
  type SubspaceLossOptions,
} from "../src/train/subspace-loss.js";

const WIDTH = 12;
const ranges: SubspaceLossOptions["ranges"] = { temporal: [0, 4], procedural: [4, 8], contextual: [8, 12] };
const opts: SubspaceLossOptions = {
  ranges,
  weight: 0.5,
  weights: { temporal: 1, procedural: 2, contextual: 0.5 },
  steps: [1, 3],
  stepWeights: [1, 3],
};

function randomData(seed: number, n: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

/** Three recursion steps of 7 labelled rows of width 12. */
const ROWS = 7;
const data = [1, 2, 3].map((s) => randomData(10 + s, ROWS * WIDTH));
const probeData: Record<ProbeName, Float32Array> = {
  "aux.temporal.w": randomData(31, 8),
  "aux.procedural.w": randomData(33, 8),
  "aux.contextual.w": randomData(35, 16),
};
const probeShapes: Record<ProbeName, number[]> = {
  "aux.temporal.w": [2, 4],
  "aux.procedural.w": [2, 4],
  "aux.contextual.w": [4, 4],
};
const labels: SubspaceLabelRows = {
  temporal: Float32Array.of(1, 0, 0, 1, 1, 0, 0),
  procedural: Float32Array.of(0, 1, 0, 0, 0, 0, 1),
  contextual: Int32Array.of(0, 1, 2, 0, 1, 2, 3),
};

/** The loss in plain JS (float64), straight from the module's description; each row's term times its class weight. */
function handLoss(classWeights?: SubspaceLossOptions["classWeights"]): { total: number; perSubspace: Record<string, number> } {
  const perSubspace: Record<string, number> = {};
  for (const s of PROBED_SUBSPACES) {
    const [start, end] = ranges[s];
    const width = end - start;
    const classes = s === "contextual" ? 4 : 2;
    const w = probeData[`aux.${s}.w`];
    let weighted = 0;
    opts.steps.forEach((step, si) => {
      const rows = Array.from({ length: ROWS }, (_, r) => data[step - 1]!.slice(r * WIDTH, (r + 1) * WIDTH));
      const targets = [...labels[s]];
      let sum = 0;
      rows.forEach((row, r) => {
        const slice = Array.from(row.slice(start, end));
        const norm = Math.sqrt(slice.reduce((a, x) => a + x * x, 0));
        const x = slice.map((v) => v / norm);
        const z = Array.from({ length: classes }, (_, c) => {
          const p = Array.from(w.slice(c * width, (c + 1) * width));
          const pNorm = Math.sqrt(p.reduce((a, v) => a + v * v, 0));
          return (PROBE_SCALE * x.reduce((a, v, k) => a + v * p[k]!, 0)) / pNorm;
        });
        const y = targets[r]!;
        const rowWeight = classWeights?.[s][y] ?? 1;
        if (classes === 2) {
          const margin = z[1]! - z[0]!;
          sum += rowWeight * (Math.log1p(Math.exp(margin)) - y * margin);
        } else sum += rowWeight * (Math.log(z.reduce((a, v) => a + Math.exp(v), 0)) - z[y]!);
      });
      weighted += (opts.stepWeights[si]! / 4) * (sum / rows.length);
    });
    perSubspace[s] = weighted;
  }
  const total = opts.weight * PROBED_SUBSPACES.reduce((a, s) => a + opts.weights[s] * perSubspace[s]!, 0);
  return { total, perSubspace };
}

const probeTensors = (): Record<ProbeName, tf.Tensor> =>
  Object.fromEntries(probeNames().map((n) => [n, tf.tensor(probeData[n], probeShapes[n])])) as Record<ProbeName, tf.Tensor>;
const steps = (values: Float32Array[]) => values.map((d) => tf.tensor2d(d, [ROWS, WIDTH]));

beforeAll(async () => {
  await initBackend("wasm");
});

describe("subspaceLoss", () => {
  it("equals the hand computation, per subspace and in total", () => {
    const { total, perSubspace } = subspaceLoss(probeTensors(), steps(data), labels, opts);
    const expected = handLoss();
    expect(total.dataSync()[0]).toBeCloseTo(expected.total, 5);
    for (const s of PROBED_SUBSPACES) expect(perSubspace[s].dataSync()[0], s).toBeCloseTo(expected.perSubspace[s]!, 5);
  });

  it("has the gradients finite differences give, w.r.t. an embedding step and every probe", () => {
    const eps = 1e-3;
    const check = (f: (x: tf.Tensor) => tf.Scalar, base: Float32Array, shape: number[]): void => {
      const analytic = tf.grad(f)(tf.tensor(base, shape)).dataSync();
      let largest = 0;
      for (let i = 0; i < base.length; i++) {
        const at = (delta: number) =>
          tf.tidy(() => {
            const moved = base.slice();
            moved[i] = moved[i]! + delta;
            return f(tf.tensor(moved, shape)).dataSync()[0]!;
          });
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        largest = Math.max(largest, Math.abs(numeric));
        expect(Math.abs(analytic[i]! - numeric), `element ${i}: analytic ${analytic[i]} numeric ${numeric}`).toBeLessThanOrEqual(
          1e-2 * Math.max(1, Math.abs(numeric)),
        );
      }
      // Not vacuous: the loss does depend on the input.
      expect(largest).toBeGreaterThan(1e-3);
    };
    // Step 3 (a supervised step; it feeds all three probes through its three slices).
    check((x) => subspaceLoss(probeTensors(), [...steps(data.slice(0, 2)), x as tf.Tensor2D], labels, opts).total, data[2]!, [ROWS, WIDTH]);
    for (const name of probeNames()) {
      check((x) => subspaceLoss({ ...probeTensors(), [name]: x }, steps(data), labels, opts).total, probeData[name], probeShapes[name]);
    }
  });

  it("weights each row by its class when given class weights (mean over rows, not over the weights)", () => {
    const classWeights = { temporal: [0.5, 2], procedural: [0.25, 7], contextual: [1, 3, 0.5, 2] };
    const weighted = subspaceLoss(probeTensors(), steps(data), labels, { ...opts, classWeights });
    const expected = handLoss(classWeights);
    for (const s of PROBED_SUBSPACES) expect(weighted.perSubspace[s].dataSync()[0], s).toBeCloseTo(expected.perSubspace[s]!, 5);
    expect(weighted.total.dataSync()[0]).toBeCloseTo(expected.total, 5);
    // Weights of 1 are the unweighted loss.
    const ones = subspaceLoss(probeTensors(), steps(data), labels, { ...opts, classWeights: { temporal: [1, 1], procedural: [1, 1], contextual: [1, 1, 1, 1] } });
    expect(ones.total.dataSync()[0]).toBeCloseTo(subspaceLoss(probeTensors(), steps(data), labels, opts).total.dataSync()[0]!, 6);
    expect(() => subspaceLoss(probeTensors(), steps(data), labels, { ...opts, classWeights: { ...classWeights, contextual: [1, 1, 1] } })).toThrow(
      /contextual label 3 of row 6 has no class weight/,
    );
  });

  it("balances classes by inverse share: each class then contributes equally, and the mean weight stays 1", () => {
    // 100 rows: temporal 10 yes, procedural 1 yes (below MIN_CLASS_SHARE → capped), contextual 50/30/20/0.
    const n = 100;
    const rows: SubspaceLabelRows = {
      temporal: Float32Array.from({ length: n }, (_, i) => (i < 10 ? 1 : 0)),
      procedural: Float32Array.from({ length: n }, (_, i) => (i === 0 ? 1 : 0)),
      contextual: Int32Array.from({ length: n }, (_, i) => (i < 50 ? 0 : i < 80 ? 1 : 2)),
    };
    const w = balancedClassWeights(rows);
    expect(w.temporal[0]).toBeCloseTo(1 / (2 * 0.9), 12);
    expect(w.temporal[1]).toBeCloseTo(1 / (2 * 0.1), 12);
    expect(0.9 * w.temporal[0]! + 0.1 * w.temporal[1]!).toBeCloseTo(1, 12);
    expect(w.procedural[1]).toBeCloseTo(1 / (2 * MIN_CLASS_SHARE), 12);
    // Three contextual classes present; the absent one gets the capped weight (it never enters the expected loss).
    expect(w.contextual.slice(0, 3).map((x) => x.toFixed(6))).toEqual([1 / 1.5, 1 / 0.9, 1 / 0.6].map((x) => x.toFixed(6)));
    expect(w.contextual[3]).toBeCloseTo(1 / (3 * MIN_CLASS_SHARE), 12);
    expect(() => balancedClassWeights({ temporal: new Float32Array(), procedural: new Float32Array(), contextual: new Int32Array() })).toThrow(/no labelled rows/);
  });

  it("ignores unsupervised steps and names mismatches", () => {
    const moved = steps(data);
    moved[1] = tf.mul(moved[1]!, -3) as tf.Tensor2D; // step 2 is not supervised
    const a = subspaceLoss(probeTensors(), steps(data), labels, opts).total.dataSync()[0];
    const b = subspaceLoss(probeTensors(), moved, labels, opts).total.dataSync()[0];
    expect(b).toBe(a);
    const short = { ...labels, temporal: labels.temporal.slice(0, 6) };
    expect(() => subspaceLoss(probeTensors(), steps(data), short, opts)).toThrow(/temporal labels: 6 for 7 rows/);
    expect(() => subspaceLoss(probeTensors(), steps(data.slice(0, 2)), labels, opts)).toThrow(/recursion step 3 .* 2 steps/);
  });
});

describe("probeAccuracy", () => {
  it("scores each probe's predictions against the majority-class rate", () => {
    // Two rows. Temporal: prototype "yes" on component 0, "no" on −component 0. Procedural: both prototypes prefer
    // "yes" for rows along component 5. Contextual: class 2's prototype on component 9 (slice component 1).
    const embeddings = new Float32Array(2 * WIDTH);
    embeddings.set([1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], 0);
    embeddings.set([-1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0], WIDTH);
    const probes = Object.fromEntries(probeNames().map((n) => [n, new Float32Array(probeShapes[n].reduce((a, b) => a * b, 1))])) as Record<
      ProbeName,
      Float32Array
    >;
    probes["aux.temporal.w"].set([-1, 0, 0, 0, 1, 0, 0, 0]);
    probes["aux.procedural.w"].set([0, 0, 1, 0, 0, 1, 0, 0]);
    probes["aux.contextual.w"].set([0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
    const scores = probeAccuracy(
      embeddings,
      WIDTH,
      { temporal: Float32Array.of(1, 0), procedural: Float32Array.of(0, 0), contextual: Int32Array.of(2, 1) },
      probes,
      ranges,
    );
    expect(scores.temporal).toMatchObject({ accuracy: 1, chance: 0.5, balancedAccuracy: 1, rows: 2 });
    expect(scores.procedural).toMatchObject({ accuracy: 0, chance: 1, balancedAccuracy: 0 });
    // Row 1 (component 9) → class 2, right. Row 2 lies on component 8, where no prototype has weight: every cosine is 0,
    // the first class wins the tie, and the truth is 1.
    expect(scores.contextual).toMatchObject({ accuracy: 0.5, chance: 0.5, balancedAccuracy: 0.5, classCounts: [0, 1, 1, 0] });
  });
});

/**
 * The SPLADE-style sparse head (src/model/spec.ts, model/sparse-head.ts) and its objective (train/sparse-loss.ts) on
 * the wasm backend: the head's value against a hand computation, its chunked custom gradient against finite
 * differences, the FLOPS regulariser and its warm-up, and a tiny training run in which the sparse loss falls and the
 * FLOPS regulariser makes the vectors sparser.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { weightNames, WEIGHT_NAMES, type WeightName } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import { encode } from "../src/model/forward.js";
import { initWeights, mulberry32, paramsFromWeights, type TaesrWeights } from "../src/model/params.js";
import { maxLogits, maxLogitsChunked, sparseHead } from "../src/model/sparse-head.js";
import { parseConfig } from "../src/train/config.js";
import { AdamW } from "../src/train/optimizer.js";
import { flopsRegularizer, sparseLoss, warmedLambda } from "../src/train/sparse-loss.js";
import { train } from "../src/train/trainer.js";
import { microArchitecture } from "./support/architectures.js";
import { expectInputGradientsMatch } from "./support/finite-differences.js";
import { layerNormByHand } from "./support/hand-layer-norm.js";
import { randomArray } from "./support/random.js";
import { useTempDir } from "./support/tiny-run.js";

const here = path.dirname(fileURLToPath(import.meta.url));

const ARCH = microArchitecture({ sparseHead: true });

/** Weights with a non-trivial sparse LayerNorm and bias, so the test exercises every parameter. */
function sparseWeights(seed = 3): TaesrWeights {
  const w = initWeights(ARCH, seed);
  w["embed.token"] = randomArray(seed + 1, ARCH.vocabSize * ARCH.hidden, 0.5);
  w["sparse.ln.gamma"] = Float32Array.from(randomArray(seed + 2, ARCH.hidden, 0.5), (v) => 1 + v);
  w["sparse.ln.beta"] = randomArray(seed + 3, ARCH.hidden, 0.2);
  w["sparse.bias"] = randomArray(seed + 4, ARCH.vocabSize, 0.5);
  return w;
}

/** spec.ts's formula, by hand in float64: w_v = max_t mask_t · log(1 + ReLU(LN(h_t)·E_v + b_v)). */
function handSparse(h: Float32Array, mask: number[][], w: TaesrWeights, B: number, T: number): number[][] {
  const { hidden: H, vocabSize: V } = ARCH;
  const out: number[][] = [];
  for (let b = 0; b < B; b++) {
    const row = new Array<number>(V).fill(0);
    for (let t = 0; t < T; t++) {
      if (!mask[b]![t]) continue;
      const n = layerNormByHand(h.subarray((b * T + t) * H, (b * T + t + 1) * H), w["sparse.ln.gamma"], w["sparse.ln.beta"]);
      for (let v = 0; v < V; v++) {
        let z = w["sparse.bias"][v]!;
        for (let i = 0; i < H; i++) z += n[i]! * w["embed.token"][v * H + i]!;
        row[v] = Math.max(row[v]!, Math.log(1 + Math.max(0, z)));
      }
    }
    out.push(row);
  }
  return out;
}

beforeAll(async () => {
  await initBackend("wasm");
});

describe("sparse head: architecture", () => {
  it("is optional: without it the weight list is exactly the one before the head existed, with it three weights follow", () => {
    const { sparseHead: _, ...plain } = ARCH;
    expect(weightNames(plain)).toEqual(WEIGHT_NAMES);
    expect(weightNames(ARCH)).toEqual([...WEIGHT_NAMES, "sparse.ln.gamma", "sparse.ln.beta", "sparse.bias"]);
    // Same seed, same values for every shared weight: the head's weights are drawn last (and are constants anyway).
    const a = initWeights(plain, 9);
    const b = initWeights(ARCH, 9);
    for (const n of WEIGHT_NAMES) expect(b[n]).toEqual(a[n]);
    expect(Array.from(b["sparse.ln.gamma"])).toEqual(new Array(ARCH.hidden).fill(1));
    expect(Array.from(b["sparse.bias"])).toEqual(new Array(ARCH.vocabSize).fill(Math.fround(-2 * 0.02 * Math.sqrt(ARCH.hidden))));
  });

  it("config: arch.sparseHead false is dropped (same parsed config), objectives.sparse needs the head", async () => {
    const raw = JSON.parse(await readFile(path.join(here, "../configs/tiny.json"), "utf8")) as Record<string, any>;
    const plain = parseConfig(raw);
    expect(parseConfig({ ...raw, arch: { ...raw["arch"], sparseHead: false } })).toEqual(plain);
    expect("sparseHead" in plain.arch).toBe(false);
    expect(parseConfig({ ...raw, arch: { ...raw["arch"], sparseHead: true } }).arch).toMatchObject({ sparseHead: true });
    const sparse = { weight: 1, lambdaQuery: 1e-3, lambdaDoc: 1e-3 };
    expect(() => parseConfig({ ...raw, training: { ...raw["training"], objectives: { sparse } } })).toThrow(/needs arch\.sparseHead/);
    expect(() =>
      parseConfig({ ...raw, arch: { ...raw["arch"], sparseHead: true }, training: { ...raw["training"], objectives: { sparse: { ...sparse, lamda: 1 } } } }),
    ).toThrow(/lamda/);
  });
});

describe("sparse head: value and gradients", () => {
  const B = 3;
  const T = 5;
  const mask = [
    [1, 1, 1, 1, 1],
    [1, 1, 0, 0, 0],
    [0, 0, 0, 0, 0], // an empty row: all zeros, not −1e9 artefacts
  ];

  it("matches the hand computation, padding contributes nothing, and an empty row is all zero", () => {
    const w = sparseWeights();
    const params = paramsFromWeights(ARCH, w);
    const h = randomArray(11, B * T * ARCH.hidden, 2);
    const out = tf.tidy(() => sparseHead(params, tf.tensor3d(h, [B, T, ARCH.hidden]), tf.tensor2d(mask)).arraySync());
    const expected = handSparse(h, mask, w, B, T);
    let nonZero = 0;
    for (let b = 0; b < B; b++) {
      for (let v = 0; v < ARCH.vocabSize; v++) {
        expect(Math.abs(out[b]![v]! - expected[b]![v]!)).toBeLessThan(1e-4 * Math.max(1, expected[b]![v]!));
        if (out[b]![v]! > 0) nonZero++;
      }
    }
    expect(nonZero).toBeGreaterThan(10); // the comparison is not between two all-zero matrices
    expect(out[2]!.every((v) => v === 0)).toBe(true);
    // Changing a padded position's state changes nothing.
    const h2 = h.slice();
    for (let i = 0; i < ARCH.hidden; i++) h2[(1 * T + 3) * ARCH.hidden + i] = 100;
    const out2 = tf.tidy(() => sparseHead(params, tf.tensor3d(h2, [B, T, ARCH.hidden]), tf.tensor2d(mask)).arraySync());
    expect(out2[1]).toEqual(out[1]);
    for (const v of Object.values(params)) v.dispose();
  });

  it("maxLogits: chunked and unchunked agree, and the custom gradient equals central finite differences for n, E and the bias", () => {
    const V = 7;
    const H = 4;
    const n0 = randomArray(21, B * T * H);
    const e0 = randomArray(22, V * H);
    const b0 = randomArray(23, V, 0.3);
    const maskBias = tf.tensor2d(mask.map((r) => r.map((m) => (m ? 0 : -1e9))));
    const weighting = tf.tensor2d(randomArray(24, B * V), [B, V]);
    // Only rows with a real token: an empty row's max sits at −1e9 and its gradient is not informative in float32.
    const rowWeight = tf.tensor2d([[1], [1], [0]]);
    // One batch row per chunk in both passes (T·V logits forward, V·H scattered values backward).
    const chunked = maxLogitsChunked(Math.max(T * V, V * H));
    for (const op of [maxLogits, chunked]) {
      const f = (n: tf.Tensor, e: tf.Tensor, b: tf.Tensor): tf.Scalar =>
        tf.sum(tf.mul(tf.mul(op(n as tf.Tensor3D, e as tf.Tensor2D, b as tf.Tensor1D, maskBias), weighting), rowWeight)) as tf.Scalar;
      expectInputGradientsMatch(f, [tf.tensor3d(n0, [B, T, H]), tf.tensor2d(e0, [V, H]), tf.tensor1d(b0)], 1e-3);
    }
    const [a, b] = tf.tidy(() => {
      const args = [tf.tensor3d(n0, [B, T, H]), tf.tensor2d(e0, [V, H]), tf.tensor1d(b0), maskBias] as const;
      return [maxLogits(...args).dataSync(), chunked(...args).dataSync()];
    });
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it("the whole head through the encoder: finite-difference check of d(Σ weighted w)/d(sparse.* and embed.token)", () => {
    const w = sparseWeights(5);
    const ids = tf.tensor2d([[3, 7, 9, 1], [4, 2, 0, 0]], [2, 4], "int32");
    const m = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]]);
    const weighting = tf.tensor2d(randomArray(31, 2 * ARCH.vocabSize), [2, ARCH.vocabSize]);
    const objective = (weights: TaesrWeights): number => {
      const params = paramsFromWeights(ARCH, weights);
      const value = tf.tidy(() => {
        const { states } = encode(params, ids, m, 2);
        return tf.sum(tf.mul(sparseHead(params, states[1]!, m), weighting)).dataSync()[0]!;
      });
      for (const v of Object.values(params)) v.dispose();
      return value;
    };
    const params = paramsFromWeights(ARCH, w);
    const checked: WeightName[] = ["sparse.ln.gamma", "sparse.ln.beta", "sparse.bias", "embed.token"];
    const { grads } = tf.variableGrads(() => {
      const { states } = encode(params, ids, m, 2);
      return tf.sum(tf.mul(sparseHead(params, states[1]!, m), weighting)) as tf.Scalar;
    }, checked.map((n) => params[n]));
    const byName = new Map(checked.map((n) => [n, grads[params[n].name]!.dataSync()]));
    const eps = 1e-2;
    for (const name of checked) {
      const data = w[name];
      // Every entry of the small vectors; a sample of the table's rows that the batch uses (3, 7, 4).
      const indices = name === "embed.token" ? [3, 7, 4].flatMap((r) => [r * ARCH.hidden, r * ARCH.hidden + 5]) : [...data.keys()].slice(0, 12);
      for (const i of indices) {
        const at = (delta: number): number => {
          const copy = { ...w, [name]: data.slice() } as TaesrWeights;
          copy[name][i] = data[i]! + delta;
          return objective(copy);
        };
        const numeric = (at(eps) - at(-eps)) / (2 * eps);
        const analytic = byName.get(name)![i]!;
        expect(Math.abs(analytic - numeric), `${name}[${i}] analytic ${analytic} numeric ${numeric}`).toBeLessThanOrEqual(
          2e-2 * Math.max(1, Math.abs(numeric)),
        );
      }
    }
    for (const v of Object.values(params)) v.dispose();
  });
});

describe("sparse objective", () => {
  it("FLOPS = Σ_v (mean_b w_v)², its gradient, and the quadratic λ warm-up", () => {
    const w = tf.tensor2d([
      [1, 0, 2],
      [3, 0, 0],
    ]);
    // means 2, 0, 1 → 4 + 0 + 1
    expect(flopsRegularizer(w).dataSync()[0]).toBeCloseTo(5, 6);
    // d/dw_bv = 2·mean_v / rows
    expect(Array.from(tf.grad((x: tf.Tensor) => flopsRegularizer(x as tf.Tensor2D))(w).dataSync())).toEqual([2, 0, 1, 2, 0, 1]);
    expect(warmedLambda(0.01, 0, 10)).toBe(0);
    expect(warmedLambda(0.01, 5, 10)).toBeCloseTo(0.0025, 12);
    expect(warmedLambda(0.01, 10, 10)).toBe(0.01);
    expect(warmedLambda(0.01, 50, 10)).toBe(0.01);
    expect(warmedLambda(0.01, 3, 0)).toBe(0.01);
  });

  it("ranking loss is the InfoNCE of the vocabulary dot products, hard-negative rows included for query → doc", () => {
    const q = tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    const d = tf.tensor2d([
      [2, 0, 0],
      [0, 1, 0],
      [1, 1, 0], // a hard negative
    ]);
    const { ranking, flopsQuery, flopsDoc, total } = sparseLoss(q, d, { lambdaQuery: 0.5, lambdaDoc: 0.25 }, false);
    // scores: q0 → [2, 0, 1], q1 → [0, 1, 1]
    const ce = (s: number[], i: number) => Math.log(s.reduce((a, v) => a + Math.exp(v), 0)) - s[i]!;
    const expected = (ce([2, 0, 1], 0) + ce([0, 1, 1], 1)) / 2;
    expect(ranking.dataSync()[0]).toBeCloseTo(expected, 5);
    expect(flopsQuery.dataSync()[0]).toBeCloseTo(0.5, 6);
    expect(flopsDoc.dataSync()[0]).toBeCloseTo(1 + 4 / 9, 5);
    expect(total.dataSync()[0]).toBeCloseTo(expected + 0.25 + (1 + 4 / 9) / 4, 5);
  });
});

describe("sparse objective: the FLOPS regulariser sparsifies", () => {
  /**
   * Controlled: the same small model, data and optimiser (AdamW, as the trainer's) trained on the sparse objective
   * alone for the same updates, with λ = 0 and with λ > 0; only the regulariser differs. Fast (a 50-term vocabulary),
   * so the comparison needs no full training run.
   */
  function trainSparse(lambda: number, updates: number): { nonZeros: number; ranking: number; firstRanking: number } {
    const weights = initWeights(ARCH, 13);
    const params = paramsFromWeights(ARCH, weights);
    const optimizer = new AdamW(params, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 });
    const byVar = new Map(Object.entries(params).map(([n, v]) => [v.name, n]));
    const rand = mulberry32(17);
    // 8 query/document pairs that share some ids (the signal), padded to 6 positions.
    const B = 8;
    const T = 6;
    const qIds: number[] = [];
    const dIds: number[] = [];
    for (let b = 0; b < B; b++) {
      const topic = Array.from({ length: 3 }, () => 1 + Math.floor(rand() * (ARCH.vocabSize - 1)));
      for (let t = 0; t < T; t++) qIds.push(t < 3 ? topic[t]! : 1 + Math.floor(rand() * (ARCH.vocabSize - 1)));
      for (let t = 0; t < T; t++) dIds.push(t < 2 ? topic[t]! : 1 + Math.floor(rand() * (ARCH.vocabSize - 1)));
    }
    const q = tf.tensor2d(qIds, [B, T], "int32");
    const d = tf.tensor2d(dIds, [B, T], "int32");
    const mask = tf.ones([B, T]) as tf.Tensor2D;
    let nonZeros = 0;
    let ranking = 0;
    let firstRanking = 0;
    for (let step = 0; step < updates; step++) {
      const lambdas = { lambdaQuery: warmedLambda(lambda, step, 5), lambdaDoc: warmedLambda(lambda, step, 5) };
      let rankingValue = 0;
      let nz = 0;
      const { value, grads } = tf.variableGrads(() => {
        const qs = encode(params, q, mask, 1).states[0]!;
        const ds = encode(params, d, mask, 1).states[0]!;
        const qw = sparseHead(params, qs, mask);
        const dw = sparseHead(params, ds, mask);
        const loss = sparseLoss(qw, dw, lambdas, true);
        rankingValue = loss.ranking.dataSync()[0]!;
        nz = (Array.from(qw.dataSync()).filter((x) => x > 0).length + Array.from(dw.dataSync()).filter((x) => x > 0).length) / (2 * B);
        return loss.total;
      });
      value.dispose();
      const named: Record<string, tf.Tensor> = {};
      for (const [v, g] of Object.entries(grads)) named[byVar.get(v)!] = g;
      optimizer.apply(named, 0.01);
      for (const g of Object.values(grads)) g.dispose();
      if (step === 0) firstRanking = rankingValue;
      nonZeros = nz;
      ranking = rankingValue;
    }
    for (const v of Object.values(params)) v.dispose();
    return { nonZeros, ranking, firstRanking };
  }

  it("same training with and without λ: the ranking loss falls in both, the regularised vectors are far sparser", () => {
    const free = trainSparse(0, 40);
    const regularised = trainSparse(0.5, 40);
    console.log(`sparse, 40 updates: λ 0 → ${free.nonZeros.toFixed(1)} non-zero terms of ${ARCH.vocabSize}, ranking ${free.firstRanking.toFixed(3)} → ${free.ranking.toFixed(3)}; ` +
      `λ 0.5 → ${regularised.nonZeros.toFixed(1)}, ranking ${regularised.firstRanking.toFixed(3)} → ${regularised.ranking.toFixed(3)} (chance ${Math.log(8).toFixed(3)})`);
    expect(free.ranking).toBeLessThan(free.firstRanking);
    expect(regularised.ranking).toBeLessThan(Math.log(8));
    expect(regularised.nonZeros).toBeLessThan(0.5 * free.nonZeros);
  });
});

describe("sparse objective: tiny training run", () => {
  const tmp = useTempDir("taesr-sparse-");

  it("trains the head beside the dense loss: the sparse ranking loss falls below chance, every objective is logged", async () => {
    const tinyPath = path.join(here, "../configs/tiny.json");
    const raw = JSON.parse(await readFile(tinyPath, "utf8")) as Record<string, any>;
    raw["tokenizer"] = path.resolve(path.dirname(tinyPath), raw["tokenizer"] as string);
    raw["arch"] = { ...raw["arch"], sparseHead: true };
    raw["training"] = {
      ...raw["training"],
      steps: 40,
      evalEvery: 10_000,
      checkpointEvery: 10_000,
      logEvery: 10,
      objectives: { sparse: { weight: 1, lambdaQuery: 0.001, lambdaDoc: 0.001, warmupSteps: 20 } },
    };
    raw["export"] = { ...raw["export"], outDir: path.join(tmp(), "artifacts") };
    const config = path.join(tmp(), "sparse.json");
    await writeFile(config, JSON.stringify(raw));
    const runDir = path.join(tmp(), "run");
    const t0 = performance.now();
    const result = await train({ config, runDir, stopAfterSteps: 40, progress: false, log: () => {} });
    const seconds = (performance.now() - t0) / 1000;
    expect(result.step).toBe(40);
    const lines = (await readFile(path.join(runDir, "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, any>)
      .filter((l) => l["type"] === "train");
    const objectives = lines.map((l) => l["lossByObjective"] as Record<string, number>);
    console.log(`sparse tiny run: ${seconds.toFixed(1)} s for 40 updates`, JSON.stringify(objectives));
    expect(objectives).toHaveLength(4);
    for (const o of objectives) {
      for (const key of ["dense", "sparse", "sparseRanking", "flopsQuery", "flopsDoc", "nonZerosQuery", "nonZerosDoc"]) {
        expect(Number.isFinite(o[key]), key).toBe(true);
      }
      // Neither collapsed (all terms on) nor dead (no term on).
      expect(o["nonZerosQuery"]!).toBeGreaterThan(10);
      expect(o["nonZerosQuery"]!).toBeLessThan(2000);
    }
    const chance = Math.log(32);
    const first = objectives[0]!;
    const last = objectives[objectives.length - 1]!;
    expect(last["sparseRanking"]!).toBeLessThan(first["sparseRanking"]! - 0.03);
    expect(last["sparseRanking"]!).toBeLessThan(chance - 0.05);
    // 40 updates take ≈ 3 minutes alone on this machine; a shared one needs longer than the file's 10-minute default.
  }, 2_400_000);
});

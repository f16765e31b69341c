/**
 * The late-interaction (ColBERT-style) head (src/model/spec.ts, model/late-head.ts) and its objective
 * (train/late-loss.ts) on the wasm backend: the architecture and config contract, the head and MaxSim against hand
 * computations, the chunked custom gradient against finite differences (chunked and unchunked alike), initFrom a
 * source without the head, a tiny training run in which the head's held-out MaxSim ranking improves, and data-parallel
 * training bit-identical to accumulation with the late objective on.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { weightNames, WEIGHT_NAMES, type TaesrArchitecture, type WeightName } from "../../src/model/spec.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { initBackend } from "../src/backend.js";
import { encode } from "../src/model/forward.js";
import { lateTokenVectors, maxSimScores, tokenMaxima, tokenMaximaChunked } from "../src/model/late-head.js";
import { initWeights, loadParams, paramsFromWeights, saveParams, type TaesrWeights } from "../src/model/params.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { parseConfig } from "../src/train/config.js";
import { lateLoss, lateObjectiveOf } from "../src/train/late-loss.js";
import { paramsFrom, prepareSession, train } from "../src/train/trainer.js";
import { validate } from "../src/train/validate.js";
import { microArchitecture } from "./support/architectures.js";
import { expectGradientsMatch, expectInputGradientsMatch } from "./support/finite-differences.js";
import { layerNormByHand } from "./support/hand-layer-norm.js";
import { randomArray } from "./support/random.js";
import { TINY_CONFIG, writeTinyConfig } from "./support/tiny-config.js";
import { float32Bytes, QUIET_RUN, useTempDir } from "./support/tiny-run.js";

const ARCH = microArchitecture({ lateHead: { dim: 6 } });

/** Weights with a non-trivial output LayerNorm, so the test exercises every parameter the head reads. */
function lateWeights(seed = 3): TaesrWeights {
  const w = initWeights(ARCH, seed);
  w["out.ln.gamma"] = Float32Array.from(randomArray(seed + 2, ARCH.hidden, 0.5), (v) => 1 + v);
  w["out.ln.beta"] = randomArray(seed + 3, ARCH.hidden, 0.2);
  return w;
}

/** spec.ts's formula by hand in float64: v_t = normalize(LNout(h_t) · W_late). */
function handVectors(h: Float32Array, w: TaesrWeights, rows: number): number[][] {
  const { hidden: H } = ARCH;
  const dim = ARCH.lateHead!.dim;
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const n = layerNormByHand(h.subarray(r * H, (r + 1) * H), w["out.ln.gamma"], w["out.ln.beta"]);
    const u = Array.from({ length: dim }, (_, j) => n.reduce((a, v, i) => a + v * w["late.proj.w"][i * dim + j]!, 0));
    const norm = Math.sqrt(u.reduce((a, v) => a + v * v, 0));
    out.push(u.map((v) => v / norm));
  }
  return out;
}

const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);

beforeAll(async () => {
  await initBackend("wasm");
});

describe("late head: architecture and config", () => {
  it("is optional: without it the weight list is unchanged, with it late.proj.w follows every other weight", () => {
    const { lateHead: _, ...plain } = ARCH;
    expect(weightNames(plain)).toEqual(WEIGHT_NAMES);
    expect(weightNames(ARCH)).toEqual([...WEIGHT_NAMES, "late.proj.w"]);
    expect(weightNames({ ...ARCH, sparseHead: true })).toEqual([...WEIGHT_NAMES, "sparse.ln.gamma", "sparse.ln.beta", "sparse.bias", "late.proj.w"]);
    // Same seed, same values for every shared weight: the head's matrix is drawn last.
    const a = initWeights(plain, 9);
    const b = initWeights(ARCH, 9);
    for (const n of WEIGHT_NAMES) expect(b[n]).toEqual(a[n]);
    expect(b["late.proj.w"]).toHaveLength(ARCH.hidden * 6);
  });

  it("config: arch.lateHead absent stays absent; objectives.late needs the head and steps among lossSteps", async () => {
    const raw = JSON.parse(await readFile(TINY_CONFIG, "utf8")) as Record<string, any>;
    const plain = parseConfig(raw);
    expect("lateHead" in plain.arch).toBe(false);
    const withHead = { ...raw, arch: { ...raw["arch"], lateHead: { dim: 32 } } };
    expect(parseConfig(withHead).arch).toMatchObject({ lateHead: { dim: 32 } });
    // Written last, so a config with both heads lists them in spec.ts's order.
    expect(Object.keys(parseConfig({ ...raw, arch: { ...raw["arch"], lateHead: { dim: 32 }, sparseHead: true } }).arch).slice(-2)).toEqual(["sparseHead", "lateHead"]);
    const late = { weight: 1 };
    expect(() => parseConfig({ ...raw, training: { ...raw["training"], objectives: { late } } })).toThrow(/needs arch\.lateHead/);
    expect(() => parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, steps: [2] } } } })).toThrow(
      /step 2 is not one of training\.lossSteps \[1, 3, 6\]/,
    );
    expect(() => parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, temprature: 1 } } } })).toThrow(/temprature/);
    expect(() => parseConfig({ ...raw, arch: { ...raw["arch"], lateHead: { dim: 0 } } })).toThrow(/lateHead/);
    // Defaults: τ 0.1, the deepest supervised step.
    expect(lateObjectiveOf({ weight: 0.5 }, [1, 3, 6])).toEqual({ weight: 0.5, temperature: 0.1, steps: [6] });
    expect(lateObjectiveOf(undefined, [1])).toBeUndefined();
  });
});

describe("late head: values and gradients", () => {
  it("token vectors match the hand computation and are unit length; MaxSim sums real query tokens' best real match", () => {
    const w = lateWeights();
    const params = paramsFromWeights(ARCH, w);
    const B = 2;
    const T = 3;
    const h = randomArray(11, B * T * ARCH.hidden, 2);
    const v = tf.tidy(() => lateTokenVectors(params, tf.tensor3d(h, [B, T, ARCH.hidden])).arraySync());
    const expected = handVectors(h, w, B * T);
    for (let r = 0; r < B * T; r++) {
      const got = v[Math.floor(r / T)]![r % T]!;
      got.forEach((x, j) => expect(Math.abs(x - expected[r]![j]!)).toBeLessThan(1e-5));
      expect(dot(got, got)).toBeCloseTo(1, 5);
    }
    // MaxSim with padding on both sides: query 0 has 2 real tokens, document 1 has 1.
    const qMask = [[1, 1, 0], [1, 1, 1]];
    const dMask = [[1, 1, 1], [1, 0, 0]];
    const scores = tf.tidy(() => {
      const vt = tf.tensor3d(v);
      return maxSimScores(vt, tf.tensor2d(qMask), vt, tf.tensor2d(dMask)).arraySync();
    });
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < B; c++) {
        let s = 0;
        for (let i = 0; i < T; i++) {
          if (!qMask[b]![i]) continue;
          let best = -Infinity;
          for (let j = 0; j < T; j++) if (dMask[c]![j]) best = Math.max(best, dot(v[b]![i]!, v[c]![j]!));
          s += best;
        }
        expect(scores[b]![c]!).toBeCloseTo(s, 5);
      }
    }
    for (const x of Object.values(params)) x.dispose();
  });

  it("tokenMaxima: chunked and unchunked agree, and the custom gradient equals central finite differences", () => {
    const [B, Tq, C, Td, K] = [2, 3, 5, 4, 3];
    const q0 = randomArray(21, B * Tq * K);
    const d0 = randomArray(22, C * Td * K);
    const maskBias = tf.tensor2d(Array.from({ length: C }, (_, c) => Array.from({ length: Td }, (_, j) => (j <= c % Td ? 0 : -1e9))));
    const weighting = tf.tensor3d(randomArray(24, B * Tq * C), [B, Tq, C]);
    // One document row per chunk (2·3·4 = 24 similarities): the multi-chunk path in forward and backward.
    const chunked = tokenMaximaChunked(B * Tq * Td);
    for (const op of [tokenMaxima, chunked]) {
      const f = (q: tf.Tensor, d: tf.Tensor): tf.Scalar => tf.sum(tf.mul(op(q as tf.Tensor3D, d as tf.Tensor3D, maskBias), weighting)) as tf.Scalar;
      expectInputGradientsMatch(f, [tf.tensor3d(q0, [B, Tq, K]), tf.tensor3d(d0, [C, Td, K])], 1e-3);
    }
    const [a, b] = tf.tidy(() => {
      const q = tf.tensor3d(q0, [B, Tq, K]);
      const d = tf.tensor3d(d0, [C, Td, K]);
      return [tokenMaxima(q, d, maskBias).dataSync(), chunked(q, d, maskBias).dataSync()];
    });
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it("the late InfoNCE through the encoder, hard-negative rows included: finite-difference check of its gradient", () => {
    const params = paramsFromWeights(ARCH, lateWeights(5));
    // 2 queries, 3 documents (the third a hard negative), right-padded.
    const qIds = tf.tensor2d([[3, 7, 9, 0], [4, 2, 0, 0]], [2, 4], "int32");
    const qMask = tf.tensor2d([[1, 1, 1, 0], [1, 1, 0, 0]]);
    const dIds = tf.tensor2d([[3, 8, 9, 1, 5], [4, 6, 0, 0, 0], [2, 7, 11, 0, 0]], [3, 5], "int32");
    const dMask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]);
    const loss = (): tf.Scalar => {
      const q = encode(params, qIds, qMask, 2);
      const d = encode(params, dIds, dMask, 2);
      return lateLoss(params, q.states[1]!, qMask, d.states[1]!, dMask, 0.5);
    };
    const checked: WeightName[] = ["late.proj.w", "out.ln.gamma", "out.ln.beta", "block.ffn.w2", "embed.token"];
    const { value, grads } = tf.variableGrads(loss, checked.map((n) => params[n]));
    expect(value.dataSync()[0]!).toBeGreaterThan(0);
    const analytic = Object.fromEntries(checked.map((n) => [n, grads[params[n].name]!.dataSync()])) as Record<WeightName, Float32Array>;
    const lossAt = () => tf.tidy(() => loss().dataSync()[0]!);
    const headProbes: [WeightName, number][] = [...[0, 7, 20, 45, 95].map((i): [WeightName, number] => ["late.proj.w", i]), ["out.ln.gamma", 3], ["out.ln.beta", 10]];
    expectGradientsMatch(params, headProbes, lossAt, analytic, 1e-2);
    // The encoder's weights are small (embeddings N(0, 0.02²)): a smaller step keeps the difference in the linear regime.
    const encoderProbes: [WeightName, number][] = [
      ["block.ffn.w2", 17],
      ["embed.token", 7 * ARCH.hidden + 2],
      ["embed.token", 11 * ARCH.hidden + 5], // a token only the hard negative has
    ];
    expectGradientsMatch(params, encoderProbes, lossAt, analytic, 1e-3);
    for (const x of Object.values(params)) x.dispose();
  });
});

describe("late head in the trainer", () => {
  const tmp = useTempDir("taesr-late-");
  // One supervised step keeps these runs short; the objective itself is the same at any step.
  const fast = { lossSteps: [1], batchSize: 16, logEvery: 5, checkpointEvery: 1000 };

  /** The tiny config's architecture without heads, and its weights saved as an initFrom source. */
  async function plainSource(seed: number, heads: Partial<TaesrArchitecture> = {}): Promise<{ arch: TaesrArchitecture; file: string; weights: TaesrWeights }> {
    const plainConfig = parseConfig(JSON.parse(await readFile(TINY_CONFIG, "utf8")));
    const tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(path.resolve(path.dirname(TINY_CONFIG), plainConfig.tokenizer), "utf8")) as TokenizerJSON);
    const arch: TaesrArchitecture = { ...plainConfig.arch, vocabSize: tokenizer.vocabSize, ...heads };
    const weights = initWeights(arch, seed);
    const file = path.join(tmp(), `source-${seed}-${Object.keys(heads).join("-")}.taesr`);
    await saveParams(file, weights, arch);
    return { arch, file, weights };
  }

  it("initFrom: only added heads may differ from the source (checked before any data is read)", async () => {
    const source = await plainSource(1234);
    const log: string[] = [];
    const both = await paramsFrom(source.file, { ...source.arch, sparseHead: true, lateHead: { dim: 16 } }, 7, (l) => log.push(l));
    const fresh = initWeights({ ...source.arch, sparseHead: true, lateHead: { dim: 16 } }, 7);
    for (const name of weightNames(source.arch)) expect(both[name].dataSync(), name).toEqual(source.weights[name]);
    for (const name of ["sparse.ln.gamma", "sparse.ln.beta", "sparse.bias", "late.proj.w"] as const) expect(both[name].dataSync(), name).toEqual(fresh[name]);
    expect(log.join("\n")).toMatch(/has no sparseHead or lateHead: sparse\.ln\.gamma, sparse\.ln\.beta, sparse\.bias, late\.proj\.w start from the seed-7 initialisation/);
    for (const v of Object.values(both)) v.dispose();
    // Any other difference is still an error: another width beside an added head, a head the config drops, another head width.
    await expect(paramsFrom(source.file, { ...source.arch, hidden: 128, lateHead: { dim: 16 } }, 7, () => {})).rejects.toThrow(
      /was trained with hidden 64, this config has hidden 128$/,
    );
    const withHead = await plainSource(1, { lateHead: { dim: 16 } });
    await expect(paramsFrom(withHead.file, source.arch, 7, () => {})).rejects.toThrow(/lateHead \{"dim":16\}, this config has lateHead undefined/);
    await expect(paramsFrom(withHead.file, { ...source.arch, lateHead: { dim: 8 } }, 7, () => {})).rejects.toThrow(/lateHead \{"dim":16\}, this config has lateHead \{"dim":8\}/);
  });

  it("a tiny run initialised from a model without the head trains it: held-out MaxSim ranks better, the late loss is logged", async () => {
    // Drawn with the run's seed: the shared weights then equal a fresh init's, and the head's are drawn last, so the
    // model starts exactly where a run without initFrom would (the two paths are the same numbers).
    const source = await plainSource(7);
    const config = await writeTinyConfig(tmp(), "learn", {
      arch: { lateHead: { dim: 32 } },
      training: { ...fast, steps: 60, logEvery: 10, objectives: { late: { weight: 1 } } },
      top: { initFrom: source.file },
    });
    const lines: string[] = [];
    const session = await prepareSession({ config, log: (l) => lines.push(l) });
    expect(lines.join("\n")).toMatch(/it has no lateHead: late\.proj\.w start from the seed-7 initialisation/);
    const scratch = initWeights(session.arch, 7);
    for (const name of weightNames(session.arch)) expect(session.params[name].dataSync(), name).toEqual(scratch[name]);
    const options = { depths: [1], dim: 128, maxQueryLength: 16, maxDocLength: 32 };
    const before = validate(session.params, session.pairs.validation, session.tokenizer, options).late!;
    for (const v of Object.values(session.params)) v.dispose();
    const result = await train({ config, runDir: path.join(tmp(), "learn"), ...QUIET_RUN });
    const final = await loadParams(result.finalParamsPath!);
    const params = paramsFromWeights(final.architecture, final.weights);
    const after = validate(params, session.pairs.validation, session.tokenizer, options).late!;
    for (const v of Object.values(params)) v.dispose();
    console.log(`late head, 60 updates: held-out MaxSim MRR ${before.mrr.toFixed(3)} → ${after.mrr.toFixed(3)}, acc@1 ${before.acc1.toFixed(3)} → ${after.acc1.toFixed(3)}`);
    expect(after.mrr).toBeGreaterThan(before.mrr + 0.04);
    // The trainer's own final validation reports MaxSim too, on the hidden state the head was trained on: the deepest
    // supervised step (lossSteps [1] here), not the architecture's deepest depth.
    expect(result.validation?.late?.depth).toBe(1);

    const metrics = (await readFile(path.join(tmp(), "learn", "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    const objectives = metrics.filter((m) => m.type === "train").map((m) => m.lossByObjective as Record<string, number>);
    expect(objectives).toHaveLength(6);
    expect(Object.keys(objectives[0]!).sort()).toEqual(["dense", "late"]);
    expect(objectives[objectives.length - 1]!["late"]!).toBeLessThan(objectives[0]!["late"]!);
    // The exported artifact lists late.onnx per variant (int4 runs int8's).
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.architecture.lateHead).toEqual({ dim: 32 });
    expect(manifest.variants.int4.late).toBe("int8/late.onnx");
  });

  it("trains bit-identically with two processes as with one accumulating, late objective on", async () => {
    // One small source keeps the three sessions (two ranks, then the accumulating run) quick to build.
    const data = { sources: { wordnet: { maxPairs: 800 } }, validationFraction: 0.05, maxValidationPairs: 32 };
    const common = { arch: { lateHead: { dim: 16 } }, top: { data } };
    const training = { ...fast, checkpointEvery: 2, objectives: { late: { weight: 1 } } };
    const parallel = await train({
      config: await writeTinyConfig(tmp(), "dp", { ...common, training: { ...training, workers: 2 } }),
      runDir: path.join(tmp(), "dp"),
      stopAfterSteps: 2,
      ...QUIET_RUN,
    });
    const accumulated = await train({
      config: await writeTinyConfig(tmp(), "acc", { ...common, training: { ...training, accumulationSteps: 2 } }),
      runDir: path.join(tmp(), "acc"),
      stopAfterSteps: 2,
      ...QUIET_RUN,
    });
    expect(parallel.lossHistory).toEqual(accumulated.lossHistory);
    const a = await loadCheckpoint(path.join(tmp(), "dp", "checkpoints", "step-00000002"));
    const b = await loadCheckpoint(path.join(tmp(), "acc", "checkpoints", "step-00000002"));
    expect([...a.tensors.keys()]).toContain("param.late.proj.w");
    for (const [name, t] of a.tensors) expect(float32Bytes(b.tensors.get(name)!.data).equals(float32Bytes(t.data)), name).toBe(true);
  });
});

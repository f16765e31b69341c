/**
 * The gradient cache (src/train/gradient-cache.ts, `training.gradientCache`): a micro-batch encoded a few rows at a
 * time gives one pass's loss, objectives and gradients — with hard negatives, the late head, its distillation (the
 * lexical teacher too), the subspace probes, and documents at a fixed depth or at every query step — while the wasm
 * heap holds far less; the config refuses what it does not cover; a run with it trains as a run without.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTaesrConfig } from "../../src/model/taesr-config.js";
import { weightNamesIn, type TaesrArchitecture } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import { PairBatcher, type EncodedBatch } from "../src/data/batches.js";
import type { PairSource, TextPair } from "../src/data/pairs.js";
import { initParams, mulberry32, type TaesrParams } from "../src/model/params.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { ConfigError, loadConfig } from "../src/train/config.js";
import type { ContrastiveLossOptions } from "../src/train/loss.js";
import { microBatchGradients, type MicroBatchOptions, type MicroBatchResult } from "../src/train/micro-batch.js";
import { initProbes, probedRanges, probeNames, type SubspaceLossOptions } from "../src/train/subspace-loss.js";
import { train } from "../src/train/trainer.js";
import { microArchitecture } from "./support/architectures.js";
import { randomArray, randomTokenMatrix } from "./support/random.js";
import { writeTinyConfig } from "./support/tiny-config.js";
import { QUIET_RUN, useTempDir } from "./support/tiny-run.js";
import { randomWord, wordTokenizer } from "./support/toy-text.js";
import { peakTensorBuffers } from "./support/wasm-peak.js";

const VOCAB = 60;
const tokenizer = wordTokenizer(VOCAB);

/** Queries of 1–20 words, documents of 2–12, half of the pairs with a hard negative, three sources. */
function pairsWithNegatives(): TextPair[] {
  const rand = mulberry32(31);
  const sources: PairSource[] = ["debian", "wordnet", "scifact"];
  const words = (n: number) => Array.from({ length: n }, () => randomWord(rand)).join(" ");
  return Array.from({ length: 30 }, (_, i) => ({
    query: `q${i} ${words(Math.floor(rand() * 20))}`.trim(),
    doc: `d${i} ${words(1 + Math.floor(rand() * 11))}`,
    ...(i % 2 === 0 ? { negative: `n${i} ${words(1 + Math.floor(rand() * 11))}` } : {}),
    source: sources[i % 3]!,
    kind: "title->text",
  }));
}

const ARCH = microArchitecture({ vocabSize: VOCAB, heads: 4, maxLength: 32, matryoshkaDims: [64, 384], depths: { easy: 1, medium: 3, hard: 6 }, lateHead: { dim: 4 } });
/** Loops, not Math.max(...x): a token table's half a million entries overflow the call stack as arguments. */
function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}
function maxAbsDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < y.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

function dispose(r: MicroBatchResult): void {
  Object.values(r.gradSums).forEach((g) => g.dispose());
  Object.values(r.auxGradSums ?? {}).forEach((g) => g.dispose());
}

/** Everything a cached result must share with the one-pass result, to float rounding. */
function expectSameResult(got: MicroBatchResult, want: MicroBatchResult, label: string): void {
  got.losses.forEach((l, i) => expect(Math.abs(l - want.losses[i]!), `${label}: loss ${i}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want.losses[i]!))));
  expect(got.perStep.length).toBe(want.perStep.length);
  got.perStep.forEach((steps, i) => steps.forEach((l, k) => expect(l, `${label}: micro-batch ${i} step ${k}`).toBeCloseTo(want.perStep[i]![k]!, 5)));
  expect(got.objectives.length, label).toBe(want.objectives.length);
  got.objectives.forEach((o, i) => {
    expect(Object.keys(o).sort(), label).toEqual(Object.keys(want.objectives[i]!).sort());
    for (const [k, v] of Object.entries(o)) expect(v, `${label}: ${k}`).toBeCloseTo(want.objectives[i]![k]!, 5);
  });
  expect(got.tokens, label).toBe(want.tokens);
  // Against the largest gradient entry of all weights (the key bias's own gradient is rounding: see length-groups.test.ts).
  const names = weightNamesIn(want.gradSums);
  expect(weightNamesIn(got.gradSums), label).toEqual(names);
  const scale = Math.max(...names.map((n) => maxAbs(want.gradSums[n].dataSync())));
  for (const n of names) expect(maxAbsDiff(got.gradSums[n].dataSync(), want.gradSums[n].dataSync()) / scale, `${label}: ${n}`).toBeLessThanOrEqual(1e-5);
  for (const n of Object.keys(want.auxGradSums ?? {}) as (keyof NonNullable<MicroBatchResult["auxGradSums"]>)[]) {
    const g = want.auxGradSums![n].dataSync();
    expect(maxAbsDiff(got.auxGradSums![n].dataSync(), g) / maxAbs(g), `${label}: ${n}`).toBeLessThanOrEqual(1e-5);
  }
}

beforeAll(async () => {
  await initBackend("wasm");
});

describe("microBatchGradients with the gradient cache", () => {
  let params: TaesrParams;
  let subspaces: { probes: ReturnType<typeof initProbes>; loss: SubspaceLossOptions };
  let batches: EncodedBatch[];
  const fixedDepth: ContrastiveLossOptions = { temperature: 0.05, symmetric: true, dims: ARCH.matryoshkaDims, steps: [1, 3, 6], stepWeights: [1, 1, 1], documentSteps: [1] };

  beforeAll(() => {
    params = initParams(ARCH, 5);
    const ranges = probedRanges(parseTaesrConfig({}).subspaces);
    subspaces = {
      probes: initProbes(ranges, 9),
      loss: { ranges, weight: 0.5, weights: { temporal: 1, procedural: 1, contextual: 1 }, steps: [1, 6], stepWeights: [1, 1] },
    };
    const batcher = new PairBatcher(pairsWithNegatives(), tokenizer, { batchSize: 10, maxQueryLength: 24, maxDocLength: 12, seed: 3, probeRows: 12 });
    batches = [batcher.encode([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), batcher.encode([10, 12, 14, 16, 18, 20, 21, 23, 25, 27])];
    // The lexical teacher's scores: any fixed numbers do, the cache must pass them through as one pass does.
    batches.forEach((b, i) => (b.lexical = Float32Array.from(randomArray(40 + i, b.queries.rows * b.docs.rows), Math.abs)));
  });
  afterAll(() => {
    Object.values(params).forEach((v) => v.dispose());
    Object.values(subspaces.probes).forEach((v) => v.dispose());
  });

  it("gives one pass's loss, objectives and gradients: hard negatives, late head, distillation with BM25, subspace probes", () => {
    expect(batches.every((b) => b.docs.rows > b.queries.rows)).toBe(true);
    const options: MicroBatchOptions = {
      late: { weight: 0.5, temperature: 0.1, steps: [6], distill: { weight: 1, temperature: 0.1, bm25: 0.5 } },
      subspaces,
    };
    const want = microBatchGradients(params, fixedDepth, batches, options);
    expect(want.objectives[0]).toHaveProperty("distill");
    // 1 row at a time, chunks that do not divide the batch, and one chunk holding every row.
    for (const rows of [1, 3, 64]) {
      const got = microBatchGradients(params, fixedDepth, batches, { ...options, gradientCache: { rows } });
      expectSameResult(got, want, `rows ${rows}`);
      dispose(got);
    }
    // Not a vacuous match: the late head and the probes are trained through the cache.
    expect(maxAbs(want.gradSums["late.proj.w"].dataSync())).toBeGreaterThan(0);
    for (const n of probeNames()) expect(maxAbs(want.auxGradSums![n].dataSync()), n).toBeGreaterThan(0);
    dispose(want);
  });

  it("gives one pass's result with documents at every query step (cross-step pairs) and no head", () => {
    const { documentSteps: _fixed, ...rest } = fixedDepth;
    const everyStep: ContrastiveLossOptions = { ...rest, steps: [1, 3], stepWeights: [2, 1], crossSteps: true };
    const want = microBatchGradients(params, everyStep, batches, {});
    const got = microBatchGradients(params, everyStep, batches, { gradientCache: { rows: 4 } });
    expectSameResult(got, want, "cross-step");
    expect(got.objectives).toEqual([]);
    // The late head is in the model but no objective reaches it: no sum for it, as one pass gives none (the optimiser
    // then leaves it as it is), and two micro-batches do not trip over its missing gradient.
    expect(weightNamesIn(got.gradSums)).toEqual(weightNamesIn(want.gradSums));
    expect(weightNamesIn(want.gradSums)).not.toContain("late.proj.w");
    dispose(got);
    dispose(want);
  });

  it("refuses the sparse objective and trainHeadsOnly, which it does not cover", () => {
    const sparse = { weight: 0.3, lambdaQuery: 0.01, lambdaDoc: 0.02 };
    expect(() => microBatchGradients(params, fixedDepth, batches, { sparse, gradientCache: { rows: 4 } })).toThrow(/does not cover the sparse objective/);
    expect(() => microBatchGradients(params, fixedDepth, batches, { late: { weight: 1, temperature: 0.1, steps: [6] }, gradientCache: { rows: 0 } })).toThrow(
      /gradientCache\.rows must be a positive integer/,
    );
  });

  it("holds less in the wasm heap than one pass over the same micro-batch (48 pairs × 64 pieces, H 128, late head)", async () => {
    const arch: TaesrArchitecture = { ...microArchitecture({ vocabSize: 8192, hidden: 128, heads: 4, ffn: 256, maxLength: 64 }), matryoshkaDims: [64, 128, 384], depths: { easy: 1, medium: 3, hard: 6 }, lateHead: { dim: 32 } };
    const big = initParams(arch, 7);
    const batch: EncodedBatch = { queries: randomTokenMatrix(3, 48, 16, arch.vocabSize), docs: randomTokenMatrix(4, 96, 64, arch.vocabSize) };
    const options: MicroBatchOptions = { checkpoint: true, late: { weight: 0.5, temperature: 0.1, steps: [6], distill: { weight: 1, temperature: 0.1 } } };
    const pass = (cache: boolean) => () => dispose(microBatchGradients(big, fixedDepth, [batch], cache ? { ...options, gradientCache: { rows: 8 } } : options));
    try {
      pass(true)(); // warm-up: kernel set-up and cached constants
      const cached = await peakTensorBuffers(pass(true));
      const plain = await peakTensorBuffers(pass(false));
      const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
      console.log(`one micro-batch of 48 pairs (+48 negatives): peak tensor buffers plain ${mb(plain.buffers)}, gradient cache of 8 rows ${mb(cached.buffers)}`);
      expect(cached.buffers).toBeLessThan(plain.buffers / 2);
    } finally {
      Object.values(big).forEach((v) => v.dispose());
    }
  });
});

describe("training.gradientCache in a run", () => {
  const tmp = useTempDir("taesr-gradient-cache-");
  const tiny = (name: string, training: Record<string, unknown>) =>
    writeTinyConfig(tmp(), name, { training: { batchSize: 16, checkpointEvery: 1, keepCheckpoints: 2, logEvery: 1, workers: 2, ...training } });

  it("trains two data-parallel updates to the weights of the same run without it", async () => {
    const plain = await train({ config: await tiny("plain", {}), runDir: path.join(tmp(), "plain"), stopAfterSteps: 2, ...QUIET_RUN });
    const cached = await train({ config: await tiny("cached", { gradientCache: { rows: 5 } }), runDir: path.join(tmp(), "cached"), stopAfterSteps: 2, ...QUIET_RUN });
    expect(cached.step).toBe(2);
    expect(cached.tokens).toBe(plain.tokens);
    cached.lossHistory.forEach((l, i) => expect(l).toBeCloseTo(plain.lossHistory[i]!, 4));
    const weightsAt = async (run: string, step: number) => (await loadCheckpoint(path.join(tmp(), run, "checkpoints", `step-0000000${step}`))).tensors;
    const [before, a, b] = await Promise.all([weightsAt("plain", 1), weightsAt("plain", 2), weightsAt("cached", 2)]);
    // Over all weights: how far the two runs' weights are apart against how far the second update moved them. Per
    // weight it would not do: AdamW's early steps are about lr · sign(gradient), and a gradient at rounding level (the
    // key bias's) takes either sign.
    let apart = 0;
    let moved = 0;
    let bitIdentical = true;
    for (const [name, t] of a) {
      const other = b.get(name)!.data;
      const previous = before.get(name)!.data;
      for (let i = 0; i < t.data.length; i++) {
        apart += (other[i]! - t.data[i]!) ** 2;
        moved += (t.data[i]! - previous[i]!) ** 2;
        bitIdentical &&= other[i] === t.data[i];
      }
    }
    expect(moved).toBeGreaterThan(0);
    console.log(`after two updates the cached run's weights are ${Math.sqrt(apart / moved).toExponential(2)} of the second update apart from the plain run's`);
    expect(Math.sqrt(apart / moved)).toBeLessThanOrEqual(0.05);
    // The chunked passes round differently: bit-identical weights would mean the run never used the cache.
    expect(bitIdentical).toBe(false);
  });

  it("is refused with the sparse objective or trainHeadsOnly, naming the field", async () => {
    const sparse = await writeTinyConfig(tmp(), "sparse", { arch: { sparseHead: true }, training: { gradientCache: { rows: 8 }, objectives: { sparse: { weight: 1, lambdaQuery: 0.01, lambdaDoc: 0.01 } } } });
    await expect(loadConfig(sparse)).rejects.toThrow(ConfigError);
    await expect(loadConfig(sparse)).rejects.toThrow(/does not cover objectives\.sparse[\s\S]*training\.gradientCache|training\.gradientCache[\s\S]*does not cover objectives\.sparse/);
    const zero = await tiny("zero", { gradientCache: { rows: 0 } });
    await expect(loadConfig(zero)).rejects.toThrow(/gradientCache/);
  });
});

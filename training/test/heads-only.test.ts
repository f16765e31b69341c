/**
 * training.trainHeadsOnly: a head joins a trained model without moving it. A tiny base run without heads, then a run
 * that adds the sparse head from it with only the head trained: every weight the base had comes out bit-identical (the
 * encoder, the tied token table, the output projection), the head's weights move, only the head's objectives are logged, and validation reports the head's own retrieval figures and sparsity. The config
 * refuses the combinations that cannot work. The late head alone: its gradient is the late InfoNCE's through the fixed
 * encoder, averaged over its steps and weighted, and no other weight gets one.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../src/backend.js";
import { encode } from "../src/model/forward.js";
import { sparseHead } from "../src/model/sparse-head.js";
import { validate } from "../src/train/validate.js";
import { microArchitecture } from "./support/architectures.js";
import { randomArray } from "./support/random.js";
import { SPARSE_WEIGHT_NAMES, weightNamesIn } from "../../src/model/spec.js";
import { PairBatcher } from "../src/data/batches.js";
import { initWeights, loadParams, mulberry32, paramsFromWeights } from "../src/model/params.js";
import { lateLoss } from "../src/train/late-loss.js";
import { microBatchGradients } from "../src/train/micro-batch.js";
import { randomWord, wordTokenizer } from "./support/toy-text.js";
import { parseConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import { writeTinyConfig } from "./support/tiny-config.js";
import { float32Bytes, QUIET_RUN, useTempDir } from "./support/tiny-run.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const SPARSE = { weight: 1, lambdaQuery: 0.001, lambdaDoc: 0.001, warmupSteps: 0 };
/** configs/tiny.json's seed, which the head's initial weights are drawn with. */
const TINY_SEED = 7;

describe("training.trainHeadsOnly", () => {
  const tmp = useTempDir("taesr-heads-only-");

  it("trains the sparse head alone: every base weight stays bit-identical, the head's weights move, validation scores it", async () => {
    const baseConfig = await writeTinyConfig(tmp(), "base", { training: { steps: 2, logEvery: 1 } });
    const base = await train({ config: baseConfig, runDir: path.join(tmp(), "base"), ...QUIET_RUN });
    const before = await loadParams(base.finalParamsPath!);

    const config = await writeTinyConfig(tmp(), "heads", {
      arch: { sparseHead: true },
      top: { initFrom: base.finalParamsPath },
      training: { steps: 6, logEvery: 3, evalEvery: 6, warmupSteps: 0, lossSteps: [1], trainHeadsOnly: true, objectives: { sparse: SPARSE } },
    });
    const result = await train({ config, runDir: path.join(tmp(), "heads"), ...QUIET_RUN });
    expect(result.step).toBe(6);
    const after = await loadParams(result.finalParamsPath!);

    const baseNames = weightNamesIn(before.weights);
    expect(baseNames.some((n) => n.startsWith("sparse."))).toBe(false);
    for (const name of baseNames) expect(float32Bytes(after.weights[name]!).equals(float32Bytes(before.weights[name]!)), name).toBe(true);
    for (const name of SPARSE_WEIGHT_NAMES) expect(name in after.weights, name).toBe(true);

    const lines = (await readFile(path.join(tmp(), "heads", "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
    const logged = lines.filter((l) => l["type"] === "train");
    expect(logged).toHaveLength(2);
    for (const line of logged) {
      // No dense loss is computed: neither its per-step figures nor a "dense" objective appear.
      expect(line["lossByStep"]).toBeUndefined();
      expect(Object.keys(line["lossByObjective"]).sort()).toEqual(["flopsDoc", "flopsQuery", "nonZerosDoc", "nonZerosQuery", "sparse", "sparseRanking"]);
      expect(line["loss"]).toBeCloseTo(line["lossByObjective"].sparse, 4);
    }
    // The head's weights moved from the seeded values it started from (trainer.ts paramsFrom: a fresh model's). Whether
    // it learns to rank needs an encoder worth reading: a 2-update tiny one is not (the README gives the real run's).
    const initial = initWeights(after.architecture, TINY_SEED);
    for (const name of SPARSE_WEIGHT_NAMES) expect(float32Bytes(after.weights[name]!).equals(float32Bytes(initial[name]!)), name).toBe(false);
    const evaluation = lines.find((l) => l["type"] === "eval")!;
    expect(evaluation["sparse"]).toMatchObject({ depth: 1 });
    for (const key of ["ndcg10", "mrr", "acc1", "nonZerosQuery", "nonZerosDoc"]) expect(Number.isFinite(evaluation["sparse"][key]), key).toBe(true);
    expect(evaluation["sparse"].nonZerosQuery).toBeGreaterThan(0);
  }, 1_200_000);

  it("trains the late head alone: only late.proj.w gets a gradient, weight × the mean late InfoNCE of its steps through the fixed encoder", async () => {
    await initBackend("wasm");
    const arch = microArchitecture({ vocabSize: 60, heads: 4, maxLength: 32, matryoshkaDims: [64, 384], depths: { easy: 1, medium: 3, hard: 6 }, lateHead: { dim: 4 } });
    const params = paramsFromWeights(arch, initWeights(arch, 5));
    const rand = mulberry32(17);
    const words = (n: number) => Array.from({ length: n }, () => randomWord(rand)).join(" ");
    const pairs = Array.from({ length: 8 }, (_, i) => ({ query: `q${i} ${words(3 + (i % 5))}`, doc: `d${i} ${words(4 + (i % 7))}`, source: "wordnet" as const, kind: "title->text" }));
    const batch = new PairBatcher(pairs, wordTokenizer(60), { batchSize: 8, maxQueryLength: 16, maxDocLength: 16, seed: 3 }).encode([0, 1, 2, 3, 4, 5, 6, 7]);
    const lossOptions = { temperature: 0.05, symmetric: true, dims: arch.matryoshkaDims, steps: [1, 3, 6], stepWeights: [1, 1, 1], documentSteps: [1] };
    const late = { weight: 0.5, temperature: 0.1, steps: [3, 6] };
    const got = microBatchGradients(params, lossOptions, [batch], { headsOnly: true, late });
    expect(weightNamesIn(got.gradSums)).toEqual(["late.proj.w"]);

    // By hand: the encoder outside the tape, documents at step 1 (documentSteps), queries at steps 3 and 6.
    const q = batch.queries;
    const d = batch.docs;
    const [qIds, qMask] = [tf.tensor2d(q.ids, [q.rows, q.length], "int32"), tf.tensor2d(q.mask, [q.rows, q.length])];
    const [dIds, dMask] = [tf.tensor2d(d.ids, [d.rows, d.length], "int32"), tf.tensor2d(d.mask, [d.rows, d.length])];
    const qStates = encode(params, qIds, qMask, 6).states;
    const dStates = encode(params, dIds, dMask, 1).states;
    const { value, grads } = tf.variableGrads(() => {
      const perStep = late.steps.map((k) => lateLoss(params, qStates[k - 1]!, qMask, dStates[0]!, dMask, late.temperature));
      return tf.mul(tf.div(tf.addN(perStep), perStep.length), late.weight) as tf.Scalar;
    }, [params["late.proj.w"]]);
    expect(got.losses[0]).toBeCloseTo(value.dataSync()[0]!, 5);
    expect(got.objectives[0]!["late"]).toBeCloseTo(value.dataSync()[0]! / late.weight, 5);
    const want = grads[params["late.proj.w"].name]!.dataSync();
    const have = got.gradSums["late.proj.w"].dataSync();
    let scale = 0;
    for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < want.length; i++) expect(Math.abs(have[i]! - want[i]!) / scale).toBeLessThan(1e-5);
    tf.dispose([qIds, qMask, dIds, dMask, ...qStates, ...dStates, value, ...Object.values(grads), ...Object.values(got.gradSums)]);
    Object.values(params).forEach((v) => v.dispose());
  });

  it("the config names what a heads-only run needs", async () => {
    const raw = JSON.parse(await readFile(path.join(here, "../configs/tiny.json"), "utf8")) as Record<string, any>;
    const variant = (top: Record<string, unknown>, training: Record<string, unknown>, arch: Record<string, unknown> = { sparseHead: true }) => ({
      ...raw,
      ...top,
      arch: { ...raw["arch"], ...arch },
      training: { ...raw["training"], trainHeadsOnly: true, ...training },
    });
    const problems = (value: unknown): string => {
      try {
        parseConfig(value);
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect(problems(variant({}, { objectives: { sparse: SPARSE } }))).toMatch(/needs initFrom: the trained encoder the heads are added to\s+→ at training\.trainHeadsOnly/);
    expect(problems(variant({ initFrom: "base.taesr" }, {}))).toMatch(/needs objectives\.sparse or objectives\.late/);
    expect(problems(variant({ initFrom: "base.taesr" }, { objectives: { sparse: SPARSE, subspaces: { weight: 0.1 } } }))).toMatch(/trainHeadsOnly keeps fixed/);
    expect(problems(variant({ initFrom: "base.taesr" }, { objectives: { sparse: SPARSE } }))).toBe("");
  });
});

describe("validation of the sparse head", () => {
  beforeAll(async () => {
    await initBackend("auto");
  });

  it("ranks each held-out query's document by its term weights' dot product, as a brute-force ranking does", () => {
    const arch = microArchitecture({ sparseHead: true });
    const w = initWeights(arch, 5);
    w["embed.token"] = randomArray(6, arch.vocabSize * arch.hidden, 0.5);
    w["sparse.ln.gamma"] = Float32Array.from(randomArray(7, arch.hidden, 0.5), (v) => 1 + v);
    // Biases around −1: some terms are off in every text, so the sparse lists are really sparse.
    w["sparse.bias"] = Float32Array.from(randomArray(8, arch.vocabSize, 1), (v) => v - 1);
    const params = paramsFromWeights(arch, w);
    // Texts are token ids written out ("3 17 9"), so the tokenizer is exact and ids stay inside the micro vocabulary.
    const tokenizer = { padId: 0, encode: (text: string, { maxLength }: { maxLength: number }) => text.split(" ").map(Number).slice(0, maxLength) };
    const text = (seed: number, length: number) => Array.from(randomArray(seed, length, 1), (v) => 1 + Math.floor(((v + 1) / 2) * (arch.vocabSize - 1))).join(" ");
    const pairs = Array.from({ length: 14 }, (_, i) => ({ query: text(100 + i, 2 + (i % 4)), doc: text(200 + i, 3 + (i % 5)), source: "debian" as const, kind: "test" }));
    const depth = 2;
    const result = validate(params, pairs, tokenizer, { depths: [1, 2], dim: 64, maxQueryLength: 8, maxDocLength: 8, headDepth: depth, chunk: 4 });

    const weightsOf = (texts: string[]): Float32Array[] =>
      texts.map((t) =>
        tf.tidy(() => {
          const ids = tokenizer.encode(t, { maxLength: 8 });
          const mask = tf.ones([1, ids.length]) as tf.Tensor2D;
          const { states } = encode(params, tf.tensor2d([ids], [1, ids.length], "int32"), mask, depth);
          return sparseHead(params, states[depth - 1]!, mask).dataSync() as Float32Array;
        }),
      );
    const q = weightsOf(pairs.map((p) => p.query));
    const d = weightsOf(pairs.map((p) => p.doc));
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + v * b[i]!, 0);
    const ranks = q.map((qi, i) => 1 + d.filter((dj, j) => j !== i && dot(qi, dj) > dot(qi, d[i]!)).length);
    const ndcg10 = ranks.reduce((sum, r) => sum + (r <= 10 ? 1 / Math.log2(r + 1) : 0), 0) / ranks.length;
    const nonZeros = (rows: Float32Array[]) => rows.reduce((sum, row) => sum + row.filter((v) => v > 0).length, 0) / rows.length;

    expect(result.sparse!.depth).toBe(depth);
    expect(result.sparse!.ndcg10).toBeCloseTo(ndcg10, 5);
    expect(result.sparse!.acc1).toBeCloseTo(ranks.filter((r) => r === 1).length / ranks.length, 10);
    expect(result.sparse!.nonZerosQuery).toBeCloseTo(nonZeros(q), 10);
    expect(result.sparse!.nonZerosDoc).toBeCloseTo(nonZeros(d), 10);
    // Really sparse, and not empty: the check above compares lists, not all-zero or all-on vectors.
    expect(result.sparse!.nonZerosQuery).toBeGreaterThan(0);
    expect(result.sparse!.nonZerosDoc).toBeLessThan(arch.vocabSize);
  });
});

/**
 * The mlp_mixer and hybrid blocks in training (wasm backend): the tfjs forward equals the exported ONNX graphs
 * (onnxruntime-node; fp32 within 1e-4, int8 cosine ≥ 0.99) and the pure-TS TAESRModel; gradients are right (central
 * finite differences on the mixer's weights, checkpointed = plain); padding is invisible; the checkpoint file keeps
 * the block; and the real trainer on the tiny config lowers the loss and exports an artifact that records its block.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { weightNames, type BlockArchitecture, type TaesrArchitecture, type WeightName } from "../../src/model/spec.js";
import { TAESRModel } from "../../src/model/taesr-model.js";
import { initBackend } from "../src/backend.js";
import { loadVariant, padBatch, rowCosine, runSteps, type PaddedBatch } from "../src/export/onnx-runner.js";
import { loadArtifactWeights } from "../src/model/artifact-weights.js";
import { forward } from "../src/model/forward.js";
import { decodeParams, encodeParams, paramsFromWeights, type TaesrParams } from "../src/model/params.js";
import { train } from "../src/train/trainer.js";
import { writeTinyConfig } from "./support/tiny-config.js";
import { exportTestArtifact, maxAbsDiff, nontrivialWeights, tfForward } from "./support/export-parity.js";
import { expectGradientsMatch } from "./support/finite-differences.js";
import { randomSequences } from "./support/random.js";

const BLOCKS = ["mlp_mixer", "hybrid"] as const satisfies readonly BlockArchitecture[];
const STEPS = 6;

function archFor(block: BlockArchitecture): TaesrArchitecture {
  return {
    block,
    vocabSize: 300,
    hidden: 32,
    heads: 4,
    ffn: 64,
    maxLength: 20,
    outputDim: 384,
    matryoshkaDims: [64, 128, 256, 384],
    depths: { easy: 1, medium: 3, hard: 6 },
  };
}

/** A loss touching every step's embedding non-linearly (as in model.test.ts). */
function lossOf(params: TaesrParams, batch: PaddedBatch, checkpoint: boolean): tf.Scalar {
  const ids = tf.tensor2d(batch.ids, [batch.batch, batch.seq], "int32");
  const mask = tf.tensor2d(batch.mask, [batch.batch, batch.seq], "float32");
  const es = forward(params, ids, mask, 3, undefined, { checkpoint });
  return tf.addN(es.map((e, i) => tf.sum(tf.mul(tf.sin(e), i + 1)))) as tf.Scalar;
}

function gradients(params: TaesrParams, arch: TaesrArchitecture, batch: PaddedBatch, checkpoint: boolean): Record<WeightName, Float32Array> {
  const { value, grads } = tf.variableGrads(() => lossOf(params, batch, checkpoint));
  value.dispose();
  const out = {} as Record<WeightName, Float32Array>;
  for (const n of weightNames(arch)) out[n] = grads[params[n].name]!.dataSync() as Float32Array;
  Object.values(grads).forEach((g) => g.dispose());
  return out;
}

let tmp: string;
beforeAll(async () => {
  await initBackend("wasm");
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-blocks-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.each(BLOCKS)("%s block (tfjs, wasm)", (block) => {
  const arch = archFor(block);
  const weights = nontrivialWeights(arch, 11);
  const batch = padBatch(randomSequences(7, [17, 9, 3, 12], arch.vocabSize));
  let params: TaesrParams;
  let dir: string;

  beforeAll(async () => {
    params = paramsFromWeights(arch, weights);
    ({ dir } = await exportTestArtifact({ outDir: tmp, name: `taesr-${block.replace("_", "-")}`, arch, weights }));
  });
  afterAll(() => Object.values(params ?? {}).forEach((v) => v.dispose()));

  it("has exactly its block's variables", () => {
    expect(Object.keys(params).sort()).toEqual([...weightNames(arch)].sort());
  });

  it("exported fp32 graphs match tfjs within 1e-4 at every step, and int8 agrees (cosine ≥ 0.99)", async () => {
    const reference = tfForward(params, batch, STEPS);
    const [fp32, int8] = await Promise.all([loadVariant(dir, "fp32"), loadVariant(dir, "int8")]);
    const [ef, eq] = await Promise.all([runSteps(fp32, batch, STEPS), runSteps(int8, batch, STEPS)]);
    const diffs = ef.map((e, s) => maxAbsDiff(e, reference[s]!));
    console.log(`${block}: fp32 max |ONNX − tfjs| per step ${diffs.map((d) => d.toExponential(2)).join(", ")}`);
    for (const d of diffs) expect(d).toBeLessThanOrEqual(1e-4);
    const cosines = ef.map((f, s) => Array.from({ length: batch.batch }, (_, r) => rowCosine(f, eq[s]!, r, arch.outputDim)));
    for (const c of cosines.flat()) expect(c).toBeGreaterThanOrEqual(0.99);
    // Another sequence length through the same graphs (the mixer weights are sliced to it).
    const other = padBatch(randomSequences(3, [5, 20], arch.vocabSize));
    const onnxOther = await runSteps(fp32, other, STEPS);
    const tfOther = tfForward(params, other, STEPS);
    for (let s = 0; s < STEPS; s++) expect(maxAbsDiff(onnxOther[s]!, tfOther[s]!)).toBeLessThanOrEqual(1e-4);
  });

  it("int8w (int8 weights, float arithmetic; the mixer's sliced to the input's length) stays within cosine 0.999 of fp32", async () => {
    const [fp32, int8w] = await Promise.all([loadVariant(dir, "fp32"), loadVariant(dir, "int8w")]);
    for (const input of [batch, padBatch(randomSequences(3, [5, 20], arch.vocabSize))]) {
      const [ef, ew] = await Promise.all([runSteps(fp32, input, STEPS), runSteps(int8w, input, STEPS)]);
      for (let s = 0; s < STEPS; s++) for (let r = 0; r < input.batch; r++) expect(rowCosine(ef[s]!, ew[s]!, r, arch.outputDim)).toBeGreaterThanOrEqual(0.999);
    }
  });

  it("equals TAESRModel (the pure-TS forward) at every step", () => {
    const reference = tfForward(params, batch, STEPS);
    const model = new TAESRModel({ ...arch, earlyExitEpsilon: 0 }, weights);
    const rows = Array.from({ length: batch.batch }, (_, b) => Array.from(batch.ids.subarray(b * batch.seq, (b + 1) * batch.seq), Number));
    const masks = Array.from({ length: batch.batch }, (_, b) => Array.from(batch.mask.subarray(b * batch.seq, (b + 1) * batch.seq)));
    for (let depth = 1; depth <= STEPS; depth++) {
      const out = model.forward({ inputIds: rows, attentionMask: masks }, { depth, earlyExit: false });
      const flat = new Float32Array(batch.batch * arch.outputDim);
      out.poolerOutput.forEach((e, b) => flat.set(e, b * arch.outputDim));
      expect(maxAbsDiff(flat, reference[depth - 1]!)).toBeLessThanOrEqual(1e-4);
    }
  });

  it("ignores padding: extra padded positions leave every step's embedding unchanged", () => {
    const text = randomSequences(5, [6], arch.vocabSize)[0]!;
    const short = tfForward(params, padBatch([text]), STEPS);
    for (const extra of [3, arch.maxLength - text.length]) {
      const long = tfForward(params, padBatch([text, new Array<number>(text.length + extra).fill(1)]), STEPS);
      for (let s = 0; s < STEPS; s++) expect(maxAbsDiff(long[s]!.subarray(0, arch.outputDim), short[s]!)).toBeLessThanOrEqual(1e-5);
    }
  });

  it("has right gradients: central finite differences on the mixer (and attention), checkpointed = plain", () => {
    const small = padBatch(randomSequences(9, [6, 4], arch.vocabSize));
    const grads = gradients(params, arch, small, false);
    for (const n of weightNames(arch)) {
      expect(grads[n].every(Number.isFinite), n).toBe(true);
      expect(grads[n].some((g) => g !== 0), n).toBe(true);
    }
    // Beyond the batch's length T = 6 the mixer's rows of Wt1 (and columns of Wt2) are never used: zero gradient.
    expect(grads["block.mix.w1"].subarray(6 * arch.maxLength).every((g) => g === 0)).toBe(true);
    const L = arch.maxLength;
    const probes: Array<[WeightName, number]> = [
      ["block.mix.w1", 2 * L + 5],
      ["block.mix.b1", 7],
      ["block.mix.w2", 3 * L + 4],
      ["block.mix.b2", 2],
      ["block.mix.ln.gamma", 3],
      ["embed.position", 40],
      ["block.ffn.w1", 50],
      ...(block === "hybrid" ? ([["block.attn.wq", 17]] as Array<[WeightName, number]>) : []),
    ];
    // float32 loss: a step of 1e-3 leaves too few significant digits in the difference; 1e-2 is still well inside the
    // loss's smooth range.
    const eps = 1e-2;
    expectGradientsMatch(params, probes, () => tf.tidy(() => lossOf(params, small, false).dataSync()[0]!), grads, eps);
    const checkpointed = gradients(params, arch, small, true);
    for (const n of weightNames(arch)) {
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < grads[n].length; i++) {
        diff = Math.max(diff, Math.abs(checkpointed[n][i]! - grads[n][i]!));
        scale = Math.max(scale, Math.abs(grads[n][i]!));
      }
      expect(diff / Math.max(scale, 1e-12), n).toBeLessThanOrEqual(1e-5);
    }
  });

  it("round-trips through the checkpoint format and the artifact's fp32 graphs, block included", async () => {
    const decoded = decodeParams(encodeParams(weights, arch, { step: 1 }));
    expect(decoded.architecture.block).toBe(block);
    for (const n of weightNames(arch)) expect(decoded.weights[n]).toEqual(weights[n]);
    const fromArtifact = await loadArtifactWeights(dir);
    expect(fromArtifact.architecture.block).toBe(block);
    for (const n of weightNames(arch)) expect(fromArtifact.weights[n]).toEqual(weights[n]);
    expect(() => paramsFromWeights({ ...arch, block: "self_attention" }, weights)).toThrow(/do not belong to a self_attention model/);
  });
});

describe("training each block (tiny config, wasm)", () => {
  function tinyConfig(name: string, block: BlockArchitecture, training: Record<string, unknown>): Promise<string> {
    return writeTinyConfig(tmp, name, { top: { name }, arch: { block }, training });
  }


  it.each(BLOCKS)("%s: the loss goes down, and the exported artifact records the block and reads back", async (block) => {
    // Short and complete (steps = 40): the run ends with a validation and an export.
    const config = await tinyConfig(`learn-${block}`, block, { steps: 40, warmupSteps: 4, logEvery: 10 });
    const result = await train({ config, runDir: path.join(tmp, `learn-${block}`), progress: false, log: () => {} });
    expect(result.stoppedBy).toBe("done");
    const h = result.lossHistory;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    console.log(`${block}: loss first 5 ${mean(h.slice(0, 5)).toFixed(3)} → last 5 ${mean(h.slice(-5)).toFixed(3)}`);
    expect(h.every(Number.isFinite)).toBe(true);
    expect(mean(h.slice(-5))).toBeLessThan(mean(h.slice(0, 5)) - 0.1);
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8")) as { architecture: TaesrArchitecture };
    expect(manifest.architecture.block).toBe(block);
    const { weights, architecture } = await loadArtifactWeights(result.exportDir!);
    expect(Object.keys(weights).sort()).toEqual([...weightNames(architecture)].sort());
  });
});

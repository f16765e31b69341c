/**
 * Parity proof: the hand-built ONNX graphs compute what the TensorFlow.js model computes.
 *
 * A small model with non-trivial weights (LN gammas/betas and biases perturbed too) is exported; onnxruntime-node runs
 * embed → step ×6 composed as the runtime does (h₀ = 0) on a padded batch of different lengths, and every step's
 * embedding is compared with tfjs `forward` on the wasm backend: fp32 within 1e-4, int8 with per-row cosine ≥ 0.99, int4
 * (its 4-bit token table before the int8 step) ≥ 0.98.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRAPH_IO } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import { loadVariant, padBatch, rowCosine, runSteps, variantAgreement, type OnnxTaesr } from "../src/export/onnx-runner.js";
import { paramsFromWeights, type TaesrParams } from "../src/model/params.js";
import { tinyArchitecture } from "./support/architectures.js";
import { exportTestArtifact, maxAbsDiff, nontrivialWeights, tfForward } from "./support/export-parity.js";
import { randomSequences } from "./support/random.js";

const ARCH = tinyArchitecture(500);
const STEPS = 6;

/** Token sequences of different lengths (the longest fills the batch; the others are padded). */
const sequences = (seed: number, lengths: number[]): number[][] => randomSequences(seed, lengths, ARCH.vocabSize);

describe("ONNX export parity with the TensorFlow.js model", () => {
  let tmp: string;
  let dir: string;
  let params: TaesrParams;
  let fp32: OnnxTaesr;
  let int8: OnnxTaesr;
  let int4: OnnxTaesr;
  const batch = padBatch(sequences(7, [17, 9, 3, 12]));

  beforeAll(async () => {
    await initBackend("wasm");
    // Noise on every tensor, so no LayerNorm is the identity and no bias is zero.
    const weights = nontrivialWeights(ARCH, 11);
    params = paramsFromWeights(ARCH, weights);
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-parity-"));
    ({ dir } = await exportTestArtifact({ outDir: tmp, name: "taesr-test", arch: ARCH, weights }));
    [fp32, int8, int4] = await Promise.all([loadVariant(dir, "fp32"), loadVariant(dir, "int8"), loadVariant(dir, "int4")]);
  });

  afterAll(async () => {
    Object.values(params ?? {}).forEach((v) => v.dispose());
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("declares the graph inputs and outputs of spec.ts GRAPH_IO", () => {
    for (const model of [fp32, int8, int4]) {
      expect(model.embed.inputNames).toEqual([...GRAPH_IO.embed.inputs]);
      expect(model.embed.outputNames).toEqual([...GRAPH_IO.embed.outputs]);
      expect(model.step.inputNames).toEqual([...GRAPH_IO.step.inputs]);
      expect(model.step.outputNames).toEqual([...GRAPH_IO.step.outputs]);
    }
  });

  it("fp32 matches tfjs forward within 1e-4 at every step 1..6 (padded batch)", async () => {
    const reference = tfForward(params, batch, STEPS);
    const onnx = await runSteps(fp32, batch, STEPS);
    const diffs = onnx.map((e, s) => maxAbsDiff(e, reference[s]!));
    console.log(`fp32 max |ONNX − tfjs| per step: ${diffs.map((d) => d.toExponential(2)).join(", ")}`);
    for (const d of diffs) expect(d).toBeLessThanOrEqual(1e-4);
  });

  it("keeps batch and sequence dynamic (a different shape runs and still matches)", async () => {
    const other = padBatch(sequences(3, [5, 30]));
    const reference = tfForward(params, other, STEPS);
    const onnx = await runSteps(fp32, other, STEPS);
    for (let s = 0; s < STEPS; s++) expect(maxAbsDiff(onnx[s]!, reference[s]!)).toBeLessThanOrEqual(1e-4);
  });

  it("int8 agrees with fp32: cosine ≥ 0.99 for every row at every step", async () => {
    const [ef, eq] = await Promise.all([runSteps(fp32, batch, STEPS), runSteps(int8, batch, STEPS)]);
    const cosines = ef.map((f, s) => Array.from({ length: batch.batch }, (_, r) => rowCosine(f, eq[s]!, r, ARCH.outputDim)));
    console.log(`int8 vs fp32 min row cosine per step: ${cosines.map((c) => Math.min(...c).toFixed(5)).join(", ")}`);
    for (const c of cosines.flat()) expect(c).toBeGreaterThanOrEqual(0.99);
  });

  it("int4 (4-bit token table, int8 step) agrees with fp32: cosine ≥ 0.98 for every row at every step", async () => {
    const [ef, e4] = await Promise.all([runSteps(fp32, batch, STEPS), runSteps(int4, batch, STEPS)]);
    const cosines = ef.map((f, s) => Array.from({ length: batch.batch }, (_, r) => rowCosine(f, e4[s]!, r, ARCH.outputDim)));
    console.log(`int4 vs fp32 min row cosine per step: ${cosines.map((c) => Math.min(...c).toFixed(5)).join(", ")}`);
    for (const c of cosines.flat()) expect(c).toBeGreaterThanOrEqual(0.98);
  });

  it("variantAgreement reports the same check for tokenised inputs (the helper for trained artifacts)", async () => {
    const report = await variantAgreement(dir, sequences(5, [4, 11, 20]), 3, [64, 128]);
    expect(report.rows).toBe(3);
    expect(report.perStep).toHaveLength(3);
    for (const s of report.perStep) {
      expect(s.minCosine).toBeGreaterThanOrEqual(0.99);
      expect(s.byPrefix[64]!.min).toBeGreaterThanOrEqual(0.98);
    }
  });
});

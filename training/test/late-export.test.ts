/**
 * Parity of the late-interaction head across its three implementations: tfjs (training/src/model/late-head.ts), the
 * exported late.onnx on onnxruntime-node (fp32 within 1e-5; int8 by token-vector cosine) and the pure-TypeScript
 * TAESRModel.tokenVectors reading its weights back from the fp32 graphs. Also: the manifest lists the late graph per
 * variant (int4 sharing int8's), validates, and refuses a late graph without the head or the head without its graph.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/manifest.js";
import { weightsFromArtifactGraphs } from "../../src/model/onnx-weights.js";
import type { ArtifactManifest } from "../../src/model/spec.js";
import { TAESRModel } from "../../src/model/taesr-model.js";
import { padBatch } from "../src/export/onnx-runner.js";
import { loadArtifactWeights } from "../src/model/artifact-weights.js";
import { lateTokenVectors } from "../src/model/late-head.js";
import { tinyArchitecture } from "./support/architectures.js";
import { modelRows, nontrivialWeights, runHeadGraph, useHeadParity } from "./support/export-parity.js";
import { randomSequences } from "./support/random.js";

const DIM = 24;
const ARCH = tinyArchitecture(300, { lateHead: { dim: DIM } });
const STEPS = 3;

describe("late head export parity", () => {
  const lengths = [17, 9, 3, 12];
  const batch = padBatch(randomSequences(7, lengths, ARCH.vocabSize));
  const B = batch.batch;
  const T = batch.seq;
  /** The exported artifact; tfjs's h after STEPS steps [B,T,H] and the head's token vectors [B,T,DIM] (reference). */
  const parity = useHeadParity({
    name: "taesr-late-test",
    arch: ARCH,
    // Noise on every weight (the token table's larger), so the output LayerNorm's γ/β are not the identity.
    weights: () => nontrivialWeights(ARCH, 11, { tokenAmplitude: 0.15 }),
    batch,
    steps: STEPS,
    head: (params, h) => lateTokenVectors(params, h),
  });

  const runLate = (rel: string): Promise<Float32Array> => runHeadGraph(path.join(parity.dir, rel), "late", parity.h, batch, ARCH.hidden, [B, T, DIM]);

  /** Calls f(b, t, offset) for every real token position. */
  const eachToken = (f: (b: number, t: number, at: number) => void) => {
    for (let b = 0; b < B; b++) for (let t = 0; t < lengths[b]!; t++) f(b, t, (b * T + t) * DIM);
  };

  it("the manifest lists a late graph per variant (int4 shares int8's, int8w has its own), validates, and is checked both ways", () => {
    const { manifest } = parity;
    expect(manifest.architecture.lateHead).toEqual({ dim: DIM });
    expect(manifest.variants.fp32.late).toBe("fp32/late.onnx");
    expect(manifest.variants.int8.late).toBe("int8/late.onnx");
    expect(manifest.variants.int4?.late).toBe("int8/late.onnx");
    expect(manifest.variants.int8w?.late).toBe("int8w/late.onnx");
    expect(parseManifest(JSON.parse(JSON.stringify(manifest)))).toEqual(manifest);
    const noGraph = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete noGraph.variants.int8.late;
    expect(() => parseManifest(noGraph)).toThrow(/late-interaction head but the variant lists no late graph/);
    const noHead = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete noHead.architecture.lateHead;
    expect(() => parseManifest(noHead)).toThrow(/a late graph without architecture\.lateHead/);
    const unlisted = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete unlisted.files["fp32/late.onnx"];
    expect(() => parseManifest(unlisted)).toThrow(/"fp32\/late\.onnx" is not listed in files/);
    const badDim = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    badDim.architecture.lateHead = { dim: 0 };
    expect(() => parseManifest(badDim)).toThrow(/lateHead/);
  });

  it("fp32 late.onnx matches tfjs within 1e-5 on real tokens, with unit rows, and zeroes padding rows", async () => {
    const { reference } = parity;
    const onnx = await runLate("fp32/late.onnx");
    let diff = 0;
    eachToken((_b, _t, at) => {
      let norm = 0;
      for (let j = 0; j < DIM; j++) {
        diff = Math.max(diff, Math.abs(onnx[at + j]! - reference[at + j]!));
        norm += onnx[at + j]! ** 2;
      }
      expect(Math.sqrt(norm)).toBeCloseTo(1, 5);
    });
    console.log(`late fp32 max |ONNX − tfjs| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-5);
    for (let b = 0; b < B; b++) for (let t = lengths[b]!; t < T; t++) for (let j = 0; j < DIM; j++) expect(Math.abs(onnx[(b * T + t) * DIM + j]!)).toBe(0);
  });

  it("TAESRModel.tokenVectors (weights read back from the fp32 graphs, as initFrom does) matches tfjs within 1e-5", async () => {
    const { dir, weights, reference } = parity;
    const read = async (rel: string) => new Uint8Array(await readFile(path.join(dir, rel)));
    const back = weightsFromArtifactGraphs(await read("fp32/embed.onnx"), await read("fp32/step.onnx"), ARCH, undefined, await read("fp32/late.onnx"));
    expect(back["late.proj.w"]).toEqual(weights["late.proj.w"]);
    expect(() => weightsFromArtifactGraphs(new Uint8Array(0), new Uint8Array(0), ARCH)).toThrow();
    expect((await loadArtifactWeights(dir)).weights["late.proj.w"]).toEqual(weights["late.proj.w"]);
    const model = new TAESRModel(ARCH, back);
    const { inputIds: rows, attentionMask: masks } = modelRows(batch);
    const out = model.forward({ inputIds: rows, attentionMask: masks }, { depth: STEPS, earlyExit: false });
    let diff = 0;
    for (let b = 0; b < B; b++) {
      const v = model.tokenVectors(out.lastHiddenState[b]!, masks[b]);
      expect(v.count).toBe(lengths[b]);
      expect(v.dims).toBe(DIM);
      for (let t = 0; t < v.count; t++) for (let j = 0; j < DIM; j++) diff = Math.max(diff, Math.abs(v.data[t * DIM + j]! - reference[(b * T + t) * DIM + j]!));
    }
    console.log(`late TAESRModel max |TS − tfjs| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-5);
    const { lateHead: _, ...plain } = ARCH;
    expect(() => new TAESRModel(plain).tokenVectors(out.lastHiddenState[0]!)).toThrow(/no late-interaction head/);
  });

  /** The lowest cosine between a quantised graph's token vectors and fp32's, over every real token. */
  const worstCosine = (f: Float32Array, q: Float32Array): number => {
    let worst = 1;
    eachToken((_b, _t, at) => {
      let d = 0;
      let nf = 0;
      let nq = 0;
      for (let j = 0; j < DIM; j++) {
        d += f[at + j]! * q[at + j]!;
        nf += f[at + j]! ** 2;
        nq += q[at + j]! ** 2;
      }
      worst = Math.min(worst, d / Math.sqrt(nf * nq));
    });
    return worst;
  };

  it("int8 late.onnx agrees with fp32: every real token's vector has cosine ≥ 0.99", async () => {
    const [f, q] = await Promise.all([runLate("fp32/late.onnx"), runLate("int8/late.onnx")]);
    const worst = worstCosine(f, q);
    console.log(`late int8: worst token cosine to fp32 ${worst.toFixed(5)}`);
    expect(worst).toBeGreaterThanOrEqual(0.99);
  });

  it("int8w late.onnx (int8 weights, float arithmetic) is nearer fp32 than int8: worst token cosine ≥ 0.9999", async () => {
    const [f, q, w] = await Promise.all([runLate("fp32/late.onnx"), runLate("int8/late.onnx"), runLate("int8w/late.onnx")]);
    const [worstInt8, worstInt8w] = [worstCosine(f, q), worstCosine(f, w)];
    console.log(`late int8w: worst token cosine to fp32 ${worstInt8w.toFixed(6)} (int8 ${worstInt8.toFixed(6)})`);
    expect(worstInt8w).toBeGreaterThanOrEqual(0.9999);
    expect(worstInt8w).toBeGreaterThan(worstInt8);
  });
});

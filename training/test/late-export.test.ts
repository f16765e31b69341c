/**
 * Parity of the late-interaction head across its three implementations: tfjs (training/src/model/late-head.ts), the
 * exported late.onnx on onnxruntime-node (fp32 within 1e-5; int8 by token-vector cosine) and the pure-TypeScript
 * TAESRModel.tokenVectors reading its weights back from the fp32 graphs. Also: the manifest lists the late graph per
 * variant (int4 sharing int8's), validates, and refuses a late graph without the head or the head without its graph.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/manifest.js";
import { weightsFromArtifactGraphs } from "../../src/model/onnx-weights.js";
import { GRAPH_IO, weightNames, type ArtifactManifest, type TaesrArchitecture } from "../../src/model/spec.js";
import { TAESRModel } from "../../src/model/taesr-model.js";
import { initBackend } from "../src/backend.js";
import { exportArtifact } from "../src/export/artifact.js";
import { padBatch } from "../src/export/onnx-runner.js";
import { loadArtifactWeights } from "../src/model/artifact-weights.js";
import { encode } from "../src/model/forward.js";
import { lateTokenVectors } from "../src/model/late-head.js";
import { initWeights, mulberry32, paramsFromWeights, type TaesrParams, type TaesrWeights } from "../src/model/params.js";

const DIM = 24;
const ARCH: TaesrArchitecture = {
  vocabSize: 300,
  hidden: 64,
  heads: 4,
  ffn: 128,
  maxLength: 32,
  outputDim: 384,
  matryoshkaDims: [64, 128, 256, 384],
  depths: { easy: 1, medium: 3, hard: 6 },
  lateHead: { dim: DIM },
};
const STEPS = 3;

/** Initial weights plus seeded noise, so the output LayerNorm's γ/β are not the identity. */
function nontrivialWeights(seed: number): TaesrWeights {
  const w = initWeights(ARCH, seed);
  const rand = mulberry32(seed + 1000);
  for (const name of weightNames(ARCH)) {
    const amp = name === "embed.token" ? 0.15 : name.endsWith(".gamma") ? 0.3 : name.endsWith(".beta") || /\.b[a-z0-9]*$/.test(name) ? 0.1 : 0.05;
    const a = w[name];
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + amp * (rand() * 2 - 1);
  }
  return w;
}

function sequences(seed: number, lengths: number[]): number[][] {
  const rand = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (ARCH.vocabSize - 1))));
}

describe("late head export parity", () => {
  let tmp: string;
  let dir: string;
  let manifest: ArtifactManifest;
  let params: TaesrParams;
  let weights: TaesrWeights;
  const lengths = [17, 9, 3, 12];
  const batch = padBatch(sequences(7, lengths));
  const B = batch.batch;
  const T = batch.seq;
  /** tfjs: h after STEPS steps [B,T,H] and the head's token vectors [B,T,DIM]. */
  let hT: Float32Array;
  let reference: Float32Array;

  beforeAll(async () => {
    await initBackend("wasm");
    weights = nontrivialWeights(11);
    params = paramsFromWeights(ARCH, weights);
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-late-parity-"));
    ({ dir, manifest } = await exportArtifact({
      outDir: tmp,
      name: "taesr-late-test",
      version: "0.0.1",
      arch: ARCH,
      weights,
      tokenizerJson: { format: "test" },
      router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 24 },
      earlyExitEpsilon: 1e-3,
      training: {},
      eval: {},
    }));
    [hT, reference] = tf.tidy(() => {
      const ids = tf.tensor2d(batch.ids, [B, T], "int32");
      const mask = tf.tensor2d(batch.mask, [B, T], "float32");
      const { states } = encode(params, ids, mask, STEPS);
      const h = states[STEPS - 1]!;
      return [h.dataSync() as Float32Array, lateTokenVectors(params, h).dataSync() as Float32Array];
    });
  });

  afterAll(async () => {
    Object.values(params ?? {}).forEach((v) => v.dispose());
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function runLate(rel: string): Promise<Float32Array> {
    const session = await ort.InferenceSession.create(await readFile(path.join(dir, rel)));
    expect(session.inputNames).toEqual([...GRAPH_IO.late.inputs]);
    expect(session.outputNames).toEqual([...GRAPH_IO.late.outputs]);
    const out = await session.run({
      h: new ort.Tensor("float32", hT, [B, T, ARCH.hidden]),
      attention_mask: new ort.Tensor("float32", batch.mask, [B, T]),
    });
    expect(out["token_vectors"]!.dims).toEqual([B, T, DIM]);
    return Float32Array.from(out["token_vectors"]!.data as Float32Array);
  }

  /** Calls f(b, t, offset) for every real token position. */
  const eachToken = (f: (b: number, t: number, at: number) => void) => {
    for (let b = 0; b < B; b++) for (let t = 0; t < lengths[b]!; t++) f(b, t, (b * T + t) * DIM);
  };

  it("the manifest lists a late graph per variant (int4 shares int8's), validates, and is checked both ways", () => {
    expect(manifest.architecture.lateHead).toEqual({ dim: DIM });
    expect(manifest.variants.fp32.late).toBe("fp32/late.onnx");
    expect(manifest.variants.int8.late).toBe("int8/late.onnx");
    expect(manifest.variants.int4?.late).toBe("int8/late.onnx");
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
    const read = async (rel: string) => new Uint8Array(await readFile(path.join(dir, rel)));
    const back = weightsFromArtifactGraphs(await read("fp32/embed.onnx"), await read("fp32/step.onnx"), ARCH, undefined, await read("fp32/late.onnx"));
    expect(back["late.proj.w"]).toEqual(weights["late.proj.w"]);
    expect(() => weightsFromArtifactGraphs(new Uint8Array(0), new Uint8Array(0), ARCH)).toThrow();
    expect((await loadArtifactWeights(dir)).weights["late.proj.w"]).toEqual(weights["late.proj.w"]);
    const model = new TAESRModel(ARCH, back);
    const rows = Array.from({ length: B }, (_, b) => batch.ids.subarray(b * T, (b + 1) * T));
    const masks = Array.from({ length: B }, (_, b) => batch.mask.subarray(b * T, (b + 1) * T));
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

  it("int8 late.onnx agrees with fp32: every real token's vector has cosine ≥ 0.99", async () => {
    const [f, q] = await Promise.all([runLate("fp32/late.onnx"), runLate("int8/late.onnx")]);
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
    console.log(`late int8: worst token cosine to fp32 ${worst.toFixed(5)}`);
    expect(worst).toBeGreaterThanOrEqual(0.99);
  });
});

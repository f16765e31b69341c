/**
 * Parity of the sparse head across its three implementations: tfjs (training/src/model/sparse-head.ts), the exported
 * sparse.onnx on onnxruntime-node (fp32 within 1e-4; int8 by row cosine and top-term overlap) and the pure-TypeScript
 * TAESRModel.sparse reading its weights back from the fp32 graphs. Also: the manifest lists the sparse graph per
 * variant, and it validates.
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
import { padBatch, rowCosine } from "../src/export/onnx-runner.js";
import { encode } from "../src/model/forward.js";
import { initWeights, mulberry32, paramsFromWeights, type TaesrParams, type TaesrWeights } from "../src/model/params.js";
import { sparseHead } from "../src/model/sparse-head.js";

const ARCH: TaesrArchitecture = {
  vocabSize: 500,
  hidden: 64,
  heads: 4,
  ffn: 128,
  maxLength: 32,
  outputDim: 384,
  matryoshkaDims: [64, 128, 256, 384],
  depths: { easy: 1, medium: 3, hard: 6 },
  sparseHead: true,
};
const STEPS = 3;

/** Initial weights plus seeded noise; a token table large enough (and a negative bias) that some weights are 0. */
function nontrivialWeights(seed: number): TaesrWeights {
  const w = initWeights(ARCH, seed);
  const rand = mulberry32(seed + 1000);
  for (const name of weightNames(ARCH)) {
    const amp = name === "embed.token" ? 0.15 : name.endsWith(".gamma") ? 0.3 : name.endsWith(".beta") || /(\.b[a-z0-9]*|bias)$/.test(name) ? 0.1 : 0.05;
    const a = w[name];
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + amp * (rand() * 2 - 1) - (name === "sparse.bias" ? 0.5 : 0);
  }
  return w;
}

function sequences(seed: number, lengths: number[]): number[][] {
  const rand = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (ARCH.vocabSize - 1))));
}

describe("sparse head export parity", () => {
  let tmp: string;
  let dir: string;
  let manifest: ArtifactManifest;
  let params: TaesrParams;
  const batch = padBatch(sequences(7, [17, 9, 3, 12]));
  const B = batch.batch;
  const T = batch.seq;
  const V = ARCH.vocabSize;
  /** tfjs: h after STEPS steps [B,T,H] and the head's weights [B,V]. */
  let hT: Float32Array;
  let reference: Float32Array;

  beforeAll(async () => {
    await initBackend("wasm");
    const weights = nontrivialWeights(11);
    params = paramsFromWeights(ARCH, weights);
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-sparse-parity-"));
    ({ dir, manifest } = await exportArtifact({
      outDir: tmp,
      name: "taesr-sparse-test",
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
      return [h.dataSync() as Float32Array, sparseHead(params, h, mask).dataSync() as Float32Array];
    });
  });

  afterAll(async () => {
    Object.values(params ?? {}).forEach((v) => v.dispose());
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  async function runSparse(rel: string): Promise<Float32Array> {
    const session = await ort.InferenceSession.create(await readFile(path.join(dir, rel)));
    expect(session.inputNames).toEqual([...GRAPH_IO.sparse.inputs]);
    expect(session.outputNames).toEqual([...GRAPH_IO.sparse.outputs]);
    const out = await session.run({
      h: new ort.Tensor("float32", hT, [B, T, ARCH.hidden]),
      attention_mask: new ort.Tensor("float32", batch.mask, [B, T]),
    });
    expect(out["sparse_weights"]!.dims).toEqual([B, V]);
    return Float32Array.from(out["sparse_weights"]!.data as Float32Array);
  }

  it("the manifest lists a sparse graph per variant (int4 shares int8's) and validates", () => {
    expect(manifest.variants.fp32.sparse).toBe("fp32/sparse.onnx");
    expect(manifest.variants.int8.sparse).toBe("int8/sparse.onnx");
    expect(manifest.variants.int4?.sparse).toBe("int8/sparse.onnx");
    expect(Object.keys(manifest.files)).toEqual(expect.arrayContaining(["fp32/sparse.onnx", "int8/sparse.onnx"]));
    expect(parseManifest(JSON.parse(JSON.stringify(manifest)))).toEqual(manifest);
    const broken = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete broken.variants.int8.sparse;
    expect(() => parseManifest(broken)).toThrow(/sparse head but the variant lists no sparse graph/);
  });

  it("fp32 sparse.onnx matches tfjs within 1e-4; the weights are non-negative, padding-free and partly zero", async () => {
    const onnx = await runSparse("fp32/sparse.onnx");
    let diff = 0;
    let zeros = 0;
    for (let i = 0; i < onnx.length; i++) {
      diff = Math.max(diff, Math.abs(onnx[i]! - reference[i]!));
      expect(onnx[i]!).toBeGreaterThanOrEqual(0);
      if (reference[i] === 0) zeros++;
    }
    console.log(`sparse fp32 max |ONNX − tfjs| ${diff.toExponential(2)}; ${zeros} of ${onnx.length} weights are 0`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(zeros).toBeGreaterThan(0);
    expect(zeros).toBeLessThan(onnx.length);
  });

  it("TAESRModel.sparse (weights read back from the fp32 graphs) matches tfjs within 1e-4", async () => {
    const read = async (rel: string) => new Uint8Array(await readFile(path.join(dir, rel)));
    const weights = weightsFromArtifactGraphs(await read("fp32/embed.onnx"), await read("fp32/step.onnx"), ARCH, await read("fp32/sparse.onnx"));
    const model = new TAESRModel({ ...ARCH, sparseHead: true }, weights);
    const rows = Array.from({ length: B }, (_, b) => batch.ids.subarray(b * T, (b + 1) * T));
    const masks = Array.from({ length: B }, (_, b) => batch.mask.subarray(b * T, (b + 1) * T));
    const out = model.forward({ inputIds: rows, attentionMask: masks }, { depth: STEPS, earlyExit: false });
    let diff = 0;
    for (let b = 0; b < B; b++) {
      const w = model.sparse(out.lastHiddenState[b]!, masks[b]);
      for (let v = 0; v < V; v++) diff = Math.max(diff, Math.abs(w[v]! - reference[b * V + v]!));
    }
    console.log(`sparse TAESRModel max |TS − tfjs| ${diff.toExponential(2)}`);
    expect(diff).toBeLessThanOrEqual(1e-4);
    expect(() => new TAESRModel({ ...ARCH, sparseHead: undefined }, undefined).sparse(out.lastHiddenState[0]!)).toThrow(/no sparse head/);
  });

  it("int8 sparse.onnx agrees with fp32: row cosine ≥ 0.99 and most of the top 20 terms shared", async () => {
    const [f, q] = await Promise.all([runSparse("fp32/sparse.onnx"), runSparse("int8/sparse.onnx")]);
    const top = (w: Float32Array, b: number) =>
      new Set(
        Array.from(w.subarray(b * V, (b + 1) * V))
          .map((x, v) => [x, v] as const)
          .sort((a, c) => c[0] - a[0])
          .slice(0, 20)
          .map(([, v]) => v),
      );
    for (let b = 0; b < B; b++) {
      const cos = rowCosine(f, q, b, V);
      const shared = [...top(f, b)].filter((v) => top(q, b).has(v)).length;
      console.log(`sparse int8 row ${b}: cosine ${cos.toFixed(5)}, top-20 shared ${shared}`);
      expect(cos).toBeGreaterThanOrEqual(0.99);
      expect(shared).toBeGreaterThanOrEqual(15);
    }
  });
});

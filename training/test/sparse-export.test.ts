/**
 * Parity of the sparse head across its three implementations: tfjs (training/src/model/sparse-head.ts), the exported
 * sparse.onnx on onnxruntime-node (fp32 within 1e-4; int8 by row cosine and top-term overlap) and the pure-TypeScript
 * TAESRModel.sparse reading its weights back from the fp32 graphs. Also: the manifest lists the sparse graph per
 * variant, and it validates.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/manifest.js";
import { weightsFromArtifactGraphs } from "../../src/model/onnx-weights.js";
import type { ArtifactManifest } from "../../src/model/spec.js";
import { TAESRModel } from "../../src/model/taesr-model.js";
import { padBatch, rowCosine } from "../src/export/onnx-runner.js";
import { sparseHead } from "../src/model/sparse-head.js";
import { tinyArchitecture } from "./support/architectures.js";
import { modelRows, nontrivialWeights, runHeadGraph, useHeadParity } from "./support/export-parity.js";
import { randomSequences } from "./support/random.js";

const ARCH = tinyArchitecture(500, { sparseHead: true });
const STEPS = 3;

describe("sparse head export parity", () => {
  const batch = padBatch(randomSequences(7, [17, 9, 3, 12], ARCH.vocabSize));
  const B = batch.batch;
  const V = ARCH.vocabSize;
  /** The exported artifact; tfjs's h after STEPS steps [B,T,H] and the head's weights [B,V] (reference). */
  const parity = useHeadParity({
    name: "taesr-sparse-test",
    arch: ARCH,
    // A token table large enough (and a negative bias) that some weights are 0.
    weights: () => nontrivialWeights(ARCH, 11, { tokenAmplitude: 0.15, shift: { "sparse.bias": 0.5 } }),
    batch,
    steps: STEPS,
    head: sparseHead,
  });

  const runSparse = (rel: string): Promise<Float32Array> => runHeadGraph(path.join(parity.dir, rel), "sparse", parity.h, batch, ARCH.hidden, [B, V]);

  it("the manifest lists a sparse graph per variant (int4 shares int8's) and validates", () => {
    const { manifest } = parity;
    expect(manifest.variants.fp32.sparse).toBe("fp32/sparse.onnx");
    expect(manifest.variants.int8.sparse).toBe("int8/sparse.onnx");
    expect(manifest.variants.int4?.sparse).toBe("int8/sparse.onnx");
    // int8w keeps the integer sparse graph: the vocabulary projection in float runs 1.8× slower on WASM.
    expect(manifest.variants.int8w?.sparse).toBe("int8/sparse.onnx");
    expect(Object.keys(manifest.files)).toEqual(expect.arrayContaining(["fp32/sparse.onnx", "int8/sparse.onnx"]));
    expect(parseManifest(JSON.parse(JSON.stringify(manifest)))).toEqual(manifest);
    const broken = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete broken.variants.int8.sparse;
    expect(() => parseManifest(broken)).toThrow(/sparse head but the variant lists no sparse graph/);
  });

  it("fp32 sparse.onnx matches tfjs within 1e-4; the weights are non-negative, padding-free and partly zero", async () => {
    const { reference } = parity;
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
    const { dir, reference } = parity;
    const read = async (rel: string) => new Uint8Array(await readFile(path.join(dir, rel)));
    const weights = weightsFromArtifactGraphs(await read("fp32/embed.onnx"), await read("fp32/step.onnx"), ARCH, await read("fp32/sparse.onnx"));
    const model = new TAESRModel({ ...ARCH, sparseHead: true }, weights);
    const { inputIds: rows, attentionMask: masks } = modelRows(batch);
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

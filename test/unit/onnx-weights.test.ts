/**
 * Reading weights back out of artifact graphs (src/model/onnx-weights.ts): the bundled artifact's fp32 graphs give every
 * weight of the contract, and re-exporting those weights with the real exporter reproduces the artifact's files byte for
 * byte (sha256 as in its manifest), so nothing is lost or reordered; int8 graphs, wrong architectures, missing weights,
 * float_data tensors and garbage bytes are handled with clear messages.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { defaultArtifactDir } from "../../bench/default-artifact.js";
import { parseManifest } from "../../src/model/manifest.js";
import type { ArtifactManifest } from "../../src/model/spec.js";
import { readOnnxInitializers, weightsFromArtifactGraphs, initializerToFloat32, tokenTableFromEmbedGraph } from "../../src/model/onnx-weights.js";
import { WEIGHT_NAMES, weightShapes } from "../../src/model/spec.js";
import { buildEmbedGraph, buildStepGraph } from "../../training/src/onnx/taesr-graphs.js";
import { ProtoWriter } from "../../training/src/onnx/protobuf.js";

let dir: string;
let manifest: ArtifactManifest;
const graphs: Record<string, Uint8Array> = {};

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

beforeAll(async () => {
  dir = await defaultArtifactDir();
  manifest = parseManifest(await readFile(path.join(dir, "manifest.json"), "utf8"));
  for (const variant of ["fp32", "int8"] as const) {
    // The heads' graphs too, when the bundled model has them: their weights live there, not in embed/step.
    for (const graph of ["embed", "step", "sparse", "late"] as const) {
      const rel = manifest.variants[variant][graph];
      if (rel) graphs[rel] = new Uint8Array(await readFile(path.join(dir, rel)));
    }
  }
});

describe("weightsFromArtifactGraphs on the bundled artifact", () => {
  it("reads every weight with its contract shape, and the exporter rebuilds the identical graphs from them", () => {
    const arch = manifest.architecture;
    const { sparse, late } = manifest.variants.fp32;
    const weights = weightsFromArtifactGraphs(graphs["fp32/embed.onnx"]!, graphs["fp32/step.onnx"]!, arch, sparse ? graphs[sparse] : undefined, late ? graphs[late] : undefined);
    const shapes = weightShapes(arch);
    for (const name of WEIGHT_NAMES) {
      expect(weights[name].length, name).toBe(shapes[name].reduce((p, d) => p * d, 1));
      expect(weights[name].every(Number.isFinite), name).toBe(true);
    }
    // Trained values, not an init: LayerNorm gains moved away from 1.
    expect(weights["block.ln1.gamma"].some((g) => Math.abs(g - 1) > 1e-3)).toBe(true);
    const metadata = { "taesr.name": manifest.name, "taesr.version": manifest.version };
    for (const variant of ["fp32", "int8"] as const) {
      const embed = buildEmbedGraph(arch, weights, variant, { metadata });
      const step = buildStepGraph(arch, weights, variant, { metadata });
      expect(sha256(embed), `${variant}/embed.onnx`).toBe(manifest.files[manifest.variants[variant].embed]!.sha256);
      expect(sha256(step), `${variant}/step.onnx`).toBe(manifest.files[manifest.variants[variant].step]!.sha256);
    }
    // The int4 variant was added to the artifact from these same fp32 graphs (npm run export -- --add-variant int4).
    const int4 = manifest.variants.int4;
    expect(int4, "the bundled artifact has the int4 variant").toBeDefined();
    expect(sha256(buildEmbedGraph(arch, weights, "int4", { metadata })), "int4/embed.onnx").toBe(manifest.files[int4!.embed]!.sha256);
    expect(int4!.step).toBe(manifest.variants.int8.step);
  });

  it("decodes the token table of every variant's embed graph: fp32 exactly, int8 and int4 within their quantisation error", async () => {
    const arch = manifest.architecture;
    const exact = tokenTableFromEmbedGraph(graphs["fp32/embed.onnx"]!, arch);
    const int4Graph = new Uint8Array(await readFile(path.join(dir, manifest.variants.int4!.embed)));
    const relative = (table: Float32Array) => {
      let error = 0;
      let signal = 0;
      table.forEach((v, i) => {
        error += (v - exact[i]!) ** 2;
        signal += exact[i]! ** 2;
      });
      return Math.sqrt(error / signal);
    };
    expect(relative(tokenTableFromEmbedGraph(graphs["int8/embed.onnx"]!, arch))).toBeLessThan(0.02);
    // Measured 0.084 on taesr-edge-small@0.2.0 (4-bit, groups of 32, clipped scales).
    expect(relative(tokenTableFromEmbedGraph(int4Graph, arch))).toBeLessThan(0.1);
    expect(() => tokenTableFromEmbedGraph(graphs["fp32/step.onnx"]!, arch)).toThrow(/holds no token table/);
  });

  it("refuses the int8 graphs, saying they cannot be read back", () => {
    expect(() => weightsFromArtifactGraphs(graphs["int8/embed.onnx"]!, graphs["int8/step.onnx"]!, manifest.architecture)).toThrow(
      /embed\.token is stored quantised .*int8 graphs, whose float weights cannot be read back; use the artifact's fp32 variant/,
    );
  });

  it("names a weight whose shape does not match the architecture", () => {
    const arch = { ...manifest.architecture, vocabSize: manifest.architecture.vocabSize + 1 };
    expect(() => weightsFromArtifactGraphs(graphs["fp32/embed.onnx"]!, graphs["fp32/step.onnx"]!, arch)).toThrow(
      `weight embed.token in embed.onnx has shape [${manifest.architecture.vocabSize},${manifest.architecture.hidden}], ` +
        `the architecture needs [${arch.vocabSize},${arch.hidden}]`,
    );
  });

  it("names a missing weight (the embed graph given twice: no step weights)", () => {
    expect(() => weightsFromArtifactGraphs(graphs["fp32/embed.onnx"]!, graphs["fp32/embed.onnx"]!, manifest.architecture)).toThrow(
      "weight block.ln1.gamma is missing: no initializer of that name in the graphs (expected in step.onnx)",
    );
  });

  it("fails clearly on bytes that are not an ONNX model", () => {
    expect(() => readOnnxInitializers(new TextEncoder().encode('{"not": "onnx"}'), "step.onnx")).toThrow(/step\.onnx/);
    expect(() => readOnnxInitializers(new Uint8Array([0x08, 0x08]), "empty.onnx")).toThrow(/empty\.onnx: no graph/);
    // A truncated real graph: the length of the graph field runs past the end.
    expect(() => readOnnxInitializers(graphs["fp32/step.onnx"]!.subarray(0, 1000), "cut.onnx")).toThrow(/cut\.onnx.*runs past the end/);
  });
});

describe("readOnnxInitializers on other encodings", () => {
  /** A ModelProto with one graph holding the given TensorProto bytes, written with the exporter's protobuf writer. */
  function model(...tensors: Uint8Array[]): Uint8Array {
    const graph = new ProtoWriter();
    graph.string(2, "g");
    for (const t of tensors) graph.message(5, t);
    const m = new ProtoWriter();
    m.int64(1, 8);
    m.message(7, graph.finish());
    return m.finish();
  }

  it("decodes float_data (packed and unpacked) and packed dims, and refuses non-float tensors", () => {
    const packed = new ProtoWriter().packedInt64(1, [2, 2]).int64(2, 1).packedFloat(4, [1, 2, 3, 4]).string(8, "packed").finish();
    const unpacked = new ProtoWriter().repeatedInt64(1, [3]).int64(2, 1).repeatedFloat(4, [0.5, -1, 2]).string(8, "unpacked").finish();
    const ints = new ProtoWriter().repeatedInt64(1, [1]).int64(2, 7).bytes(9, new Uint8Array(8)).string(8, "ints").finish();
    const [a, b, c] = readOnnxInitializers(model(packed, unpacked, ints));
    expect(a).toMatchObject({ name: "packed", dims: [2, 2], dataType: 1 });
    expect([...initializerToFloat32(a!)]).toEqual([1, 2, 3, 4]);
    expect([...initializerToFloat32(b!)]).toEqual([0.5, -1, 2]);
    expect(() => initializerToFloat32(c!)).toThrow("ints: data type INT64, expected FLOAT");
    const short = new ProtoWriter().repeatedInt64(1, [4]).int64(2, 1).bytes(9, new Uint8Array(12)).string(8, "short").finish();
    expect(() => initializerToFloat32(readOnnxInitializers(model(short))[0]!)).toThrow("short: raw_data has 12 bytes, dims [4] need 16");
  });
});

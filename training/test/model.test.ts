/**
 * The TensorFlow.js model: gradients are right on the wasm backend (finite differences, and equal to the cpu backend's),
 * padding does not leak into embeddings, and the wire-format basics of the ONNX encoder.
 */
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEIGHT_NAMES, type TaesrArchitecture, type WeightName } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import { forward } from "../src/model/forward.js";
import { initWeights, mulberry32, paramsFromWeights, type TaesrParams } from "../src/model/params.js";
import { ProtoWriter } from "../src/onnx/protobuf.js";
import { expectGradientsMatch } from "./support/finite-differences.js";

const ARCH: TaesrArchitecture = {
  vocabSize: 50,
  hidden: 16,
  heads: 4,
  ffn: 32,
  maxLength: 12,
  outputDim: 8,
  matryoshkaDims: [4, 8],
  depths: { easy: 1, medium: 2, hard: 3 },
};

function perturbedParams(seed: number): TaesrParams {
  const w = initWeights(ARCH, seed);
  const rand = mulberry32(seed + 1);
  for (const n of WEIGHT_NAMES) for (let i = 0; i < w[n].length; i++) w[n][i] = w[n][i]! + 0.1 * (rand() * 2 - 1);
  return paramsFromWeights(ARCH, w);
}

// Repeated token 2 makes the embedding gradient sum duplicate rows (the ScatterNd path).
const IDS = [
  [1, 2, 3, 2, 0, 0],
  [5, 6, 7, 8, 9, 2],
];
const MASK = [
  [1, 1, 1, 1, 0, 0],
  [1, 1, 1, 1, 1, 1],
];

/** A loss touching every step's embedding non-linearly (deep supervision-like). */
function loss(params: TaesrParams): tf.Scalar {
  const ids = tf.tensor2d(IDS, undefined, "int32");
  const mask = tf.tensor2d(MASK, undefined, "float32");
  const es = forward(params, ids, mask, 3);
  return tf.addN(es.map((e, i) => tf.sum(tf.mul(tf.sin(e), i + 1)))) as tf.Scalar;
}

function gradients(params: TaesrParams): Record<WeightName, Float32Array> {
  const { value, grads } = tf.variableGrads(() => loss(params));
  value.dispose();
  const out = {} as Record<WeightName, Float32Array>;
  for (const n of WEIGHT_NAMES) out[n] = grads[params[n].name]!.dataSync() as Float32Array;
  Object.values(grads).forEach((g) => g.dispose());
  return out;
}

describe("forward/backward on wasm", () => {
  let params: TaesrParams;
  let wasmGrads: Record<WeightName, Float32Array>;

  beforeAll(async () => {
    await initBackend("wasm");
    params = perturbedParams(7);
    wasmGrads = gradients(params);
  });
  afterAll(() => Object.values(params).forEach((v) => v.dispose()));

  it("every parameter gets a finite, non-zero gradient", () => {
    for (const n of WEIGHT_NAMES) {
      expect(wasmGrads[n].every(Number.isFinite), n).toBe(true);
      expect(wasmGrads[n].some((g) => g !== 0), n).toBe(true);
    }
  });

  it("matches central finite differences (embedding rows with duplicates, attention, LN, FFN, projection)", () => {
    const probes: Array<[WeightName, number]> = [
      ["embed.token", 2 * ARCH.hidden + 3], // token 2 appears twice
      ["embed.position", 5],
      ["block.attn.wq", 17],
      ["block.attn.wk", 40],
      ["block.ln1.gamma", 3],
      ["block.ffn.w1", 50],
      ["block.ffn.w2", 9],
      ["out.ln.beta", 1],
      ["out.proj.w", 5],
    ];
    const eps = 1e-3;
    expectGradientsMatch(params, probes, () => tf.tidy(() => loss(params).dataSync()[0]!), wasmGrads, eps);
  });

  it("equals the cpu backend's gradients", async () => {
    await initBackend("cpu");
    const cpuParams = perturbedParams(7);
    const cpuGrads = gradients(cpuParams);
    Object.values(cpuParams).forEach((v) => v.dispose());
    await initBackend("wasm");
    for (const n of WEIGHT_NAMES) {
      let worst = 0;
      for (let i = 0; i < cpuGrads[n].length; i++) worst = Math.max(worst, Math.abs(cpuGrads[n][i]! - wasmGrads[n][i]!));
      expect(worst, n).toBeLessThanOrEqual(1e-3);
    }
  });

  it("ignores padding: extra padded positions leave every step's embedding unchanged", () => {
    const [short, long] = tf.tidy(() => {
      const a = forward(params, tf.tensor2d([[4, 9, 3]], undefined, "int32"), tf.tensor2d([[1, 1, 1]]), 3);
      const b = forward(params, tf.tensor2d([[4, 9, 3, 0, 0, 0, 0]], undefined, "int32"), tf.tensor2d([[1, 1, 1, 0, 0, 0, 0]]), 3);
      return [a.map((e) => e.dataSync()), b.map((e) => e.dataSync())];
    });
    for (let s = 0; s < 3; s++) {
      for (let j = 0; j < ARCH.outputDim; j++) expect(long[s]![j]!).toBeCloseTo(short[s]![j]!, 5);
    }
  });

  it("does not leak tensors across a training-style step", () => {
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => loss(params));
    value.dispose();
    Object.values(grads).forEach((g) => g.dispose());
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe("protobuf writer", () => {
  it("encodes varints, negative int64 and fixed32 floats as protobuf does", () => {
    expect([...new ProtoWriter().varint(300).finish()]).toEqual([0xac, 0x02]);
    expect([...new ProtoWriter().varint(-1).finish()]).toEqual([...new Array<number>(9).fill(0xff), 0x01]);
    // field 2, wire type 5, then 1.0f little-endian
    expect([...new ProtoWriter().float(2, 1).finish()]).toEqual([0x15, 0x00, 0x00, 0x80, 0x3f]);
    // field 1 length-delimited "hi"
    expect([...new ProtoWriter().string(1, "hi").finish()]).toEqual([0x0a, 0x02, 0x68, 0x69]);
  });
});

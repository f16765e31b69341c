/**
 * Gradient checkpointing (forward.ts `{ checkpoint: true }`) on wasm: the same loss and weight gradients as the plain
 * forward pass (at 1 and 6 recursion steps, directly and through microBatchGradients), no leaked tensors, and a lower
 * peak of live tensor bytes during one forward+backward of a training-sized batch.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WEIGHT_NAMES, type TaesrArchitecture, type WeightName } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import type { EncodedBatch, TokenMatrix } from "../src/data/batches.js";
import { forward } from "../src/model/forward.js";
import { initParams, initWeights, mulberry32, paramsFromWeights, type TaesrParams } from "../src/model/params.js";
import { parseConfig } from "../src/train/config.js";
import { microBatchGradients } from "../src/train/micro-batch.js";
import { randomTokenMatrix } from "./support/random.js";
import { peakTensorBuffers } from "./support/wasm-peak.js";

const SMALL: TaesrArchitecture = {
  vocabSize: 50,
  hidden: 16,
  heads: 4,
  ffn: 32,
  maxLength: 12,
  outputDim: 8,
  matryoshkaDims: [4, 8],
  depths: { easy: 1, medium: 3, hard: 6 },
};

/** Initial weights plus noise, so LayerNorm gains/biases are not at 1/0 and every gradient is generic. */
function perturbedParams(arch: TaesrArchitecture, seed: number): TaesrParams {
  const w = initWeights(arch, seed);
  const rand = mulberry32(seed + 1);
  for (const n of WEIGHT_NAMES) for (let i = 0; i < w[n].length; i++) w[n][i] = w[n][i]! + 0.1 * (rand() * 2 - 1);
  return paramsFromWeights(arch, w);
}


/** Deep-supervision-like loss: every step's embedding enters non-linearly with its own weight. */
function lossOf(params: TaesrParams, batch: TokenMatrix, steps: number, checkpoint: boolean): tf.Scalar {
  const ids = tf.tensor2d(batch.ids, [batch.rows, batch.length], "int32");
  const mask = tf.tensor2d(batch.mask, [batch.rows, batch.length], "float32");
  const es = forward(params, ids, mask, steps, undefined, { checkpoint });
  return tf.addN(es.map((e, i) => tf.sum(tf.mul(tf.sin(e), i + 1)))) as tf.Scalar;
}

interface Result {
  loss: number;
  grads: Record<WeightName, Float32Array>;
}

function lossAndGradients(params: TaesrParams, batch: TokenMatrix, steps: number, checkpoint: boolean): Result {
  const { value, grads } = tf.variableGrads(() => lossOf(params, batch, steps, checkpoint));
  const loss = value.dataSync()[0]!;
  value.dispose();
  const out = {} as Record<WeightName, Float32Array>;
  for (const n of WEIGHT_NAMES) out[n] = grads[params[n].name]!.dataSync() as Float32Array;
  Object.values(grads).forEach((g) => g.dispose());
  return { loss, grads: out };
}

/** Largest |a−b| relative to the largest |b| of the tensor (elementwise relative error is meaningless near 0). */
function relativeError(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

function expectSameGradients(got: Record<WeightName, Float32Array>, want: Record<WeightName, Float32Array>): void {
  for (const n of WEIGHT_NAMES) {
    expect(got[n].length, n).toBe(want[n].length);
    expect(relativeError(got[n], want[n]), n).toBeLessThanOrEqual(1e-5);
  }
}

describe("gradient checkpointing", () => {
  let params: TaesrParams;
  const batch = randomTokenMatrix(3, 4, 10, SMALL.vocabSize);

  beforeAll(async () => {
    await initBackend("wasm");
    params = perturbedParams(SMALL, 11);
  });
  afterAll(() => Object.values(params).forEach((v) => v.dispose()));

  for (const steps of [1, 6]) {
    it(`gives the same loss and weight gradients as the plain forward pass at ${steps} step(s)`, () => {
      const plain = lossAndGradients(params, batch, steps, false);
      const checkpointed = lossAndGradients(params, batch, steps, true);
      expect(Math.abs(checkpointed.loss - plain.loss)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(plain.loss)));
      expectSameGradients(checkpointed.grads, plain.grads);
      // The shared weights really receive a gradient through the checkpointed steps (not zeros on both sides).
      for (const n of WEIGHT_NAMES.filter((w) => w.startsWith("block."))) {
        expect(checkpointed.grads[n].some((g) => g !== 0), n).toBe(true);
      }
    });
  }

  it("sums the shared block's gradient over the steps (6 steps differ from 1 step)", () => {
    const one = lossAndGradients(params, batch, 1, true);
    const six = lossAndGradients(params, batch, 6, true);
    expect(relativeError(six.grads["block.ffn.w1"], one.grads["block.ffn.w1"])).toBeGreaterThan(1e-2);
  });

  it("gives microBatchGradients the same gradients with the flag on", () => {
    const batches: EncodedBatch[] = [0, 1].map((i) => ({
      queries: randomTokenMatrix(20 + i, 4, 6, SMALL.vocabSize),
      docs: randomTokenMatrix(30 + i, 4, 12, SMALL.vocabSize),
    }));
    const lossOptions = { temperature: 0.05, symmetric: true, dims: SMALL.matryoshkaDims, steps: [1, 3, 6], stepWeights: [1, 1, 1] };
    const read = (r: ReturnType<typeof microBatchGradients>): Record<WeightName, Float32Array> => {
      const out = {} as Record<WeightName, Float32Array>;
      for (const n of WEIGHT_NAMES) {
        out[n] = r.gradSums[n].dataSync() as Float32Array;
        r.gradSums[n].dispose();
      }
      return out;
    };
    const plain = microBatchGradients(params, lossOptions, batches);
    const checkpointed = microBatchGradients(params, lossOptions, batches, { checkpoint: true });
    checkpointed.losses.forEach((l, i) => expect(Math.abs(l - plain.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, plain.losses[i]!)));
    expectSameGradients(read(checkpointed), read(plain));
  });

  it("leaks no tensors across repeated forward+backward passes", () => {
    lossAndGradients(params, batch, 6, true); // warm-up: any lazily created, cached tensors exist from here on
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      lossAndGradients(params, batch, 6, true);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[1]).toBe(counts[0]);
    expect(counts[2]).toBe(counts[0]);
  });

  it("is off by default in the training config and can be turned on", async () => {
    const tiny = path.join(path.dirname(fileURLToPath(import.meta.url)), "../configs/tiny.json");
    const raw = JSON.parse(await readFile(tiny, "utf8")) as { training: Record<string, unknown> };
    expect(parseConfig(raw).training.gradientCheckpointing).toBe(false);
    expect(parseConfig({ ...raw, training: { ...raw.training, gradientCheckpointing: true } }).training.gradientCheckpointing).toBe(true);
  });

  it("lowers peak memory of one forward+backward (B 32 × T 64, H 128, 6 steps)", async () => {
    const arch: TaesrArchitecture = {
      vocabSize: 8192,
      hidden: 128,
      heads: 4,
      ffn: 256,
      maxLength: 128,
      outputDim: 384,
      matryoshkaDims: [64, 128, 256, 384],
      depths: { easy: 1, medium: 3, hard: 6 },
    };
    const big = initParams(arch, 5);
    const input = randomTokenMatrix(9, 32, 64, arch.vocabSize);
    const pass = (checkpoint: boolean): void => {
      const { value, grads } = tf.variableGrads(() => lossOf(big, input, 6, checkpoint));
      value.dataSync(); // wait for the result like the trainer does
      value.dispose();
      Object.values(grads).forEach((g) => g.dispose());
    };
    // The wasm heap only grows: measured first, the checkpointed pass's figure bounds its own need.
    const peakOf = (checkpoint: boolean) => peakTensorBuffers(() => pass(checkpoint));
    // Timed without the profiler's per-kernel bookkeeping, alternating, as CPU time as well as wall time: the box is
    // shared, and contention inflates wall time unevenly. Reported only; the assertion is about memory.
    const time = { plain: { wall: 0, cpu: 0 }, checkpointed: { wall: 0, cpu: 0 } };
    const timed = (checkpoint: boolean): void => {
      const wall = performance.now();
      const cpu = process.cpuUsage();
      pass(checkpoint);
      const used = process.cpuUsage(cpu);
      const slot = checkpoint ? time.checkpointed : time.plain;
      slot.wall += performance.now() - wall;
      slot.cpu += (used.user + used.system) / 1000;
    };
    try {
      pass(true); // warm-up (kernel set-up, cached constants)
      const checkpointed = await peakOf(true);
      const plain = await peakOf(false);
      for (let i = 0; i < 2; i++) {
        timed(false);
        timed(true);
      }
      const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
      const ms = (t: { wall: number; cpu: number }): string => `${(t.cpu / 2).toFixed(0)} ms CPU / ${(t.wall / 2).toFixed(0)} ms wall`;
      const lower = (a: number, b: number): string => `${((1 - a / b) * 100).toFixed(0)}% lower`;
      console.log(
        `one forward+backward above the params: peak tensor buffers in the wasm heap plain ${mb(plain.buffers)}, ` +
          `checkpointed ${mb(checkpointed.buffers)} (${lower(checkpointed.buffers, plain.buffers)}); tf.profile peakBytes ` +
          `plain ${mb(plain.handles)}, checkpointed ${mb(checkpointed.handles)} (${lower(checkpointed.handles, plain.handles)}); ` +
          `wasm heap size after checkpointed ${mb(checkpointed.heap)}, after plain ${mb(plain.heap)}; time plain ${ms(time.plain)}, checkpointed ` +
          `${ms(time.checkpointed)} (×${(time.checkpointed.cpu / time.plain.cpu).toFixed(2)} CPU, ` +
          `×${(time.checkpointed.wall / time.plain.wall).toFixed(2)} wall)`,
      );
      expect(checkpointed.buffers).toBeLessThan(plain.buffers);
      expect(checkpointed.handles).toBeLessThan(plain.handles);
    } finally {
      Object.values(big).forEach((v) => v.dispose());
    }
  });
});

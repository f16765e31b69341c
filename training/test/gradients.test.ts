/**
 * The hand-registered gradients (src/gradients.ts) against central finite differences, op by op, on wasm — the backend
 * training runs on. Each case maps one small input to a scalar through the op and a fixed random weighting.
 */
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../src/backend.js";
import { GRADIENT_KERNELS } from "../src/gradients.js";
import { mulberry32 } from "../src/model/params.js";

const SHAPE = [2, 3, 4];

function randomTensor(seed: number, shape: number[], offset = 0): tf.Tensor {
  const rand = mulberry32(seed);
  const n = shape.reduce((p, d) => p * d, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rand() * 2 - 1 + offset), shape);
}

// Note: ops returning tensor arrays (split, unstack) hand out the tape's own outputs array; the cases copy before
// reordering, since an in-place reverse() would silently rewire the recorded graph.

/** Σ w ⊙ op(x) with a fixed random w, so every output element's gradient matters. */
function weighted(op: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Scalar {
  return (x) => {
    const y = op(x);
    return tf.sum(tf.mul(y, randomTensor(99, y.shape))) as tf.Scalar;
  };
}

function checkGradient(op: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): void {
  const f = weighted(op);
  const analytic = tf.grad(f)(x).dataSync();
  const base = x.dataSync().slice() as Float32Array;
  // Small enough that a random input rarely sits within eps of a kink (ReLU, clip, max), large enough for float32.
  const eps = 1e-3;
  for (let i = 0; i < base.length; i++) {
    const at = (delta: number): number =>
      tf.tidy(() => {
        const d = base.slice();
        d[i] = d[i]! + delta;
        return f(tf.tensor(d, x.shape)).dataSync()[0]!;
      });
    const numeric = (at(eps) - at(-eps)) / (2 * eps);
    expect(Math.abs(analytic[i]! - numeric), `element ${i}: analytic ${analytic[i]} numeric ${numeric}`).toBeLessThanOrEqual(
      1e-2 * Math.max(1, Math.abs(numeric)),
    );
  }
}

const other = (): tf.Tensor => randomTensor(5, [3, 4]);

const CASES: Record<string, { op: (x: tf.Tensor) => tf.Tensor; positive?: boolean }> = {
  "Add (broadcast)": { op: (x) => tf.add(x, other()) },
  "Add (x is broadcast)": { op: (x) => tf.add(tf.slice(x, [0, 0, 0], [1, 3, 4]), randomTensor(6, [2, 3, 4])) },
  "Sub (broadcast)": { op: (x) => tf.sub(other(), x) },
  "Multiply (broadcast)": { op: (x) => tf.mul(x, other()) },
  "RealDiv": { op: (x) => tf.div(other(), x), positive: true },
  "Maximum/Minimum": { op: (x) => tf.add(tf.maximum(x, 0.1), tf.minimum(x, -0.1)) },
  "SquaredDifference": { op: (x) => tf.squaredDifference(x, other()) },
  "Pow": { op: (x) => tf.pow(x, 3) },
  "AddN": { op: (x) => tf.addN([x, tf.mul(x, 2), x]) },
  "Neg/Square/Sqrt/Rsqrt": { op: (x) => tf.addN([tf.neg(x), tf.square(x), tf.sqrt(x), tf.rsqrt(x)]), positive: true },
  "Reciprocal/Exp/Log/Log1p": { op: (x) => tf.addN([tf.reciprocal(x), tf.exp(x), tf.log(x), tf.log1p(x)]), positive: true },
  "Tanh/Sigmoid/Softplus/Relu/Abs": { op: (x) => tf.addN([tf.tanh(x), tf.sigmoid(x), tf.softplus(x), tf.relu(x), tf.abs(x)]) },
  "Erf/Sin/Cos": { op: (x) => tf.addN([tf.erf(x), tf.sin(x), tf.cos(x)]) },
  "ClipByValue": { op: (x) => tf.clipByValue(x, -0.5, 0.5) },
  "Select (where)": { op: (x) => tf.where(tf.greater(other(), 0), x, tf.mul(x, 3)) },
  "Sum/Mean": { op: (x) => tf.add(tf.sum(x, 1), tf.mean(x, [0, 1])) },
  "Max/Min": { op: (x) => tf.concat([tf.max(x, 2), tf.min(x, 1)], 1) },
  "Softmax": { op: (x) => tf.softmax(x) },
  "logSoftmax": { op: (x) => tf.logSoftmax(x) },
  "Reshape/Transpose/ExpandDims": { op: (x) => tf.expandDims(tf.transpose(tf.reshape(x, [6, 4]), [1, 0]), 1) },
  "Slice/Pad": { op: (x) => tf.pad(tf.slice(x, [0, 1, 1], [2, 2, 2]), [[0, 0], [1, 0], [0, 2]]) },
  "Concat/Split": { op: (x) => tf.concat([...tf.split(x, [1, 3], 2)].reverse(), 2) },
  "Stack/Unstack": { op: (x) => tf.stack([...tf.unstack(x, 1)].reverse(), 0) },
  "Tile": { op: (x) => tf.tile(x, [1, 2, 3]) },
  "BroadcastTo": { op: (x) => tf.broadcastTo(tf.slice(x, [0, 0, 0], [1, 3, 1]), [2, 3, 4]) },
  "Cast": { op: (x) => tf.cast(tf.mul(x, 2), "float32") },
  "BatchMatMul (all transpose flags)": {
    op: (x) => {
      const b = randomTensor(8, [2, 4, 3]);
      const bt = randomTensor(9, [2, 3, 4]);
      return tf.addN([
        tf.matMul(x, b),
        tf.matMul(x, bt, false, true),
        tf.matMul(tf.transpose(x, [0, 2, 1]), bt, true, true),
        tf.matMul(b, x, true, true),
      ].map((t) => tf.sum(t)));
    },
  },
  "GatherV2 (duplicates)": { op: (x) => tf.gather(tf.reshape(x, [6, 4]), tf.tensor1d([0, 5, 0, 2, 5, 5], "int32")) },
};

describe("registered gradients (wasm)", () => {
  beforeAll(async () => {
    await initBackend("wasm");
  });

  it("covers the kernels the model and losses use", () => {
    for (const k of ["BatchMatMul", "GatherV2", "Softmax", "Mean", "Sum", "Sigmoid", "Max", "Concat", "Slice", "Transpose", "Reshape"]) {
      expect(GRADIENT_KERNELS).toContain(k);
    }
  });

  for (const [name, { op, positive }] of Object.entries(CASES)) {
    it(name, () => {
      const x = positive ? tf.add(tf.abs(randomTensor(1, SHAPE)), 0.5) : randomTensor(1, SHAPE);
      checkGradient(op, x);
    });
  }
});

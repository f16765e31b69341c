/**
 * Gradient definitions for the kernels TAESR training uses, registered with the TensorFlow.js engine.
 *
 * Why this file exists: @tensorflow/tfjs-core's Node entry (dist/tf-core.node.js) registers no gradients at all — the
 * union package @tensorflow/tfjs normally imports `tfjs-core/dist/register_all_gradients`, which we do not install, and
 * that ESM tree cannot be loaded by Node directly (extensionless imports). Without this module every tf.grad /
 * variableGrads / optimizer.minimize fails with "gradient function not found for <Kernel>".
 *
 * The maths follows tfjs-core's own gradient configs, with two deliberate differences for the wasm backend:
 * - GatherV2 (axis 0, batchDims 0) accumulates with ScatterNd, because wasm lacks UnsortedSegmentSum;
 * - BatchMatMul transposes explicitly and multiplies untransposed (wasm's transposed matMul paths are ~10× slower).
 * A kernel not listed here fails loudly on the first backward pass; add its gradient here.
 *
 * Importing this module registers everything once (idempotent).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

type Saved = tf.Tensor[];
type Attrs = tf.NamedAttrMap;
type GradMap = Record<string, () => tf.Tensor>;

/** Sums a broadcast gradient back to the shape of the operand it came from. */
function unbroadcast(dy: tf.Tensor, shape: number[]): tf.Tensor {
  const outShape = dy.shape;
  const axes = tf.broadcast_util.getReductionAxes(shape, outShape);
  const reduced = axes.length > 0 ? tf.sum(dy, axes) : dy;
  return tf.reshape(reduced, shape);
}

/** dy with singleton axes reinserted where a reduction removed them, broadcast to x's shape. */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axes: number[]): tf.Tensor {
  const shape = x.shape.slice();
  for (const a of axes) shape[a] = 1;
  return tf.mul(tf.reshape(dy, shape), tf.ones(x.shape, "float32"));
}

function undoPerm(perm: number[]): number[] {
  const out = new Array<number>(perm.length);
  perm.forEach((p, i) => (out[p] = i));
  return out;
}

function swapLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1]!, perm[n - 2]!];
  return tf.transpose(t, perm);
}

const zeroGrad =
  (name: string) =>
  (_dy: tf.Tensor | tf.Tensor[], saved: Saved): GradMap => ({ [name]: () => tf.zerosLike(saved[0]!) });

const unary = (kernelName: string, f: (dy: tf.Tensor, x: tf.Tensor, y: tf.Tensor) => tf.Tensor, useOutput = false): tf.GradConfig => ({
  kernelName,
  inputsToSave: ["x"],
  outputsToSave: useOutput ? [true] : undefined,
  gradFunc: (dy, saved) => {
    const [x, y] = saved as [tf.Tensor, tf.Tensor];
    return { x: () => f(dy as tf.Tensor, x, y) };
  },
});

const binary = (
  kernelName: string,
  da: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  db: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): tf.GradConfig => ({
  kernelName,
  inputsToSave: ["a", "b"],
  gradFunc: (dy, saved) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const g = dy as tf.Tensor;
    return { a: () => unbroadcast(da(g, a, b), a.shape), b: () => unbroadcast(db(g, a, b), b.shape) };
  },
});

const f32 = (t: tf.Tensor): tf.Tensor => tf.cast(t, "float32");

const CONFIGS: tf.GradConfig[] = [
  // ── elementwise binary (broadcasting) ──
  binary("Add", (dy) => dy, (dy) => dy),
  binary("Sub", (dy) => dy, (dy) => tf.neg(dy)),
  binary("Multiply", (dy, _a, b) => tf.mul(dy, f32(b)), (dy, a) => tf.mul(dy, f32(a))),
  binary(
    "RealDiv",
    (dy, _a, b) => tf.div(dy, f32(b)),
    (dy, a, b) => tf.neg(tf.div(tf.mul(dy, f32(a)), tf.square(f32(b)))),
  ),
  binary("Maximum", (dy, a, b) => tf.mul(dy, f32(tf.greaterEqual(a, b))), (dy, a, b) => tf.mul(dy, f32(tf.less(a, b)))),
  binary("Minimum", (dy, a, b) => tf.mul(dy, f32(tf.lessEqual(a, b))), (dy, a, b) => tf.mul(dy, f32(tf.greater(a, b)))),
  binary(
    "SquaredDifference",
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(a, b), 2)),
    (dy, a, b) => tf.mul(dy, tf.mul(tf.sub(b, a), 2)),
  ),
  {
    kernelName: "Pow",
    inputsToSave: ["a", "b"],
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [a, b, y] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
      const g = dy as tf.Tensor;
      const bf = f32(b);
      return {
        a: () => unbroadcast(tf.mul(g, tf.mul(bf, tf.pow(a, tf.sub(bf, 1)))), a.shape),
        b: () => unbroadcast(tf.mul(g, tf.mul(y, tf.where(tf.greater(a, 0), tf.log(a), tf.zerosLike(a)))), b.shape),
      };
    },
  },
  {
    kernelName: "AddN",
    saveAllInputs: true,
    gradFunc: (dy, saved) => Object.fromEntries(saved.map((_, i) => [String(i), () => (dy as tf.Tensor).clone()])),
  },

  // ── elementwise unary ──
  unary("Neg", (dy) => tf.neg(dy)),
  unary("Square", (dy, x) => tf.mul(dy, tf.mul(f32(x), 2))),
  unary("Sqrt", (dy, x) => tf.div(dy, tf.mul(tf.sqrt(f32(x)), 2))),
  unary("Rsqrt", (dy, x) => tf.div(dy, tf.mul(tf.pow(x, 1.5), -2))),
  unary("Reciprocal", (dy, x) => tf.div(dy, tf.neg(tf.square(x)))),
  unary("Exp", (dy, _x, y) => tf.mul(dy, y), true),
  unary("Log", (dy, x) => tf.div(dy, f32(x))),
  unary("Log1p", (dy, x) => tf.div(dy, tf.add(x, 1))),
  unary("Tanh", (dy, _x, y) => tf.mul(tf.sub(1, tf.square(y)), dy), true),
  unary("Sigmoid", (dy, _x, y) => tf.mul(dy, tf.mul(y, tf.sub(1, y))), true),
  unary("Softplus", (dy, x) => tf.mul(dy, tf.sigmoid(x))),
  unary("Relu", (dy, x) => tf.mul(dy, f32(tf.step(x)))),
  unary("Abs", (dy, x) => tf.mul(dy, tf.step(f32(x), -1))),
  unary("Erf", (dy, x) => tf.mul(dy, tf.mul(tf.exp(tf.neg(tf.square(x))), 2 / Math.sqrt(Math.PI)))),
  unary("Sin", (dy, x) => tf.mul(tf.cos(f32(x)), dy)),
  unary("Cos", (dy, x) => tf.mul(tf.neg(tf.sin(f32(x))), dy)),
  unary("Identity", (dy) => dy),
  { kernelName: "Cast", gradFunc: (dy) => ({ x: () => (dy as tf.Tensor).clone() }) },
  {
    kernelName: "ClipByValue",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved as [tf.Tensor];
      const { clipValueMin, clipValueMax } = attrs as { clipValueMin: number; clipValueMax: number };
      const inside = tf.logicalAnd(tf.greaterEqual(x, clipValueMin), tf.lessEqual(x, clipValueMax));
      return { x: () => tf.where(inside, dy as tf.Tensor, tf.zerosLike(dy as tf.Tensor)) };
    },
  },
  ...["Step", "Sign", "Floor", "Ceil", "Round", "ZerosLike", "OnesLike"].map(
    (kernelName): tf.GradConfig => ({ kernelName, inputsToSave: ["x"], gradFunc: zeroGrad("x") }),
  ),
  { kernelName: "OneHot", inputsToSave: ["indices"], gradFunc: zeroGrad("indices") },
  {
    kernelName: "Select",
    inputsToSave: ["condition"],
    gradFunc: (dy, saved) => {
      const [c] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      return {
        condition: () => f32(tf.zerosLike(c)),
        t: () => tf.mul(g, tf.cast(c, g.dtype)),
        e: () => tf.mul(g, tf.cast(tf.logicalNot(c), g.dtype)),
      };
    },
  },

  // ── reductions ──
  {
    kernelName: "Sum",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved as [tf.Tensor];
      const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
      return { x: () => expandReduced(dy as tf.Tensor, x, axes) };
    },
  },
  {
    kernelName: "Mean",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved as [tf.Tensor];
      const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
      const count = axes.reduce((p, a) => p * x.shape[a]!, 1);
      return { x: () => tf.div(expandReduced(dy as tf.Tensor, x, axes), count) };
    },
  },
  ...(["Max", "Min"] as const).map(
    (kernelName): tf.GradConfig => ({
      kernelName,
      inputsToSave: ["x"],
      outputsToSave: [true],
      gradFunc: (dy, saved, attrs: Attrs) => {
        const [x, y] = saved as [tf.Tensor, tf.Tensor];
        const axisAttr = (kernelName === "Max" ? attrs.reductionIndices : attrs.axis) as number | number[];
        const axes = tf.util.parseAxisParam(axisAttr, x.shape);
        const keep = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
        // Ties share the gradient like tfjs does (every arg-extreme gets dy).
        return { x: () => tf.mul(tf.reshape(dy as tf.Tensor, keep), f32(tf.equal(x, tf.reshape(y, keep)))) };
      },
    }),
  ),
  {
    kernelName: "Softmax",
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [y] = saved as [tf.Tensor];
      const dim = attrs.dim as number;
      const dyY = tf.mul(dy as tf.Tensor, y);
      return { logits: () => tf.sub(dyY, tf.mul(tf.sum(dyY, [dim], true), y)) };
    },
  },

  // ── shape ──
  { kernelName: "Reshape", inputsToSave: ["x"], gradFunc: (dy, s) => ({ x: () => tf.reshape(dy as tf.Tensor, s[0]!.shape) }) },
  {
    kernelName: "ExpandDims",
    inputsToSave: ["input"],
    gradFunc: (dy, s) => ({ input: () => tf.reshape(dy as tf.Tensor, s[0]!.shape) }),
  },
  {
    kernelName: "Squeeze",
    inputsToSave: ["x"],
    gradFunc: (dy, s) => ({ x: () => tf.reshape(dy as tf.Tensor, s[0]!.shape) }),
  },
  {
    kernelName: "Transpose",
    gradFunc: (dy, _s, attrs: Attrs) => ({ x: () => tf.transpose(dy as tf.Tensor, undoPerm(attrs.perm as number[])) }),
  },
  {
    kernelName: "Slice",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved as [tf.Tensor];
      const [begin, size] = tf.slice_util.parseSliceParams(x, attrs.begin as number[], attrs.size as number[]) as [number[], number[]];
      const paddings = x.shape.map((d, i) => [begin[i]!, d - begin[i]! - size[i]!] as [number, number]);
      return { x: () => tf.pad(dy as tf.Tensor, paddings) };
    },
  },
  {
    kernelName: "PadV2",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved as [tf.Tensor];
      const begin = (attrs.paddings as Array<[number, number]>).map((p) => p[0]);
      return { x: () => tf.slice(dy as tf.Tensor, begin, x.shape) };
    },
  },
  {
    kernelName: "Concat",
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs: Attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, saved[0]!.shape)[0]!;
      const parts = tf.split(dy as tf.Tensor, saved.map((t) => t.shape[axis]!), axis);
      return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
    },
  },
  {
    kernelName: "SplitV",
    gradFunc: (dy, _s, attrs: Attrs) => ({ x: () => tf.concat(dy as tf.Tensor[], attrs.axis as number) }),
  },
  {
    kernelName: "Pack",
    saveAllInputs: true,
    gradFunc: (dy, _saved, attrs: Attrs) => {
      const parts = tf.unstack(dy as tf.Tensor, attrs.axis as number);
      return Object.fromEntries(parts.map((p, i) => [String(i), () => p]));
    },
  },
  { kernelName: "Unpack", gradFunc: (dy, _s, attrs: Attrs) => ({ value: () => tf.stack(dy as tf.Tensor[], attrs.axis as number) }) },
  {
    kernelName: "Tile",
    inputsToSave: ["x"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x] = saved as [tf.Tensor];
      const reps = attrs.reps as number[];
      // Fold every repeated axis: reshape [.., reps_i·d_i, ..] → [.., reps_i, d_i, ..] and sum the reps axes.
      const split: number[] = [];
      const sumAxes: number[] = [];
      x.shape.forEach((d, i) => {
        sumAxes.push(split.length);
        split.push(reps[i]!, d);
      });
      return { x: () => tf.reshape(tf.sum(tf.reshape(dy as tf.Tensor, split), sumAxes), x.shape) };
    },
  },
  {
    kernelName: "BroadcastTo",
    gradFunc: (dy, _s, attrs: Attrs) => {
      const inputShape = attrs.inputShape as number[];
      const outShape = attrs.shape as number[];
      const pad = outShape.length - inputShape.length;
      const full = [...new Array<number>(pad).fill(1), ...inputShape];
      const axes = outShape.flatMap((d, i) => (full[i] === 1 && d !== 1 ? [i] : []));
      return { x: () => tf.reshape(tf.sum(dy as tf.Tensor, axes, true), inputShape) };
    },
  },

  // ── products and lookups ──
  {
    kernelName: "BatchMatMul",
    inputsToSave: ["a", "b"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [a, b] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      const tA = attrs.transposeA as boolean;
      const tB = attrs.transposeB as boolean;
      const mm = (x: tf.Tensor, y: tf.Tensor): tf.Tensor => tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D);
      // Same identities as tfjs, but every transpose is materialised before an untransposed product.
      if (!tA && !tB) return { a: () => mm(g, swapLast(b)), b: () => mm(swapLast(a), g) };
      if (!tA && tB) return { a: () => mm(g, b), b: () => mm(swapLast(g), a) };
      if (tA && !tB) return { a: () => mm(b, swapLast(g)), b: () => mm(a, g) };
      return { a: () => mm(swapLast(b), swapLast(g)), b: () => mm(swapLast(g), swapLast(a)) };
    },
  },
  {
    kernelName: "GatherV2",
    inputsToSave: ["x", "indices"],
    gradFunc: (dy, saved, attrs: Attrs) => {
      const [x, indices] = saved as [tf.Tensor, tf.Tensor];
      const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
      if (axis !== 0 || (attrs.batchDims as number) !== 0) {
        throw new Error("GatherV2 gradient is implemented for axis 0, batchDims 0 only (wasm has no UnsortedSegmentSum)");
      }
      const n = indices.size;
      const rowShape = x.shape.slice(1);
      return {
        x: () =>
          tf.scatterND(
            tf.reshape(tf.cast(indices, "int32"), [n, 1]),
            tf.reshape(dy as tf.Tensor, [n, ...rowShape]),
            x.shape,
          ),
        indices: () => tf.zerosLike(indices),
      };
    },
  },
];

const REGISTERED = Symbol.for("taesr.gradients.registered");

/**
 * Registers every gradient above once per process (module duplicates included); `force` registers them again.
 * The gradient registry is global and the last registration of a kernel wins: importing @tensorflow/tfjs (which
 * tfjs-node and tfjs-node-gpu do, even when their native library then fails to load) registers tfjs's own gradients
 * over these — its GatherV2 needs UnsortedSegmentSum, which wasm lacks, and its BatchMatMul takes wasm's slow
 * transposed paths. backend.ts forces them back once the backend is chosen.
 */
export function registerGradients(force = false): void {
  const g = globalThis as Record<symbol, unknown>;
  if (g[REGISTERED] && !force) return;
  for (const config of CONFIGS) tf.registerGradient(config);
  g[REGISTERED] = true;
}

/** Whether the engine's gradient for `kernelName` is this module's (false when another registration replaced it). */
export function ownsGradient(kernelName: string): boolean {
  const ours = CONFIGS.find((c) => c.kernelName === kernelName);
  return ours !== undefined && tf.getGradient(kernelName)?.gradFunc === ours.gradFunc;
}

/** Kernel names with a registered gradient from this module (for diagnostics and tests). */
export const GRADIENT_KERNELS: readonly string[] = CONFIGS.map((c) => c.kernelName);

registerGradients();

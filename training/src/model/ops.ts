/**
 * Differentiable building blocks with gradients written for the wasm backend's strengths.
 *
 * Why custom gradients:
 * - tf.gather's gradient is UnsortedSegmentSum, which tfjs-backend-wasm does not implement. `gatherRows` uses ScatterNd
 *   (which the wasm, cpu and native backends all have, and which sums duplicate indices) instead.
 * - tf.matMul's built-in gradient multiplies with transposeA/transposeB = true, and wasm's transposed matMul paths run
 *   about 10× slower than the plain one. `matMul2d`/`batchMatMul`/`linear` transpose explicitly, then multiply
 *   untransposed — in the forward pass and in every gradient.
 * - Fewer, larger kernels: `linear` (matMul + bias, bias gradient as a ones-row matMul — wasm's column sums are slow),
 *   `layerNorm` (analytic backward) and `geluTanh` (via the vectorised sigmoid) each replace a dozen autodiffed kernels.
 *   Together these took forward+backward of the benchmark batch from 2.6 s to 1.7 s.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { LAYER_NORM_EPS } from "../../../src/model/spec.js";
// Side effect: tfjs-core's Node build registers no gradients; this module supplies the ones training needs.
import "../gradients.js";

type GradArgs = Array<tf.Tensor | tf.GradSaveFunc>;

/** a[M,K] · b[K,N] with explicit-transpose gradients (for products without a bias; `linear` has its own). */
export const matMul2d: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  (...args: GradArgs) => {
    const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as tf.Tensor2D)];
      },
    };
  },
) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** a[G,M,K] · b[G,K,N] (per group) with explicit-transpose gradients. */
export const batchMatMul: (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D = tf.customGrad(
  (...args: GradArgs) => {
    const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([a, b]);
    return {
      value: tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
        const d = dy as tf.Tensor3D;
        return [tf.matMul(d, tf.transpose(sb, [0, 2, 1])), tf.matMul(tf.transpose(sa, [0, 2, 1]), d)];
      },
    };
  },
) as unknown as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * table[ids] for int32 ids of any shape → [...ids.shape, width]. The gradient w.r.t. the table is a dense [rows, width]
 * tensor built by ScatterNd (duplicates summed); ids get no gradient.
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  const [rows, width] = table.shape;
  const flat = tf.reshape(ids, [-1, 1]) as tf.Tensor2D;
  const n = flat.shape[0];
  const op = tf.customGrad((...args: GradArgs) => {
    const [t, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([flat]);
    return {
      value: tf.gather(t, tf.reshape(flat, [n]), 0),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.scatterND(saved[0] as tf.Tensor2D, tf.reshape(dy, [n, width]), [rows, width]),
      ],
    };
  });
  const gathered = op(table);
  return tf.reshape(gathered, [...ids.shape, width]);
}

/** Rows per chunk so that rows·perRow ≤ chunkElements (at least one row): how the heads' max nodes bound memory. */
export function rowsPerChunk(perRow: number, chunkElements: number): number {
  return Math.max(1, Math.floor(chunkElements / Math.max(1, perRow)));
}

/** A running sum over chunks: acc + next with both disposed (next alone when there is no acc yet). */
export function addInto<T extends tf.Tensor>(acc: T | undefined, next: T): T {
  if (!acc) return next;
  const sum = tf.add(acc, next) as T;
  acc.dispose();
  next.dispose();
  return sum;
}

/** Row vector of ones [1,n]: Σ over rows as an untransposed matMul, far faster on wasm than tf.sum(axis 0). */
function sumRows(m: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(tf.ones([1, m.shape[0]]) as tf.Tensor2D, m);
}

/** y = x2d·w + b as one op with a hand-written gradient (dx = dy·wᵀ, dw = x2dᵀ·dy, db = 1ᵀ·dy), all untransposed. */
const linear2d: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D = tf.customGrad((...args: GradArgs) => {
  const [x, w, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  return {
    value: tf.fused.matMul({ a: x, b: w, bias: b }),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
      const d = dy as tf.Tensor2D;
      return [tf.matMul(d, tf.transpose(sw)), tf.matMul(tf.transpose(sx), d), tf.reshape(sumRows(d), [sw.shape[1]])];
    },
  };
}) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** x[..., in] · w[in, out] + b[out]: flattens the leading dims so the product is one untransposed 2-D matMul. */
export function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1]!;
  const outDim = w.shape[1]!;
  const y = linear2d(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D);
  return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

/**
 * LayerNorm over the last axis (biased variance, eps = spec's LAYER_NORM_EPS), as ONNX LayerNormalization computes it.
 * Analytic gradient: with x̂ = (x−μ)·r, r = 1/√(σ²+eps) and g = dy·γ,
 *   dx = r·(g − mean(g) − x̂·mean(g·x̂)),  dγ = Σ_rows dy·x̂,  dβ = Σ_rows dy.
 * One op instead of ~12 autodiffed kernels, and the Σ_rows are matMuls (see sumRows).
 */
const layerNorm2d: (x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor2D = tf.customGrad((...args: GradArgs) => {
  const [x, gamma, beta, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
  const mean = tf.mean(x, 1, true);
  const centred = tf.sub(x, mean);
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), 1, true), LAYER_NORM_EPS));
  const xhat = tf.mul(centred, rstd);
  save([xhat, rstd, gamma]);
  return {
    value: tf.add(tf.mul(xhat, gamma), beta),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sxhat, srstd, sgamma] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
      const d = dy as tf.Tensor2D;
      const g = tf.mul(d, sgamma);
      const dx = tf.mul(srstd, tf.sub(tf.sub(g, tf.mean(g, 1, true)), tf.mul(sxhat, tf.mean(tf.mul(g, sxhat), 1, true))));
      const width = sgamma.shape[0];
      return [dx, tf.reshape(sumRows(tf.mul(d, sxhat)), [width]), tf.reshape(sumRows(d), [width])];
    },
  };
}) as unknown as (x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D) => tf.Tensor2D;

/** LayerNorm over the last axis of a tensor of any rank. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const width = x.shape[x.shape.length - 1]!;
  const y = layerNorm2d(tf.reshape(x, [-1, width]) as tf.Tensor2D, gamma as tf.Tensor1D, beta as tf.Tensor1D);
  return tf.reshape(y, x.shape);
}

const GELU_K = 2 * Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/**
 * gelu_tanh(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), computed as the identical z·σ(2√(2/π)·(z + 0.044715·z³))
 * because wasm's sigmoid is vectorised (XNNPACK) and its tanh is ~10× slower. Hand-written gradient:
 *   d/dz = s + z·s·(1−s)·K·(1 + 3a·z²),  s = σ(u).
 */
export const geluTanh: (z: tf.Tensor) => tf.Tensor = tf.customGrad((...args: GradArgs) => {
  const [z, save] = args as [tf.Tensor, tf.GradSaveFunc];
  const s = tf.sigmoid(tf.mul(tf.add(z, tf.mul(tf.mul(tf.square(z), z), GELU_A)), GELU_K));
  save([z, s]);
  return {
    value: tf.mul(z, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sz, ss] = saved as [tf.Tensor, tf.Tensor];
      const du = tf.mul(tf.add(tf.mul(tf.square(sz), 3 * GELU_A * GELU_K), GELU_K), sz); // z·u'
      const ds = tf.add(ss, tf.mul(tf.mul(ss, tf.sub(1, ss)), du));
      return [tf.mul(dy as tf.Tensor, ds)];
    },
  };
}) as unknown as (z: tf.Tensor) => tf.Tensor;

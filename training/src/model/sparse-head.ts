/**
 * The SPLADE-style sparse head in TensorFlow.js (maths in src/model/spec.ts): on the final hidden state h [B,T,H],
 *   w_v = log(1 + ReLU(max_t (LNs(h)_t · E_vᵀ + b_v − (1 − mask_t)·1e9)))      → [B,V], E = embed.token (tied)
 * which equals max_t mask_t · log(1 + ReLU(z_t,v)) because log(1 + ReLU(·)) is monotone and ≥ 0.
 *
 * Memory: the logits z are [B,T,V] — 64 × 96 × 8192 floats = 200 MB for one document batch, kept (with the same again
 * for the max's mask) until the backward pass by autodiff. `maxLogits` is one custom-gradient node instead: its forward
 * runs the product in chunks of batch rows (≤ CHUNK_ELEMENTS logits alive at a time) and keeps only the max [B,V] and
 * its argmax over t [B,V]; its backward rebuilds each chunk's one-hot [rows,T,V] gradient from the argmax, also chunk by
 * chunk. The gradient of a max goes to its first maximising position only (tfjs's own Max splits ties; a tie between
 * two real positions' float logits does not happen in practice, and padded positions sit 1e9 below every real one).
 *
 * Cost: the product is B·T·V·H multiply-adds forward and twice that backward — for T 96, V 8192, H 128 about the
 * FLOPs of the whole 6-step encoder again, which is the price SPLADE pays for a vocabulary-sized output.
 *
 * @example
 *   const w = sparseHead(params, states[states.length - 1], mask); // [B,V], ≥ 0
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { ATTENTION_MASK_VALUE } from "../../../src/model/spec.js";
import { layerNorm } from "./ops.js";
import type { ParamTensors } from "./forward.js";

/** Logits per chunk (rows × T × V): 4M floats = 16 MB, whatever the batch. */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

type GradArgs = Array<tf.Tensor | tf.GradSaveFunc>;

/** Batch rows per chunk so that rows·T·V ≤ CHUNK_ELEMENTS (at least one row). */
function rowsPerChunk(T: number, V: number): number {
  return Math.max(1, Math.floor(CHUNK_ELEMENTS / Math.max(1, T * V)));
}

/**
 * m[b,v] = max_t (n[b,t,:] · E[v,:] + bias[v] + maskBias[b,t]) for n [B,T,H], E [V,H], bias [V], maskBias [B,T]
 * (0 on tokens, −1e9 on padding). Gradients for n, E and bias (maskBias comes from the data: zero).
 */
export const maxLogits: (n: tf.Tensor3D, table: tf.Tensor2D, bias: tf.Tensor1D, maskBias: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  (...args: GradArgs) => {
    const [n, table, bias, maskBias, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.GradSaveFunc];
    const [B, T, H] = n.shape;
    const V = table.shape[0];
    if (table.shape[1] !== H) throw new Error(`sparse head: hidden ${H} but the token table is [${table.shape.join(",")}]`);
    const rows = rowsPerChunk(T, V);
    const maxes: tf.Tensor2D[] = [];
    const argmaxes: tf.Tensor2D[] = [];
    const tableT = tf.transpose(table); // [H,V]: wasm's untransposed matMul is the fast path (ops.ts)
    for (let start = 0; start < B; start += rows) {
      const r = Math.min(rows, B - start);
      const [m, i] = tf.tidy(() => {
        const chunk = tf.reshape(tf.slice(n, [start, 0, 0], [r, T, H]), [r * T, H]) as tf.Tensor2D;
        const z = tf.add(
          tf.add(tf.reshape(tf.matMul(chunk, tableT), [r, T, V]), bias),
          tf.expandDims(tf.slice(maskBias, [start, 0], [r, T]), 2),
        );
        return [tf.max(z, 1) as tf.Tensor2D, tf.argMax(z, 1) as tf.Tensor2D];
      });
      maxes.push(m);
      argmaxes.push(i);
    }
    tableT.dispose();
    const value = maxes.length === 1 ? maxes[0]! : (tf.concat(maxes, 0) as tf.Tensor2D);
    const argmax = argmaxes.length === 1 ? argmaxes[0]! : (tf.concat(argmaxes, 0) as tf.Tensor2D);
    if (maxes.length > 1) for (const t of [...maxes, ...argmaxes]) t.dispose();
    save([n, table, argmax, maskBias]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sn, stable, sarg, smaskBias] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const d = dy as tf.Tensor2D; // [B,V]
        const positions = tf.reshape(tf.range(0, T, 1, "int32"), [1, T, 1]);
        let dTableT: tf.Tensor2D | undefined; // [H,V], transposed once at the end
        const dn: tf.Tensor2D[] = [];
        for (let start = 0; start < B; start += rows) {
          const r = Math.min(rows, B - start);
          const [dnChunk, dtChunk] = tf.tidy(() => {
            // dz[b,t,v] = dy[b,v] where t = argmax[b,v], else 0
            const hit = tf.equal(positions, tf.expandDims(tf.slice(sarg, [start, 0], [r, V]), 1)); // [r,T,V]
            const dz = tf.reshape(tf.mul(tf.cast(hit, "float32"), tf.expandDims(tf.slice(d, [start, 0], [r, V]), 1)), [r * T, V]) as tf.Tensor2D;
            const chunk = tf.reshape(tf.slice(sn, [start, 0, 0], [r, T, H]), [r * T, H]) as tf.Tensor2D;
            return [tf.matMul(dz, stable), tf.matMul(tf.transpose(chunk), dz)] as [tf.Tensor2D, tf.Tensor2D];
          });
          dn.push(dnChunk);
          if (dTableT) {
            const sum = tf.add(dTableT, dtChunk) as tf.Tensor2D;
            dTableT.dispose();
            dtChunk.dispose();
            dTableT = sum;
          } else {
            dTableT = dtChunk;
          }
        }
        const dnAll = tf.reshape(dn.length === 1 ? dn[0]! : tf.concat(dn, 0), [B, T, H]);
        return [dnAll, tf.transpose(dTableT!), tf.sum(d, 0), tf.zerosLike(smaskBias)];
      },
    };
  },
) as unknown as (n: tf.Tensor3D, table: tf.Tensor2D, bias: tf.Tensor1D, maskBias: tf.Tensor2D) => tf.Tensor2D;

/** Sparse term weights w [B,V] (≥ 0) of the final hidden states h [B,T,H] under mask [B,T] (spec.ts). */
export function sparseHead(params: ParamTensors, h: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  if (!("sparse.bias" in params)) throw new Error("sparse head: these params have no sparse.* weights (architecture.sparseHead is off)");
  const n = layerNorm(h, params["sparse.ln.gamma"], params["sparse.ln.beta"]) as tf.Tensor3D;
  const maskBias = tf.mul(tf.sub(1, mask), ATTENTION_MASK_VALUE) as tf.Tensor2D;
  const m = maxLogits(n, params["embed.token"] as tf.Tensor2D, params["sparse.bias"] as tf.Tensor1D, maskBias);
  return tf.log1p(tf.relu(m)) as tf.Tensor2D;
}

/**
 * The SPLADE-style sparse head in TensorFlow.js (maths in src/model/spec.ts): on the final hidden state h [B,T,H],
 *   w_v = log(1 + ReLU(max_t (LNs(h)_t · E_vᵀ + b_v − (1 − mask_t)·1e9)))      → [B,V], E = embed.token (tied)
 * which equals max_t mask_t · log(1 + ReLU(z_t,v)) because log(1 + ReLU(·)) is monotone and ≥ 0.
 *
 * Memory: the logits z are [B,T,V] — 64 × 96 × 8192 floats = 200 MB for one document batch, kept (with the same again
 * for the max's mask) until the backward pass by autodiff. `maxLogits` is one custom-gradient node instead: its forward
 * runs the product in chunks of batch rows (≤ CHUNK_ELEMENTS logits alive at a time) and keeps only the max [B,V] and
 * its argmax over t [B,V]; its backward scatter-adds into the argmax positions (dn) and gathers them (dE), also chunk
 * by chunk. The gradient of a max goes to its first maximising position only (tfjs's own Max splits ties; a tie between
 * two real positions' float logits does not happen in practice, and padded positions sit 1e9 below every real one).
 *
 * Cost: the product is B·T·V·H multiply-adds forward — for T 96, V 8192, H 128 about the FLOPs of the whole 6-step
 * encoder again, which is the price SPLADE pays for a vocabulary-sized output — and B·V·H backward. The backward used
 * to multiply a one-hot [B·T, V] gradient out, twice the forward's work: for 32 rows of 96 pieces forward + backward
 * took 4.0–4.2 s against 2.5–2.7 s now (forward 0.86 s), on wasm beside a training run, with the same gradients to
 * 8e-6; wasm's Gather is most of what is left. The backward's chunks hold a quarter of `chunkElements` per tensor: at
 * 64 × 96 pieces the node's forward + backward peaks 71 MiB above its inputs (tf.profile), against 82 for the one-hot.
 *
 * @example
 *   const w = sparseHead(params, states[states.length - 1], mask); // [B,V], ≥ 0
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { ATTENTION_MASK_VALUE } from "../../../src/model/spec.js";
import { addInto, layerNorm, rowsPerChunk } from "./ops.js";
import type { ParamTensors } from "./forward.js";

/** Logits per chunk (rows × T × V): 4M floats = 16 MB, whatever the batch. */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

type GradArgs = Array<tf.Tensor | tf.GradSaveFunc>;


type MaxLogits = (n: tf.Tensor3D, table: tf.Tensor2D, bias: tf.Tensor1D, maskBias: tf.Tensor2D) => tf.Tensor2D;

/**
 * m[b,v] = max_t (n[b,t,:] · E[v,:] + bias[v] + maskBias[b,t]) for n [B,T,H], E [V,H], bias [V], maskBias [B,T]
 * (0 on tokens, −1e9 on padding). Gradients for n, E and bias (maskBias comes from the data: zero). At most
 * `chunkElements` logits (forward) or scattered values (backward) are alive at a time (tests pass a small number to run
 * the multi-chunk path on small inputs).
 */
export function maxLogitsChunked(chunkElements: number): MaxLogits {
  return tf.customGrad((...args: GradArgs) => {
    const [n, table, bias, maskBias, save] = args as [tf.Tensor3D, tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.GradSaveFunc];
    const [B, T, H] = n.shape;
    const V = table.shape[0];
    if (table.shape[1] !== H) throw new Error(`sparse head: hidden ${H} but the token table is [${table.shape.join(",")}]`);
    const rows = rowsPerChunk(T * V, chunkElements);
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
        const nFlat = tf.reshape(sn, [B * T, H]) as tf.Tensor2D;
        // Each (row, term) sends its gradient to one position, its argmax: scatter-add d·E into those positions (dn)
        // and gather them for the table (dE[v] = Σ_b d[b,v]·n[b, argmax[b,v]]) — B·V·H work, where a one-hot
        // [B·T, V] product costs B·T·V·H twice over. In chunks of rows, as the forward.
        const scatterRows = rowsPerChunk(4 * V * H, chunkElements); // ~4 tensors of [r·V, H] alive in a chunk
        const dnParts: tf.Tensor2D[] = [];
        let dTable: tf.Tensor2D | undefined;
        for (let start = 0; start < B; start += scatterRows) {
          const r = Math.min(scatterRows, B - start);
          const [dnChunk, dtChunk] = tf.tidy(() => {
            const rowStart = tf.reshape(tf.mul(tf.range(0, r, 1, "int32"), tf.scalar(T, "int32")), [r, 1]);
            const hit = tf.reshape(tf.add(tf.slice(sarg, [start, 0], [r, V]), rowStart), [r * V]); // row of the chunk's n
            const dChunk = tf.slice(d, [start, 0], [r, V]);
            const updates = tf.reshape(tf.mul(tf.expandDims(dChunk, 2), tf.expandDims(stable, 0)), [r * V, H]) as tf.Tensor2D;
            const dn = tf.scatterND(tf.reshape(hit, [r * V, 1]), updates, [r * T, H]) as tf.Tensor2D;
            const picked = tf.reshape(tf.gather(tf.slice(nFlat, [start * T, 0], [r * T, H]), hit, 0), [r, V, H]);
            const weighted = tf.reshape(tf.mul(picked, tf.expandDims(dChunk, 2)), [r, V * H]) as tf.Tensor2D;
            // Σ over the chunk's rows as an untransposed product with ones, wasm's fast path (ops.ts)
            const dt = tf.reshape(tf.matMul(tf.ones([1, r]) as tf.Tensor2D, weighted), [V, H]) as tf.Tensor2D;
            return [dn, dt];
          });
          dnParts.push(dnChunk);
          dTable = addInto(dTable, dtChunk);
        }
        nFlat.dispose();
        const dnAll = tf.reshape(dnParts.length === 1 ? dnParts[0]! : tf.concat(dnParts, 0), [B, T, H]);
        if (dnParts.length > 1) for (const t of dnParts) t.dispose();
        return [dnAll, dTable!, tf.sum(d, 0), tf.zerosLike(smaskBias)];
      },
    };
  }) as unknown as MaxLogits;
}

/** {@link maxLogitsChunked} at CHUNK_ELEMENTS (16 MB of logits per chunk). */
export const maxLogits: MaxLogits = maxLogitsChunked(CHUNK_ELEMENTS);

/** Sparse term weights w [B,V] (≥ 0) of the final hidden states h [B,T,H] under mask [B,T] (spec.ts). */
export function sparseHead(params: ParamTensors, h: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  if (!("sparse.bias" in params)) throw new Error("sparse head: these params have no sparse.* weights (architecture.sparseHead is off)");
  const n = layerNorm(h, params["sparse.ln.gamma"], params["sparse.ln.beta"]) as tf.Tensor3D;
  const maskBias = tf.mul(tf.sub(1, mask), ATTENTION_MASK_VALUE) as tf.Tensor2D;
  const m = maxLogits(n, params["embed.token"] as tf.Tensor2D, params["sparse.bias"] as tf.Tensor1D, maskBias);
  return tf.log1p(tf.relu(m)) as tf.Tensor2D;
}

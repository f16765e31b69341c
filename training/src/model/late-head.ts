/**
 * The late-interaction (ColBERT-style) head in TensorFlow.js (maths in src/model/spec.ts): on a hidden state h [B,T,H],
 *   v_t = u_t / √(‖u_t‖² + 1e-12),  u_t = LNout(h)_t · W_late         → [B,T,dim], W_late = late.proj.w, LNout = out.ln
 * and the MaxSim scores the late objective ranks with (train/late-loss.ts):
 *   s(q, d) = Σ_{real i of q} max_{real j of d} v_qi · v_dj.
 *
 * Memory: the token similarities are [B,Tq,C,Td] — 64 × 32 × 128 × 96 floats = 100 MB for one micro-batch, kept (with
 * the masked copy the max reads) until the backward pass by autodiff. `tokenMaxima` is one custom-gradient node
 * instead: its forward runs the product in chunks of document rows (≤ CHUNK_ELEMENTS similarities alive at a time) and
 * keeps only the max over document tokens [B,Tq,C] and its argmax; its backward gathers the argmax tokens (dq) and
 * scatter-adds into them (dd). The gradient of a max goes to its first maximising position only (tfjs's Max splits
 * ties; a tie between two real tokens' float similarities does not happen in practice, and padded positions sit 1e9
 * below every real one).
 *
 * Cost: B·Tq·C·Td·dim multiply-adds forward, B·Tq·C·dim backward. The backward used to rebuild a one-hot [B·Tq, C·Td]
 * gradient and multiply it out (twice the forward's work, plus the one-hot itself): for the adapt preset's
 * 64 × 32 queries against 98 × 256 documents that took 6.4–9.6 s against 0.8–1.0 s now, forward included, on wasm
 * beside a training run, with the same gradients to 2e-6; the node then peaks 51 MiB above its inputs (tf.profile),
 * against 81 for the one-hot.
 *
 * @example
 *   const qv = lateTokenVectors(params, q.states[maxStep - 1]!); // [B,Tq,dim]
 *   const scores = maxSimScores(qv, qMask, dv, dMask);           // [B,C]
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { ATTENTION_MASK_VALUE } from "../../../src/model/spec.js";
import { addInto, layerNorm, matMul2d, rowsPerChunk } from "./ops.js";
import type { ParamTensors } from "./forward.js";

/** Similarities per chunk (B·Tq × c·Td): 4M floats = 16 MB, whatever the batch. */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

type GradArgs = Array<tf.Tensor | tf.GradSaveFunc>;


type TokenMaxima = (q: tf.Tensor3D, d: tf.Tensor3D, maskBias: tf.Tensor2D) => tf.Tensor3D;

/** Unit token vectors [B,T,dim] of hidden states h [B,T,H] (every position; consumers mask the padding). */
export function lateTokenVectors(params: ParamTensors, h: tf.Tensor3D): tf.Tensor3D {
  if (!("late.proj.w" in params)) throw new Error("late head: these params have no late.proj.w (architecture.lateHead is off)");
  const [B, T, H] = h.shape;
  const w = params["late.proj.w"] as tf.Tensor2D;
  if (w.shape[0] !== H) throw new Error(`late head: hidden ${H} but late.proj.w is [${w.shape.join(",")}]`);
  const n = layerNorm(h, params["out.ln.gamma"], params["out.ln.beta"]) as tf.Tensor3D;
  const u = matMul2d(tf.reshape(n, [B * T, H]) as tf.Tensor2D, w);
  const v = tf.mul(u, tf.rsqrt(tf.add(tf.sum(tf.square(u), 1, true), 1e-12)));
  return tf.reshape(v, [B, T, w.shape[1]]) as tf.Tensor3D;
}

/**
 * m[b,i,c] = max_j (q[b,i,:] · d[c,j,:] + maskBias[c,j]) for q [B,Tq,K], d [C,Td,K], maskBias [C,Td] (0 on tokens,
 * −1e9 on padding) → [B,Tq,C]. Gradients for q and d (maskBias comes from the data: zero). At most `chunkElements`
 * similarities are alive at a time (tests pass a small number to run the multi-chunk path on small inputs).
 */
export function tokenMaximaChunked(chunkElements: number): TokenMaxima {
  if (!(Number.isInteger(chunkElements) && chunkElements >= 1)) throw new Error(`chunkElements must be a positive integer, got ${chunkElements}`);
  return tf.customGrad((...args: GradArgs) => {
    const [q, d, maskBias, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor2D, tf.GradSaveFunc];
    const [B, Tq, K] = q.shape;
    const [C, Td] = d.shape;
    if (d.shape[2] !== K) throw new Error(`MaxSim: query vectors have ${K} components, document vectors ${d.shape[2]}`);
    const rows = rowsPerChunk(B * Tq * Td, chunkElements); // documents per chunk
    const q2d = tf.reshape(q, [B * Tq, K]) as tf.Tensor2D;
    const maxes: tf.Tensor2D[] = [];
    const argmaxes: tf.Tensor2D[] = [];
    for (let start = 0; start < C; start += rows) {
      const c = Math.min(rows, C - start);
      const [m, i] = tf.tidy(() => {
        // [K, c·Td]: wasm's untransposed matMul is the fast path (ops.ts)
        const dT = tf.transpose(tf.reshape(tf.slice(d, [start, 0, 0], [c, Td, K]), [c * Td, K])) as tf.Tensor2D;
        const sim = tf.add(tf.reshape(tf.matMul(q2d, dT), [B * Tq, c, Td]), tf.expandDims(tf.slice(maskBias, [start, 0], [c, Td]), 0));
        return [tf.max(sim, 2) as tf.Tensor2D, tf.argMax(sim, 2) as tf.Tensor2D];
      });
      maxes.push(m);
      argmaxes.push(i);
    }
    const value2d = maxes.length === 1 ? maxes[0]! : (tf.concat(maxes, 1) as tf.Tensor2D);
    const argmax = argmaxes.length === 1 ? argmaxes[0]! : (tf.concat(argmaxes, 1) as tf.Tensor2D);
    if (maxes.length > 1) for (const t of [...maxes, ...argmaxes]) t.dispose();
    const value = tf.reshape(value2d, [B, Tq, C]) as tf.Tensor3D;
    if (value !== (value2d as tf.Tensor)) value2d.dispose();
    q2d.dispose();
    save([q, d, argmax, maskBias]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sq, sd, sarg, smaskBias] = saved as [tf.Tensor3D, tf.Tensor3D, tf.Tensor2D, tf.Tensor2D];
        // Each (query token, document) pair sends its gradient to one document token, its argmax: gather those tokens
        // for dq and scatter-add into them for dd — B·Tq·C·K work, where a one-hot [B·Tq, C·Td] product costs
        // B·Tq·C·Td·K twice over. In chunks of documents: ~4 tensors of [B·Tq·c, K] alive at a time.
        const backwardRows = rowsPerChunk(4 * B * Tq * K, chunkElements);
        const dM = tf.reshape(dy, [B * Tq, C]) as tf.Tensor2D;
        const q2 = tf.reshape(sq, [B * Tq, K]) as tf.Tensor2D;
        let dq: tf.Tensor2D | undefined;
        const dd: tf.Tensor2D[] = [];
        for (let start = 0; start < C; start += backwardRows) {
          const c = Math.min(backwardRows, C - start);
          const [dqChunk, ddChunk] = tf.tidy(() => {
            const dFlat = tf.reshape(tf.slice(sd, [start, 0, 0], [c, Td, K]), [c * Td, K]) as tf.Tensor2D;
            const docStart = tf.reshape(tf.mul(tf.range(0, c, 1, "int32"), tf.scalar(Td, "int32")), [1, c]);
            const hit = tf.reshape(tf.add(tf.slice(sarg, [0, start], [B * Tq, c]), docStart), [B * Tq * c]); // row of dFlat
            const dMc = tf.slice(dM, [0, start], [B * Tq, c]);
            const picked = tf.reshape(tf.gather(dFlat, hit, 0), [B * Tq, c, K]) as tf.Tensor3D;
            const dqc = tf.reshape(tf.matMul(tf.reshape(dMc, [B * Tq, 1, c]) as tf.Tensor3D, picked), [B * Tq, K]) as tf.Tensor2D; // Σ_c dM·d[argmax]
            const updates = tf.reshape(tf.mul(tf.expandDims(q2, 1), tf.expandDims(dMc, 2)), [B * Tq * c, K]) as tf.Tensor2D;
            return [dqc, tf.scatterND(tf.reshape(hit, [B * Tq * c, 1]), updates, [c * Td, K]) as tf.Tensor2D];
          });
          dd.push(ddChunk);
          dq = addInto(dq, dqChunk);
        }
        dM.dispose();
        q2.dispose();
        const ddAll = tf.reshape(dd.length === 1 ? dd[0]! : tf.concat(dd, 0), [C, Td, K]);
        if (dd.length > 1) for (const t of dd) t.dispose();
        return [tf.reshape(dq!, [B, Tq, K]), ddAll, tf.zerosLike(smaskBias)];
      },
    };
  }) as unknown as TokenMaxima;
}

/** {@link tokenMaximaChunked} at CHUNK_ELEMENTS (16 MB of similarities per chunk). */
export const tokenMaxima: TokenMaxima = tokenMaximaChunked(CHUNK_ELEMENTS);

/**
 * MaxSim scores [B,C] of query token vectors q [B,Tq,K] (mask qMask [B,Tq]) against document token vectors d [C,Td,K]
 * (mask dMask [C,Td]): s(b, c) = Σ_{i: qMask=1} max_{j: dMask=1} q_bi · d_cj.
 */
export function maxSimScores(q: tf.Tensor3D, qMask: tf.Tensor2D, d: tf.Tensor3D, dMask: tf.Tensor2D): tf.Tensor2D {
  const maskBias = tf.mul(tf.sub(1, dMask), ATTENTION_MASK_VALUE) as tf.Tensor2D;
  const m = tokenMaxima(q, d, maskBias);
  return tf.sum(tf.mul(m, tf.expandDims(qMask, 2)), 1) as tf.Tensor2D;
}

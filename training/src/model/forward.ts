/**
 * READY (usable by the trainer): `forward(params, inputIds, mask, steps)` → [e_1 … e_steps], each [B, outputDim],
 * differentiable on wasm/cpu/native backends. `encode` additionally returns the per-step hidden states h_t [B,T,H] for
 * token-level heads (SPLADE, late interaction). Notes for code built on it:
 * - tfjs-core's Node build registers no gradients; importing this module (or backend.ts) registers ours
 *   (src/gradients.ts). An op without a registered gradient fails on the first backward pass: add it there.
 * - tfjs-core alone has no chained tensor methods (x.reshape(…)): use the functional tf.* API.
 * - Measured on this 2-core box (wasm, SIMD, one thread; B 32 × T 64, H 128, heads 4, 6 steps, shared machine):
 *   forward ≈ 0.46–0.67 s, forward+backward ≈ 1.7–2.2 s (≈ 950–1 230 tokens/s), ffn 256 or 512 alike. Two thirds
 *   of it is attention's batched matMuls, which tfjs-wasm runs at ~1–1.7 GFLOP/s (2-D matMuls reach 7–12).
 *
 * The TAESR forward pass in TensorFlow.js, exactly the maths of src/model/spec.ts:
 *   x   = tokenEmbedding[ids] + positionEmbedding[0..T)
 *   h0  = 0
 *   for t = 1..k:  u = h + x;  a = MHA(LN1(u), mask);  v = u + a;  m = W2·gelu_tanh(W1·LN2(v) + b1) + b2;  h = h + a + m
 *                  e_t = proj(maskedMean(LNout(h)))
 * for the self-attention block; mlp_mixer replaces MHA(LN1(u)) by the token-mixing MLP Mix(LNmix(u), mask), and hybrid
 * runs the mixer, then attention, then the FFN (spec.ts). The block is read off the params' names (block.mix.* and/or
 * block.attn.*), so any params record made for an architecture runs as that architecture.
 * The ONNX exporter (src/onnx/taesr-graphs.ts) builds the same computation as graphs; the parity test holds them equal.
 *
 * Speed on wasm: every matrix product goes through ops.ts (untransposed matMul, explicit transposes in gradients), and
 * the embedding lookup uses a ScatterNd gradient because wasm has no UnsortedSegmentSum.
 *
 * Gradient checkpointing (`{ checkpoint: true }`): each application of the shared block becomes one tape node that keeps
 * only its inputs and recomputes the block in the backward pass (see checkpointedStep), trading one extra block forward
 * per step for not holding every step's attention probabilities and FFN activations until the backward pass.
 *
 * @example
 *   const [e1, e2, e3] = forward(params, ids, mask, 3);
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { ATTENTION_MASK_VALUE, weightNamesIn, type WeightName } from "../../../src/model/spec.js";
import { architectureOf } from "./params.js";
import { batchMatMul, gatherRows, geluTanh, layerNorm, linear } from "./ops.js";

/** Anything indexable by weight name: variables while training, constant tensors when evaluating. */
export type ParamTensors = Record<WeightName, tf.Tensor>;

/** x = tokenEmbedding[ids] + positionEmbedding[0..T) → [B,T,H]. T must not exceed maxLength. */
export function embedTokens(params: ParamTensors, inputIds: tf.Tensor2D): tf.Tensor3D {
  const [, T] = inputIds.shape;
  const posTable = params["embed.position"] as tf.Tensor2D;
  const [maxLength, H] = posTable.shape;
  if (T > maxLength) throw new Error(`sequence length ${T} exceeds the model's maxLength ${maxLength}`);
  const tokens = gatherRows(params["embed.token"] as tf.Tensor2D, inputIds) as tf.Tensor3D;
  const positions = tf.slice(posTable, [0, 0], [T, H]);
  return tf.add(tokens, positions);
}

/** Additive key-padding bias [B,1,1,T]: 0 on tokens, ATTENTION_MASK_VALUE on padding (computed once per batch). */
export function attentionBias(mask: tf.Tensor2D): tf.Tensor4D {
  const [B, T] = mask.shape;
  return tf.reshape(tf.mul(tf.sub(1, mask), ATTENTION_MASK_VALUE), [B, 1, 1, T]);
}

/** Multi-head self-attention on normalised input n [B,T,H]; returns the output projection [B,T,H]. */
export function attention(params: ParamTensors, n: tf.Tensor3D, bias: tf.Tensor4D, heads: number): tf.Tensor3D {
  const [B, T, H] = n.shape;
  const dh = H / heads;
  if (!Number.isInteger(dh)) throw new Error(`hidden ${H} is not divisible by heads ${heads}`);
  const q = linear(n, params["block.attn.wq"], params["block.attn.bq"]);
  const k = linear(n, params["block.attn.wk"], params["block.attn.bk"]);
  const v = linear(n, params["block.attn.wv"], params["block.attn.bv"]);
  // Heads become a batch dimension; K goes straight to [B·heads, dh, T] so QKᵀ is an untransposed product.
  const qh = tf.reshape(tf.transpose(tf.reshape(q, [B, T, heads, dh]), [0, 2, 1, 3]), [B * heads, T, dh]) as tf.Tensor3D;
  const kt = tf.reshape(tf.transpose(tf.reshape(k, [B, T, heads, dh]), [0, 2, 3, 1]), [B * heads, dh, T]) as tf.Tensor3D;
  const vh = tf.reshape(tf.transpose(tf.reshape(v, [B, T, heads, dh]), [0, 2, 1, 3]), [B * heads, T, dh]) as tf.Tensor3D;
  const scores = tf.mul(batchMatMul(qh, kt), 1 / Math.sqrt(dh));
  const probs = tf.softmax(tf.add(tf.reshape(scores, [B, heads, T, T]), bias));
  const ctx = batchMatMul(tf.reshape(probs, [B * heads, T, T]) as tf.Tensor3D, vh);
  const merged = tf.reshape(tf.transpose(tf.reshape(ctx, [B, heads, T, dh]), [0, 2, 1, 3]), [B, T, H]);
  return linear(merged, params["block.attn.wo"], params["block.attn.bo"]) as tf.Tensor3D;
}

/**
 * The token-mixing MLP of spec.ts on normalised input n [B,T,H]: Z = n ⊙ mixWeights (mask / max(Σmask, 1), [B,T,1]),
 * G = gelu_tanh(Zᵀ·Wt1[0..T) + bt1), a = (G·Wt2[:,0..T) + bt2[0..T))ᵀ → [B,T,H]. The sequence axis becomes the
 * features of `linear` (one untransposed 2-D matMul over B·H rows); the weights are sliced to the batch's length T, so
 * their gradient is zero beyond T.
 */
export function tokenMix(params: ParamTensors, n: tf.Tensor3D, mixWeights: tf.Tensor3D): tf.Tensor3D {
  const [B, T, H] = n.shape;
  const w1 = params["block.mix.w1"] as tf.Tensor2D;
  const L = w1.shape[1];
  if (T > L) throw new Error(`sequence length ${T} exceeds the token mixer's maxLength ${L}`);
  const zt = tf.transpose(tf.mul(n, mixWeights), [0, 2, 1]); // [B,H,T]
  const g = geluTanh(linear(zt, tf.slice(w1, [0, 0], [T, L]), params["block.mix.b1"]));
  const w2 = tf.slice(params["block.mix.w2"] as tf.Tensor2D, [0, 0], [L, T]);
  const out = linear(g, w2, tf.slice(params["block.mix.b2"] as tf.Tensor1D, [0], [T])); // [B,H,T]
  return tf.reshape(tf.transpose(out, [0, 2, 1]), [B, T, H]) as tf.Tensor3D;
}

/** What a block needs besides h, x and the weights: the mask as an attention bias and/or as token-mixing weights. */
export interface BlockContext {
  /** [B,1,1,T], for attention. */
  bias?: tf.Tensor4D;
  /** [B,T,1] = mask / max(Σmask, 1), for token mixing (spec.ts: a mean over the real tokens, so the mixer's input
   * scale does not grow with the text's length). */
  mixWeights?: tf.Tensor3D;
}

/** Which sub-layers a params record has (spec.ts: mixer, attention, or both), from its weight names. */
function subLayers(params: ParamTensors): { mixer: boolean; attention: boolean } {
  const mixer = "block.mix.w1" in params;
  const attention = "block.attn.wq" in params;
  if (!mixer && !attention) throw new Error("forward: the params have neither attention (block.attn.*) nor token-mixing (block.mix.*) weights");
  return { mixer, attention };
}

/** The context tensors a params record's block needs for a batch's mask (computed once per batch). */
export function blockContext(params: ParamTensors, mask: tf.Tensor2D): BlockContext {
  const { mixer, attention } = subLayers(params);
  return {
    ...(attention ? { bias: attentionBias(mask) } : {}),
    ...(mixer ? { mixWeights: tf.expandDims(tf.div(mask, tf.maximum(tf.sum(mask, 1, true), 1)), 2) as tf.Tensor3D } : {}),
  };
}

/** One application of the shared block: returns h_next = h + a + m ((h + a₁) + a₂ + m in the hybrid block). */
export function step(params: ParamTensors, h: tf.Tensor3D, x: tf.Tensor3D, ctx: BlockContext, heads: number): tf.Tensor3D {
  let u = tf.add(h, x) as tf.Tensor3D;
  let acc: tf.Tensor3D = h;
  if (ctx.mixWeights) {
    const a1 = tokenMix(params, layerNorm(u, params["block.mix.ln.gamma"], params["block.mix.ln.beta"]) as tf.Tensor3D, ctx.mixWeights);
    u = tf.add(u, a1);
    acc = tf.add(acc, a1);
  }
  if (ctx.bias) {
    const a2 = attention(params, layerNorm(u, params["block.ln1.gamma"], params["block.ln1.beta"]) as tf.Tensor3D, ctx.bias, heads);
    u = tf.add(u, a2);
    acc = tf.add(acc, a2);
  }
  const n2 = layerNorm(u, params["block.ln2.gamma"], params["block.ln2.beta"]);
  const m = linear(geluTanh(linear(n2, params["block.ffn.w1"], params["block.ffn.b1"])), params["block.ffn.w2"], params["block.ffn.b2"]);
  return tf.add(acc, m) as tf.Tensor3D;
}

type BlockWeightName = Extract<WeightName, `block.${string}`>;
/** The shared block's weights present in `params`, in a fixed order: the explicit inputs of a checkpointed step. */
function blockWeights(params: ParamTensors): BlockWeightName[] {
  return weightNamesIn(params).filter((n): n is BlockWeightName => n.startsWith("block."));
}

/**
 * Runs `f` (a nested tf.grads) with a tape of its own. tfjs 4.22's engine.gradients() starts a fresh tape when no other
 * gradient is being recorded and, on finishing, disposes that tape's saved tensors and sets the engine's activeTape to
 * null. Called from inside an outer backward pass (where the gradient depth is already back to 0) it would thus replace
 * the outer tape, and the outer pass would then crash on the null tape (and never dispose the outer saved tensors).
 * Putting the outer tape back afterwards leaves both passes intact; under a higher-order gradient (depth > 0) the inner
 * pass appends to the outer tape instead, which is also correct, only without the memory saving.
 */
function withOwnTape<T>(f: () => T): T {
  const state = tf.engine().state;
  const outer = state.activeTape;
  try {
    return f();
  } finally {
    state.activeTape = outer;
  }
}

/**
 * `step` as one tf.customGrad node (gradient checkpointing). Forward: customGrad runs the block with the tape off and
 * inside a tidy, so none of its intermediates survive; only the inputs are saved (clones that share their data, so
 * h, x and the weights cost no extra bytes). Backward: the block is recomputed from the saved inputs under a nested
 * tf.grads and dy is backpropagated through that recomputation, inside a tidy, so one step's activations are alive at
 * a time. The block weights are explicit inputs, so the outer tape routes their gradient to the variables and sums it
 * over the recursion steps like any other op sharing an input. The block context (the attention bias, the token
 * mixer's [B,T,1] weights) is an input only so that save() keeps it alive until the backward pass (the forward scope
 * disposes it before then); it comes from the mask, not from a variable, so the outer tape prunes it and its zero
 * gradient is never used.
 */
function checkpointedStep(params: ParamTensors, h: tf.Tensor3D, x: tf.Tensor3D, ctx: BlockContext, heads: number): tf.Tensor3D {
  const names = blockWeights(params);
  const withBlock = (weights: tf.Tensor[]): ParamTensors => {
    const out: ParamTensors = { ...params };
    names.forEach((n, i) => (out[n] = weights[i]!));
    return out;
  };
  // The context tensors travel as inputs (saved like h and x), in a fixed order; absent ones are not passed.
  const contextNames = (["bias", "mixWeights"] as const).filter((k) => ctx[k] !== undefined);
  const toContext = (tensors: tf.Tensor[]): BlockContext => {
    const out: BlockContext = {};
    contextNames.forEach((k, i) => ((out as Record<string, tf.Tensor>)[k] = tensors[i]!));
    return out;
  };
  const nc = contextNames.length;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as tf.Tensor[];
    save(inputs);
    const [h0, x0, ...rest] = inputs as [tf.Tensor3D, tf.Tensor3D, ...tf.Tensor[]];
    return {
      value: step(withBlock(rest.slice(nc)), h0, x0, toContext(rest.slice(0, nc)), heads),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sh, sx, ...srest] = saved as [tf.Tensor3D, tf.Tensor3D, ...tf.Tensor[]];
        const sctx = srest.slice(0, nc);
        const recompute = (hh: tf.Tensor, xx: tf.Tensor, ...ws: tf.Tensor[]): tf.Tensor =>
          step(withBlock(ws), hh as tf.Tensor3D, xx as tf.Tensor3D, toContext(sctx), heads);
        return withOwnTape(() =>
          tf.tidy(() => {
            const [dh, dx, ...dw] = tf.grads(recompute)([sh, sx, ...srest.slice(nc)], dy);
            return [dh!, dx!, ...sctx.map((t) => tf.zerosLike(t)), ...dw];
          }),
        );
      },
    };
  });
  return op(h, x, ...contextNames.map((k) => ctx[k]!), ...names.map((n) => params[n])) as tf.Tensor3D;
}

/** e = proj(maskedMean(LNout(h))) → [B, outputDim]; the mean divides by max(Σmask, 1). */
export function pool(params: ParamTensors, h: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  const normed = layerNorm(h, params["out.ln.gamma"], params["out.ln.beta"]);
  const summed = tf.sum(tf.mul(normed, tf.expandDims(mask, 2)), 1);
  const count = tf.maximum(tf.sum(mask, 1, true), 1);
  return linear(tf.div(summed, count), params["out.proj.w"], params["out.proj.b"]) as tf.Tensor2D;
}

export interface EncodeResult {
  /** e_1 … e_steps, each [B, outputDim], unnormalised. */
  embeddings: tf.Tensor2D[];
  /** h_1 … h_steps, each [B,T,H] (before the output LayerNorm). */
  states: tf.Tensor3D[];
}

export interface EncodeOptions {
  /** Gradient checkpointing: recompute each block application in the backward pass instead of keeping its
   * activations (lower peak memory for about one extra forward pass). Same values and gradients; default false. */
  checkpoint?: boolean;
}

function headsFor(params: ParamTensors): number {
  const arch = architectureOf(params);
  if (arch) return arch.heads;
  // Token mixing has no heads: a mixer-only record runs without knowing the count.
  if (!("block.attn.wq" in params)) return 1;
  throw new Error("forward: head count unknown for these params (not created by initParams/paramsFromWeights); pass heads");
}

/** Full forward pass returning embeddings and hidden states of every step. */
export function encode(
  params: ParamTensors,
  inputIds: tf.Tensor2D,
  mask: tf.Tensor2D,
  steps: number,
  heads: number = headsFor(params),
  options: EncodeOptions = {},
): EncodeResult {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  const x = embedTokens(params, inputIds);
  const ctx = blockContext(params, mask);
  const embeddings: tf.Tensor2D[] = [];
  const states: tf.Tensor3D[] = [];
  const apply = options.checkpoint ? checkpointedStep : step;
  let h: tf.Tensor3D = tf.zerosLike(x);
  for (let t = 0; t < steps; t++) {
    h = apply(params, h, x, ctx, heads);
    states.push(h);
    embeddings.push(pool(params, h, mask));
  }
  return { embeddings, states };
}

/**
 * e_1 … e_steps for a batch: inputIds int32 [B,T], mask float32 [B,T] (1 token, 0 padding).
 * The head count is not recoverable from weight shapes: it is read from the architecture that initParams /
 * paramsFromWeights recorded for this params object, or pass `heads` explicitly (e.g. for a rebuilt params record).
 * `options.checkpoint` turns on gradient checkpointing (see EncodeOptions).
 */
export function forward(
  params: ParamTensors,
  inputIds: tf.Tensor2D,
  mask: tf.Tensor2D,
  steps: number,
  heads?: number,
  options: EncodeOptions = {},
): tf.Tensor2D[] {
  return encode(params, inputIds, mask, steps, heads ?? headsFor(params), options).embeddings;
}

/**
 * Builds the two ONNX graphs of a TAESR artifact variant (spec.ts GRAPH_IO) from trained weights, by hand.
 *
 *   embed.onnx: input_ids int64 [batch,seq] → x float32 [batch,seq,H]
 *   step.onnx:  h, x float32 [batch,seq,H], attention_mask float32 [batch,seq] → h_next [batch,seq,H], embedding [batch,outputDim]
 *
 * The maths is exactly src/model/spec.ts (and training/src/model/forward.ts); the export parity test holds them equal.
 * Variants:
 * - fp32: MatMul/Add/LayerNormalization/Softmax/Gather…, all weights float32 (the origin's model).
 * - int8 (edge): every weight matrix is int8 per output channel and runs as
 *   DynamicQuantizeLinear(activations, uint8) → MatMulInteger → Cast → Mul(act_scale · w_scale[col]) → Add(bias);
 *   the token-embedding table is int8 per row with a float scale per row (Gather rows → Cast → Mul by gathered scale).
 *   LayerNorm parameters, biases, the position table and the attention products (activation × activation) stay float32.
 * Batch and sequence stay symbolic ("batch", "seq") in both variants.
 *
 * @module
 */
import { ATTENTION_MASK_VALUE, LAYER_NORM_EPS, OPSET_VERSION, type TaesrArchitecture, type WeightName } from "../../../src/model/spec.js";
import { attr, GraphBuilder } from "./graph-builder.js";
import { DataType } from "./onnx-proto.js";
import { quantizePerColumn, quantizePerRow } from "./quantize.js";

export type Variant = "fp32" | "int8";
export type Weights = Record<WeightName, Float32Array>;

const BATCH = "batch";
const SEQ = "seq";

interface ModelMeta {
  /** Free-form strings stored as ONNX metadata_props (artifact name, version…). */
  metadata?: Record<string, string>;
}

/** Dense layer y = x·W + b in the variant's arithmetic. Quantised activations are shared between layers that read the
 * same input (Q, K and V all read LN1's output), so each activation tensor is quantised once. */
class DenseEmitter {
  private readonly quantized = new Map<string, { q: string; scale: string; zeroPoint: string }>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly variant: Variant,
    private readonly weights: Weights,
  ) {}

  emit(x: string, wName: WeightName, bName: WeightName, inDim: number, outDim: number): string {
    const g = this.g;
    const b = g.initializerF32(bName, [outDim], this.weights[bName]);
    if (this.variant === "fp32") {
      const w = g.initializerF32(wName, [inDim, outDim], this.weights[wName]);
      return g.op("Add", [g.op("MatMul", [x, w]), b]);
    }
    const { q, scale } = quantizePerColumn(this.weights[wName], inDim, outDim);
    const wq = g.initializer(`${wName}.int8`, DataType.INT8, [inDim, outDim], q);
    const ws = g.initializerF32(`${wName}.scale`, [outDim], scale);
    let act = this.quantized.get(x);
    if (!act) {
      const [aq, as, az] = g.node("DynamicQuantizeLinear", [x], {}, [`${x}_q`, `${x}_scale`, `${x}_zero_point`]) as [string, string, string];
      act = { q: aq, scale: as, zeroPoint: az };
      this.quantized.set(x, act);
    }
    const acc = g.op("MatMulInteger", [act.q, wq, act.zeroPoint]);
    const accF = g.op("Cast", [acc], { to: attr.int(DataType.FLOAT) });
    const combinedScale = g.op("Mul", [act.scale, ws]);
    return g.op("Add", [g.op("Mul", [accF, combinedScale]), b]);
  }
}

function layerNorm(g: GraphBuilder, x: string, weights: Weights, gamma: WeightName, beta: WeightName, H: number): string {
  const scale = g.initializerF32(gamma, [H], weights[gamma]);
  const bias = g.initializerF32(beta, [H], weights[beta]);
  return g.op("LayerNormalization", [x, scale, bias], { axis: attr.int(-1), epsilon: attr.float(LAYER_NORM_EPS) });
}

/** gelu_tanh(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), written out literally as in spec.ts. */
function geluTanh(g: GraphBuilder, z: string): string {
  const z3 = g.op("Mul", [g.op("Mul", [z, z]), z]);
  const inner = g.op("Add", [z, g.op("Mul", [z3, g.scalarF32("gelu_a", 0.044715)])]);
  const t = g.op("Tanh", [g.op("Mul", [inner, g.scalarF32("gelu_c", Math.sqrt(2 / Math.PI))])]);
  const half = g.op("Mul", [z, g.scalarF32("half", 0.5)]);
  return g.op("Mul", [half, g.op("Add", [t, g.scalarF32("one", 1)])]);
}

/** embed.onnx: x = tokenEmbedding[ids] + positionEmbedding[0..seq). */
export function buildEmbedGraph(arch: TaesrArchitecture, weights: Weights, variant: Variant, meta: ModelMeta = {}): Uint8Array {
  const { vocabSize: V, hidden: H, maxLength: L } = arch;
  const g = new GraphBuilder(`taesr_embed_${variant}`);
  const ids = g.input("input_ids", DataType.INT64, [BATCH, SEQ]);

  let tokens: string;
  if (variant === "fp32") {
    const table = g.initializerF32("embed.token", [V, H], weights["embed.token"]);
    tokens = g.op("Gather", [table, ids], { axis: attr.int(0) });
  } else {
    const { q, scale } = quantizePerRow(weights["embed.token"], V, H);
    const table = g.initializer("embed.token.int8", DataType.INT8, [V, H], q);
    // [V,1] so the gathered scales are [batch,seq,1] and broadcast over H without an Unsqueeze.
    const scales = g.initializerF32("embed.token.scale", [V, 1], scale);
    const rows = g.op("Cast", [g.op("Gather", [table, ids], { axis: attr.int(0) })], { to: attr.int(DataType.FLOAT) });
    tokens = g.op("Mul", [rows, g.op("Gather", [scales, ids], { axis: attr.int(0) })]);
  }

  // positionEmbedding[0..seq): seq is read from the input's runtime shape, so the graph keeps a dynamic sequence axis.
  const positions = g.initializerF32("embed.position", [L, H], weights["embed.position"]);
  const seqLen = g.op("Slice", [g.op("Shape", [ids]), g.constI64("one_i64", [1]), g.constI64("two_i64", [2])]);
  const pos = g.op("Slice", [positions, g.constI64("zero_i64", [0]), seqLen, g.constI64("axis0", [0])]);
  const x = g.op("Add", [tokens, pos]);
  g.output(x, "x", DataType.FLOAT, [BATCH, SEQ, H]);
  return g.toModelBytes({ opset: OPSET_VERSION, docString: `TAESR embed (${variant})`, metadata: meta.metadata });
}

/** step.onnx: one application of the shared block plus the pooled, projected embedding of the new state. */
export function buildStepGraph(arch: TaesrArchitecture, weights: Weights, variant: Variant, meta: ModelMeta = {}): Uint8Array {
  const { hidden: H, heads, ffn: F, outputDim: D } = arch;
  const dh = H / heads;
  if (!Number.isInteger(dh)) throw new Error(`hidden ${H} is not divisible by heads ${heads}`);
  const g = new GraphBuilder(`taesr_step_${variant}`);
  const dense = new DenseEmitter(g, variant, weights);
  const h = g.input("h", DataType.FLOAT, [BATCH, SEQ, H]);
  const x = g.input("x", DataType.FLOAT, [BATCH, SEQ, H]);
  const mask = g.input("attention_mask", DataType.FLOAT, [BATCH, SEQ]);

  // u = h + x ; a = MHA(LN1(u))
  const u = g.op("Add", [h, x]);
  const n1 = layerNorm(g, u, weights, "block.ln1.gamma", "block.ln1.beta", H);
  const q = dense.emit(n1, "block.attn.wq", "block.attn.bq", H, H);
  const k = dense.emit(n1, "block.attn.wk", "block.attn.bk", H, H);
  const v = dense.emit(n1, "block.attn.wv", "block.attn.bv", H, H);
  const headShape = g.constI64("head_shape", [0, 0, heads, dh]); // 0 = keep batch / seq
  const split = (t: string, perm: number[]): string => g.op("Transpose", [g.op("Reshape", [t, headShape])], { perm: attr.ints(perm) });
  const qh = split(q, [0, 2, 1, 3]); // [B,heads,T,dh]
  const kt = split(k, [0, 2, 3, 1]); // [B,heads,dh,T]
  const vh = split(v, [0, 2, 1, 3]); // [B,heads,T,dh]
  const scores = g.op("Mul", [g.op("MatMul", [qh, kt]), g.scalarF32("attn_scale", 1 / Math.sqrt(dh))]);
  // Additive key-padding bias: (1 − mask)·(−1e9), shaped [B,1,1,T].
  const padding = g.op("Sub", [g.scalarF32("one", 1), mask]);
  const bias = g.op("Unsqueeze", [g.op("Mul", [padding, g.scalarF32("mask_value", ATTENTION_MASK_VALUE)]), g.constI64("bias_axes", [1, 2])]);
  const probs = g.op("Softmax", [g.op("Add", [scores, bias])], { axis: attr.int(-1) });
  const ctx = g.op("Transpose", [g.op("MatMul", [probs, vh])], { perm: attr.ints([0, 2, 1, 3]) });
  const merged = g.op("Reshape", [ctx, g.constI64("merge_shape", [0, 0, H])]);
  const a = dense.emit(merged, "block.attn.wo", "block.attn.bo", H, H);

  // v = u + a ; m = W2·gelu(W1·LN2(v) + b1) + b2 ; h_next = h + a + m
  const vRes = g.op("Add", [u, a]);
  const n2 = layerNorm(g, vRes, weights, "block.ln2.gamma", "block.ln2.beta", H);
  const f = geluTanh(g, dense.emit(n2, "block.ffn.w1", "block.ffn.b1", H, F));
  const m = dense.emit(f, "block.ffn.w2", "block.ffn.b2", F, H);
  const hNext = g.op("Add", [g.op("Add", [h, a]), m]);

  // embedding = proj(maskedMean(LNout(h_next))), the mean dividing by max(Σmask, 1)
  const normed = layerNorm(g, hNext, weights, "out.ln.gamma", "out.ln.beta", H);
  const mask3 = g.op("Unsqueeze", [mask, g.constI64("mask_axes", [2])]);
  const axis1 = g.constI64("axis1", [1]);
  const summed = g.op("ReduceSum", [g.op("Mul", [normed, mask3]), axis1], { keepdims: attr.int(0) });
  const count = g.op("Max", [g.op("ReduceSum", [mask, axis1], { keepdims: attr.int(1) }), g.scalarF32("one", 1)]);
  const pooled = g.op("Div", [summed, count]);
  const embedding = dense.emit(pooled, "out.proj.w", "out.proj.b", H, D);

  g.output(hNext, "h_next", DataType.FLOAT, [BATCH, SEQ, H]);
  g.output(embedding, "embedding", DataType.FLOAT, [BATCH, D]);
  return g.toModelBytes({ opset: OPSET_VERSION, docString: `TAESR step (${variant})`, metadata: meta.metadata });
}

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
 * - int4 (smaller edge): embed.onnx holds the token table at 4 bits (src/model/int4-table.ts: groups of 32 values with a
 *   float16 scale each), unpacked in the graph with float ops every runtime has (Cast, Mul, Floor, Sub, Concat,
 *   Reshape); its step graph is the int8 one (the artifact lists int8/step.onnx for both variants).
 * - int8w (edge, fp32 fidelity): the step graph and the late head store every matrix int8 per output channel at the
 *   full ±127 range, as Cast → Mul(w_scale[col]) → MatMul (int8AsFloat). The dequantisation reads initializers only, so
 *   ORT's constant folding turns it into a float matrix once, when the session is created: the files are int8's size,
 *   the arithmetic fp32's, and nothing depends on the batch (int8's DynamicQuantizeLinear takes one activation scale
 *   per batch, so a text's vector moves with the texts beside it). Written with Cast/Mul rather than DequantizeLinear
 *   on purpose: ORT's QDQ fusion rewrites DequantizeLinear → MatMul into an integer MatMul on requantised activations,
 *   which is exactly the error this variant exists to avoid (the int8 step moves SciFact test NDCG@10 by −2.2 % of
 *   fp32; int8w by −0.6 %). Its embed graph is int8's (a Gather with per-row scales: no activation is quantised), and so is
 *   its sparse head: the vocabulary projection is the costliest matrix of the model, and in float it runs 1.8× slower
 *   under onnxruntime-web (222 vs 125 ms per 16 × 128 tokens), for term weights whose ranking int8 keeps.
 * Batch and sequence stay symbolic ("batch", "seq") in every variant.
 * Blocks (spec.ts): the step graph holds the token-mixing sub-layer (mlp_mixer, hybrid), the attention sub-layer
 * (self_attention, hybrid) and the FFN. The token mixer's [L,L] matrices are cut to the input's length T at run time
 * (Slice by the sequence length read from h's shape: rows of Wt1, columns of Wt2 and bt2); in int8 they are quantised
 * per column like every matrix, and the scales are sliced with their columns. A self-attention graph is node for node
 * what it was before the mixer existed (same names, same order: byte-identical).
 * Heads, each its own graph on the final hidden state (only for architectures that have the head): sparse.onnx
 * (SPLADE-style term weights) and late.onnx (late-interaction token vectors).
 *
 * @module
 */
import {
  ATTENTION_MASK_VALUE,
  LAYER_NORM_EPS,
  OPSET_VERSION,
  hasAttention,
  hasLateHead,
  hasMixer,
  hasSparseHead,
  type ModelVariant,
  type TaesrArchitecture,
  type WeightName,
} from "../../../src/model/spec.js";
import { attr, GraphBuilder } from "./graph-builder.js";
import { DataType } from "./onnx-proto.js";
import { INT4_GROUP_SIZE, INT8_MAX, quantizeInt4Groups, quantizePerColumn, quantizePerRow } from "./quantize.js";
import { INT4_CENTRE } from "../../../src/model/int4-table.js";

/** The artifact variants (src/model/spec.ts MODEL_VARIANTS). */
export type Variant = ModelVariant;
/** The builds of embed.onnx. */
export type EmbedVariant = "fp32" | "int8" | "int4";
/** The builds of step.onnx. */
export type StepVariant = "fp32" | "int8" | "int8w";
/** The builds of the heads' graphs (sparse.onnx, late.onnx). */
export type HeadVariant = "fp32" | "int8" | "int8w";
/** Which build of each graph a variant runs: variants share every graph they do not change. */
export const VARIANT_GRAPHS: Record<Variant, { embed: EmbedVariant; step: StepVariant; sparse: HeadVariant; late: HeadVariant }> = {
  fp32: { embed: "fp32", step: "fp32", sparse: "fp32", late: "fp32" },
  int8: { embed: "int8", step: "int8", sparse: "int8", late: "int8" },
  int4: { embed: "int4", step: "int8", sparse: "int8", late: "int8" },
  int8w: { embed: "int8", step: "int8w", sparse: "int8", late: "int8w" },
};
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
    private readonly variant: StepVariant,
    private readonly weights: Weights,
  ) {}

  /**
   * `slice` cuts the stored [inDim,outDim] matrix at run time to its first `length` rows (axis 0) or columns (axis 1,
   * with the bias and the int8 scales), `length` being a 1-D int64 value of the graph: the token mixer's weights are
   * sized by maxLength and used at the input's length.
   */
  emit(x: string, wName: WeightName, bName: WeightName, inDim: number, outDim: number, slice?: { axis: 0 | 1; length: string }): string {
    const g = this.g;
    const cut = (t: string, axis: 0 | 1): string =>
      g.op("Slice", [t, g.constI64("zero_i64", [0]), slice!.length, g.constI64(`axis${axis}`, [axis])]);
    const cutColumns = (t: string): string => (slice?.axis === 1 ? cut(t, 0) : t); // a per-column vector: its axis 0
    const cutMatrix = (t: string): string => (slice ? cut(t, slice.axis) : t);
    const b = cutColumns(g.initializerF32(bName, [outDim], this.weights[bName]));
    if (this.variant === "fp32") {
      const w = cutMatrix(g.initializerF32(wName, [inDim, outDim], this.weights[wName]));
      return g.op("Add", [g.op("MatMul", [x, w]), b]);
    }
    if (this.variant === "int8w") {
      const w = int8AsFloat(g, wName, this.weights[wName], inDim, outDim, slice ? { cutMatrix, cutColumns } : undefined);
      return g.op("Add", [g.op("MatMul", [x, w]), b]);
    }
    const { q, scale } = quantizePerColumn(this.weights[wName], inDim, outDim);
    const wq = cutMatrix(g.initializer(`${wName}.int8`, DataType.INT8, [inDim, outDim], q));
    const ws = cutColumns(g.initializerF32(`${wName}.scale`, [outDim], scale));
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

/**
 * The int8w form of a [rows, cols] weight matrix: stored int8 per column at the full ±127 range with a float scale per
 * column, and turned back into floats by Cast → Mul, which read initializers only (ORT folds them into a float
 * constant when the session is created). `cut` slices the stored matrix (and the scales with its columns) first, for
 * the token mixer's length-sized matrices.
 */
function int8AsFloat(
  g: GraphBuilder,
  name: string,
  w: Float32Array,
  rows: number,
  cols: number,
  cut?: { cutMatrix: (t: string) => string; cutColumns: (t: string) => string },
): string {
  const { q, scale } = quantizePerColumn(w, rows, cols, INT8_MAX);
  const wq = g.initializer(`${name}.int8`, DataType.INT8, [rows, cols], q);
  const ws = g.initializerF32(`${name}.scale`, [cols], scale);
  const asFloat = g.op("Cast", [cut ? cut.cutMatrix(wq) : wq], { to: attr.int(DataType.FLOAT) });
  return g.op("Mul", [asFloat, cut ? cut.cutColumns(ws) : ws]);
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

/**
 * The gathered rows of the 4-bit token table as float32 [batch, seq, H], computing exactly dequantizeInt4Table's values.
 * Only the rows gathered are unpacked, so the cost is per token, not per table. The unpacking is float arithmetic on
 * integers below 256 (exact in float32) rather than bit operations (BitwiseAnd needs opset 18; these graphs are 17):
 * Cast/Floor/Mul/Sub/Concat run on every onnxruntime build, and test/unit/int4-table.test.ts runs the graph on
 * onnxruntime-node and -web (test/worker/edge-model.test.ts inside workerd).
 */
function int4TokenRows(g: GraphBuilder, table: Float32Array, ids: string, V: number, H: number): string {
  const groupSize = H % INT4_GROUP_SIZE === 0 ? INT4_GROUP_SIZE : H;
  const q = quantizeInt4Groups(table, V, H, groupSize);
  const groups = H / groupSize;
  const codes = g.initializer("embed.token.int4", DataType.UINT8, [V, H / 2], q.codes);
  // [V, groups, 1]: gathered, the scales are [batch, seq, groups, 1] and broadcast over their group without an Unsqueeze.
  const scales = g.initializer("embed.token.int4.scale", DataType.FLOAT16, [V, groups, 1], q.scales);
  const gather = (t: string): string => g.op("Gather", [t, ids], { axis: attr.int(0) });
  const bytes = g.op("Cast", [gather(codes)], { to: attr.int(DataType.FLOAT) }); // [B,T,H/2], 0…255
  const high = g.op("Floor", [g.op("Mul", [bytes, g.scalarF32("one_16th", 1 / 16)])]); // values H/2 … H−1
  const low = g.op("Sub", [bytes, g.op("Mul", [high, g.scalarF32("sixteen", 16)])]); // values 0 … H/2−1
  const nibbles = g.op("Concat", [low, high], { axis: attr.int(-1) }); // [B,T,H] in row order
  const centred = g.op("Sub", [nibbles, g.scalarF32("int4_centre", INT4_CENTRE)]);
  const grouped = g.op("Reshape", [centred, g.constI64("int4_group_shape", [0, 0, groups, groupSize])]);
  const scaled = g.op("Mul", [grouped, g.op("Cast", [gather(scales)], { to: attr.int(DataType.FLOAT) })]);
  return g.op("Reshape", [scaled, g.constI64("int4_row_shape", [0, 0, H])]);
}

/** embed.onnx: x = tokenEmbedding[ids] + positionEmbedding[0..seq). */
export function buildEmbedGraph(arch: TaesrArchitecture, weights: Weights, variant: EmbedVariant, meta: ModelMeta = {}): Uint8Array {
  const { vocabSize: V, hidden: H, maxLength: L } = arch;
  const g = new GraphBuilder(`taesr_embed_${variant}`);
  const ids = g.input("input_ids", DataType.INT64, [BATCH, SEQ]);

  let tokens: string;
  if (variant === "fp32") {
    const table = g.initializerF32("embed.token", [V, H], weights["embed.token"]);
    tokens = g.op("Gather", [table, ids], { axis: attr.int(0) });
  } else if (variant === "int4") {
    tokens = int4TokenRows(g, weights["embed.token"], ids, V, H);
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
export function buildStepGraph(arch: TaesrArchitecture, weights: Weights, variant: StepVariant, meta: ModelMeta = {}): Uint8Array {
  const { hidden: H, heads, ffn: F, outputDim: D } = arch;
  const dh = H / heads;
  if (hasAttention(arch) && !Number.isInteger(dh)) throw new Error(`hidden ${H} is not divisible by heads ${heads}`);
  const g = new GraphBuilder(`taesr_step_${variant}`);
  const dense = new DenseEmitter(g, variant, weights);
  const h = g.input("h", DataType.FLOAT, [BATCH, SEQ, H]);
  const x = g.input("x", DataType.FLOAT, [BATCH, SEQ, H]);
  const mask = g.input("attention_mask", DataType.FLOAT, [BATCH, SEQ]);

  // u = h + x, then each sub-layer of the block adds its branch to the residual stream (spec.ts).
  const u = g.op("Add", [h, x]);
  let stream = u;
  const branches: string[] = [];
  // Σmask clamped to 1, [B,1]: the pooled mean's divisor, and the token mixer's (made once, where first needed: a
  // self-attention graph keeps its node order).
  let count: string | undefined;
  const tokenCount = (): string =>
    (count ??= g.op("Max", [g.op("ReduceSum", [mask, g.constI64("axis1", [1])], { keepdims: attr.int(1) }), g.scalarF32("one", 1)]));

  if (hasMixer(arch)) {
    // a₁ = Mix(LNmix(u), mask): Zᵀ = (LNmix(u) ⊙ mask / max(Σmask, 1))ᵀ [B,H,T]; G = gelu(Zᵀ·Wt1[0..T) + bt1);
    // a₁ = (G·Wt2[:,0..T) + bt2[0..T))ᵀ
    const L = arch.maxLength;
    const seqLen = g.op("Slice", [g.op("Shape", [h]), g.constI64("one_i64", [1]), g.constI64("two_i64", [2])]);
    const mixWeights = g.op("Unsqueeze", [g.op("Div", [mask, tokenCount()]), g.constI64("mask_axes", [2])]);
    const n0 = layerNorm(g, stream, weights, "block.mix.ln.gamma", "block.mix.ln.beta", H);
    const zt = g.op("Transpose", [g.op("Mul", [n0, mixWeights])], { perm: attr.ints([0, 2, 1]) });
    const hidden = geluTanh(g, dense.emit(zt, "block.mix.w1", "block.mix.b1", L, L, { axis: 0, length: seqLen }));
    const mixed = dense.emit(hidden, "block.mix.w2", "block.mix.b2", L, L, { axis: 1, length: seqLen });
    const a1 = g.op("Transpose", [mixed], { perm: attr.ints([0, 2, 1]) });
    stream = g.op("Add", [stream, a1]);
    branches.push(a1);
  }

  if (hasAttention(arch)) {
    // a₂ = MHA(LN1(stream))
    const n1 = layerNorm(g, stream, weights, "block.ln1.gamma", "block.ln1.beta", H);
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
    const a2 = dense.emit(merged, "block.attn.wo", "block.attn.bo", H, H);
    stream = g.op("Add", [stream, a2]);
    branches.push(a2);
  }

  // m = W2·gelu(W1·LN2(stream) + b1) + b2 ; h_next = ((h + a₁) + a₂) + m, the branches that exist, in that order
  const n2 = layerNorm(g, stream, weights, "block.ln2.gamma", "block.ln2.beta", H);
  const f = geluTanh(g, dense.emit(n2, "block.ffn.w1", "block.ffn.b1", H, F));
  const m = dense.emit(f, "block.ffn.w2", "block.ffn.b2", F, H);
  const hNext = g.op("Add", [branches.reduce((acc, a) => g.op("Add", [acc, a]), h), m]);

  // embedding = proj(maskedMean(LNout(h_next))), the mean dividing by max(Σmask, 1)
  const normed = layerNorm(g, hNext, weights, "out.ln.gamma", "out.ln.beta", H);
  const mask3 = g.op("Unsqueeze", [mask, g.constI64("mask_axes", [2])]);
  const axis1 = g.constI64("axis1", [1]);
  const summed = g.op("ReduceSum", [g.op("Mul", [normed, mask3]), axis1], { keepdims: attr.int(0) });
  const pooled = g.op("Div", [summed, tokenCount()]);
  const embedding = dense.emit(pooled, "out.proj.w", "out.proj.b", H, D);

  g.output(hNext, "h_next", DataType.FLOAT, [BATCH, SEQ, H]);
  g.output(embedding, "embedding", DataType.FLOAT, [BATCH, D]);
  return g.toModelBytes({ opset: OPSET_VERSION, docString: `TAESR step (${variant})`, metadata: meta.metadata });
}

/**
 * sparse.onnx (architecture.sparseHead): the SPLADE-style head of spec.ts on the final hidden state,
 *   h float32 [batch,seq,H], attention_mask float32 [batch,seq] → sparse_weights float32 [batch,V]
 *   z = LNs(h)·Eᵀ + b;  w = log(1 + ReLU(ReduceMax_seq(z + (1 − mask)·(−1e9))))
 * (ONNX has no Log1p: Log(1 + ·), the same number within float32 rounding of 1 + x). The table is stored transposed
 * [H,V] so the product is a plain MatMul. fp32 keeps it float32 (4·V·H bytes); int8 quantises it per vocabulary
 * column and runs DynamicQuantizeLinear → MatMulInteger like every matrix of the int8 step graph (V·H bytes + V
 * scales): the head's output feeds a ranking of term weights, where that error is small next to the weights' own
 * spread. The int4 and int8w variants run the int8 sparse graph (VARIANT_GRAPHS); an int8w build (the same int8 table,
 * multiplied in float by int8AsFloat) exists for comparison, slower on WASM.
 */
export function buildSparseGraph(arch: TaesrArchitecture, weights: Weights, variant: HeadVariant, meta: ModelMeta = {}): Uint8Array {
  if (!hasSparseHead(arch)) throw new Error("buildSparseGraph: the architecture has no sparse head (arch.sparseHead)");
  const { vocabSize: V, hidden: H } = arch;
  const g = new GraphBuilder(`taesr_sparse_${variant}`);
  const h = g.input("h", DataType.FLOAT, [BATCH, SEQ, H]);
  const mask = g.input("attention_mask", DataType.FLOAT, [BATCH, SEQ]);
  const n = layerNorm(g, h, weights, "sparse.ln.gamma", "sparse.ln.beta", H);
  const table = weights["embed.token"];
  const tableT = new Float32Array(H * V);
  for (let v = 0; v < V; v++) for (let i = 0; i < H; i++) tableT[i * V + v] = table[v * H + i]!;
  const bias = g.initializerF32("sparse.bias", [V], weights["sparse.bias"]);
  const padding = g.op("Sub", [g.scalarF32("one", 1), mask]);
  let m: string;
  if (variant !== "int8") {
    const table = variant === "fp32" ? g.initializerF32("sparse.table_t", [H, V], tableT) : int8AsFloat(g, "sparse.table_t", tableT, H, V);
    const z = g.op("Add", [g.op("MatMul", [n, table]), bias]);
    const maskBias = g.op("Unsqueeze", [g.op("Mul", [padding, g.scalarF32("mask_value", ATTENTION_MASK_VALUE)]), g.constI64("mask_axes", [2])]);
    m = g.op("ReduceMax", [g.op("Add", [z, maskBias])], { axes: attr.ints([1]), keepdims: attr.int(0) });
  } else {
    // The max over tokens is taken on the integer products, before scaling: the activation scale and every column's
    // scale are positive, so scaling (and adding the column's bias) after the max gives bit for bit the same weights
    // as scaling first, while the [batch, seq, V] product — 8k values per token — is passed over twice (mask, max)
    // instead of five times (cast, scale, bias, mask, max). |products| ≤ 255·127·H ≪ 2³⁰, the padding offset.
    const { q, scale } = quantizePerColumn(tableT, H, V);
    const wq = g.initializer("sparse.table_t.int8", DataType.INT8, [H, V], q);
    const ws = g.initializerF32("sparse.table_t.scale", [V], scale);
    const [aq, as, az] = g.node("DynamicQuantizeLinear", [n], {}, [`${n}_q`, `${n}_scale`, `${n}_zero_point`]) as [string, string, string];
    const acc = g.op("MatMulInteger", [aq, wq, az]);
    const paddingOffset = g.op("Cast", [g.op("Mul", [padding, g.scalarF32("int_mask_value", -(2 ** 30))])], { to: attr.int(DataType.INT32) });
    const masked = g.op("Add", [acc, g.op("Unsqueeze", [paddingOffset, g.constI64("mask_axes", [2])])]);
    const maxAcc = g.op("ReduceMax", [masked], { axes: attr.ints([1]), keepdims: attr.int(0) });
    m = g.op("Add", [g.op("Mul", [g.op("Cast", [maxAcc], { to: attr.int(DataType.FLOAT) }), g.op("Mul", [as, ws])]), bias]);
  }
  const w = g.op("Log", [g.op("Add", [g.op("Relu", [m]), g.scalarF32("one", 1)])]);
  g.output(w, "sparse_weights", DataType.FLOAT, [BATCH, V]);
  return g.toModelBytes({ opset: OPSET_VERSION, docString: `TAESR sparse head (${variant})`, metadata: meta.metadata });
}

/**
 * late.onnx (architecture.lateHead): the late-interaction head of spec.ts on the final hidden state,
 *   h float32 [batch,seq,H], attention_mask float32 [batch,seq] → token_vectors float32 [batch,seq,dim]
 *   u = LNout(h)·W_late;  v = u / √(Σu² + 1e-12) · mask      (padding rows come out 0, so a consumer that forgets to
 *                                                              drop them adds no spurious match of a real token)
 * The output LayerNorm's γ/β are stored here again (2H floats): the step graph applies them only inside the pooling.
 * fp32 keeps W_late float32; int8 quantises it per output column and runs DynamicQuantizeLinear → MatMulInteger like
 * every matrix of the int8 step graph, before the normalisation (which removes the scale error's common part); int8w
 * stores the same int8 matrix and multiplies in float (int8AsFloat). The int4 variant runs the int8 late graph
 * (VARIANT_GRAPHS), as it runs the int8 step.
 */
export function buildLateGraph(arch: TaesrArchitecture, weights: Weights, variant: HeadVariant, meta: ModelMeta = {}): Uint8Array {
  if (!hasLateHead(arch) || arch.lateHead === undefined) throw new Error("buildLateGraph: the architecture has no late-interaction head (arch.lateHead)");
  const { hidden: H } = arch;
  const dim = arch.lateHead.dim;
  const g = new GraphBuilder(`taesr_late_${variant}`);
  const h = g.input("h", DataType.FLOAT, [BATCH, SEQ, H]);
  const mask = g.input("attention_mask", DataType.FLOAT, [BATCH, SEQ]);
  const n = layerNorm(g, h, weights, "out.ln.gamma", "out.ln.beta", H);
  let u: string;
  if (variant !== "int8") {
    const w = variant === "fp32" ? g.initializerF32("late.proj.w", [H, dim], weights["late.proj.w"]) : int8AsFloat(g, "late.proj.w", weights["late.proj.w"], H, dim);
    u = g.op("MatMul", [n, w]);
  } else {
    const { q, scale } = quantizePerColumn(weights["late.proj.w"], H, dim);
    const wq = g.initializer("late.proj.w.int8", DataType.INT8, [H, dim], q);
    const ws = g.initializerF32("late.proj.w.scale", [dim], scale);
    const [aq, as, az] = g.node("DynamicQuantizeLinear", [n], {}, [`${n}_q`, `${n}_scale`, `${n}_zero_point`]) as [string, string, string];
    const acc = g.op("Cast", [g.op("MatMulInteger", [aq, wq, az])], { to: attr.int(DataType.FLOAT) });
    u = g.op("Mul", [acc, g.op("Mul", [as, ws])]);
  }
  const squares = g.op("ReduceSum", [g.op("Mul", [u, u]), g.constI64("last_axis", [-1])], { keepdims: attr.int(1) });
  const norm = g.op("Sqrt", [g.op("Add", [squares, g.scalarF32("norm_eps", 1e-12)])]);
  const unit = g.op("Div", [u, norm]);
  const v = g.op("Mul", [unit, g.op("Unsqueeze", [mask, g.constI64("mask_axes", [2])])]);
  g.output(v, "token_vectors", DataType.FLOAT, [BATCH, SEQ, dim]);
  return g.toModelBytes({ opset: OPSET_VERSION, docString: `TAESR late-interaction head (${variant})`, metadata: meta.metadata });
}

/**
 * TAESRModel: the TAESR forward pass written out in plain TypeScript — no ONNX, no TensorFlow.js — so the maths of
 * spec.ts can be run, inspected and tested anywhere (Node, Workers, browsers) from a {@link TAESRConfig} and a weight
 * record, for every block architecture (self_attention, mlp_mixer, hybrid). The ONNX graphs
 * (training/src/onnx/taesr-graphs.ts) and the tfjs forward (training/src/model/forward.ts) compute the same thing;
 * test/unit/taesr-model.test.ts and test/unit/taesr-blocks.test.ts hold this model equal to the fp32 graphs.
 *
 *   const model = new TAESRModel(config, weights);            // weights omitted → seeded random init (as training's)
 *   const out = model.forward({ inputIds, attentionMask }, { depth: "auto", earlyExit: true });
 *   out.poolerOutput[b]      // e at the last step run for row b, [outputDim], unnormalised like the step graph's output
 *   out.lastHiddenState[b]   // h at that step, row-major [T, hidden] (padding positions included, as h_next)
 *   out.depth[b], out.routed[b]
 *   model.matryoshkaSlice(out.poolerOutput[b]!, 128)           // prefix, L2-normalised
 *   model.sparse(out.lastHiddenState[b]!, mask[b])             // with config.sparseHead: term weights [vocabSize] (≥ 0)
 *   model.tokenVectors(out.lastHiddenState[b]!, mask[b])       // with config.lateHead: one unit vector per real token
 *
 * Depth is per row: rows are independent in the maths (attention and token mixing are masked per row, pooling is per
 * row), so each row
 * runs its own routed depth and stops on its own convergence. TaesrEncoder instead runs a whole batch at the depth of
 * its hardest text and exits only when every row has converged; for a one-row batch the two agree step for step.
 *
 * Numerics: tensors are float32 (as in the graphs) and every dot product accumulates in float64, so results sit within
 * float32 rounding of onnxruntime's. The padding bias is added in float32 on purpose: a query whose keys are all padding
 * then sees equal scores (−1e9 absorbs them) and attends uniformly, exactly as the graphs do.
 *
 * @module
 */
import { maxCosineDistance, prefixNormalizeRows, type TokenVectors } from "./encoder.js";
import { initialWeights } from "./init.js";
import { depthForRoute, routeByTokenCount, type Route } from "./router.js";
import {
  ATTENTION_MASK_VALUE,
  LAYER_NORM_EPS,
  blockOf,
  hasAttention,
  hasLateHead,
  hasMixer,
  hasSparseHead,
  weightNames,
  weightShapes,
  type BlockArchitecture,
  type TaesrArchitecture,
  type WeightName,
} from "./spec.js";
import {
  SUBSPACE_NAMES,
  architectureOf,
  parseTaesrConfig,
  routerRuleOf,
  type SubspaceName,
  type TAESRConfig,
  type TAESRConfigInput,
} from "./taesr-config.js";

/** The weights of the config's block (spec.ts weightNames); the other blocks' names are absent. */
export type TAESRWeights = Record<WeightName, Float32Array>;

/** The weights used as dense layers (y = xW + b), per sub-layer. The token-mixing matrices are read transposed too
 * ({@link tokenMix}), each [L,L] so the transpose swaps the sequence axes. */
const ATTENTION_MATRICES = ["block.attn.wq", "block.attn.wk", "block.attn.wv", "block.attn.wo"] as const satisfies readonly WeightName[];
const MIXER_MATRICES = ["block.mix.w1", "block.mix.w2"] as const satisfies readonly WeightName[];
const SHARED_MATRICES = ["block.ffn.w1", "block.ffn.w2", "out.proj.w"] as const satisfies readonly WeightName[];
type MatrixName = (typeof ATTENTION_MATRICES)[number] | (typeof MIXER_MATRICES)[number] | (typeof SHARED_MATRICES)[number];

/** A padded batch: B rows of the same length T (1 ≤ T ≤ maxLength). Int32Array rows and number[] rows both work. */
export interface TAESRInputs {
  inputIds: ReadonlyArray<ArrayLike<number>>;
  /** 1 = token, 0 = padding, same shape as inputIds. Default: every position is a token. */
  attentionMask?: ReadonlyArray<ArrayLike<number>>;
}

export interface TAESRForwardOptions {
  /** Recursion steps, 1…depths.hard, or "auto": each row routed by its real token count (Σ mask). Default "auto". */
  depth?: number | "auto";
  /** Stop a row once its embedding moved less than config.earlyExitEpsilon (1 − cosine) in one step. Default true. */
  earlyExit?: boolean;
}

export interface TAESROutput {
  /** Per row: e = proj(maskedMean(LNout(h))) at the last step run, [outputDim], unnormalised. */
  poolerOutput: Float32Array[];
  /** Per row: h at the last step run, row-major [T, hidden] (before the output LayerNorm). */
  lastHiddenState: Float32Array[];
  /** Per row: recursion steps actually run (below the requested depth after an early exit). */
  depth: number[];
  /** Per row: the rule router's route for its token count (reported for fixed depths too). */
  routed: Route[];
}

export interface TAESRModelOptions {
  /** Seed of the random initialisation when no weights are given. Default 42 (the training configs' seed). */
  seed?: number;
}

/** Each subspace's part of a dot product: `shares` sum to `total` (up to float64 rounding). */
export interface SubspaceShares {
  total: number;
  shares: Record<SubspaceName, number>;
}

/** T of a row-major [T, H] hidden state (T ≥ 1), checked against its mask: what the heads read. */
function hiddenRows(hiddenState: ArrayLike<number>, attentionMask: ArrayLike<number> | undefined, H: number): number {
  if (hiddenState.length === 0 || hiddenState.length % H !== 0) {
    throw new RangeError(`hiddenState must be row-major [T, ${H}] with T ≥ 1; got ${hiddenState.length} values`);
  }
  const T = hiddenState.length / H;
  if (attentionMask !== undefined && attentionMask.length !== T) {
    throw new RangeError(`attentionMask has ${attentionMask.length} entries for ${T} positions`);
  }
  return T;
}

export class TAESRModel {
  readonly config: TAESRConfig;
  readonly architecture: TaesrArchitecture;
  /** The shared block's architecture (config.block). */
  readonly block: BlockArchitecture;
  /** The weights given (not copied). Treat them as read-only: the dense layers run on transposed copies made by the
   * constructor, so a later edit would reach only part of the model. */
  readonly weights: Readonly<TAESRWeights>;
  /** The dense layers' matrices transposed once up front, for {@link linear}'s row-by-row dot products (only the
   * block's own: a mixer model has no attention matrices). */
  private readonly transposed: Partial<Record<MatrixName, Float32Array>>;

  constructor(config: TAESRConfigInput, weights?: TAESRWeights, options: TAESRModelOptions = {}) {
    this.config = parseTaesrConfig(config);
    this.architecture = architectureOf(this.config);
    this.block = blockOf(this.architecture);
    this.weights = weights === undefined ? initialWeights(this.architecture, options.seed ?? 42) : checkWeights(this.architecture, weights);
    const shapes = weightShapes(this.architecture);
    this.transposed = {};
    const matrices: readonly MatrixName[] = [
      ...(hasMixer(this.architecture) ? MIXER_MATRICES : []),
      ...(hasAttention(this.architecture) ? ATTENTION_MATRICES : []),
      ...SHARED_MATRICES,
    ];
    for (const name of matrices) {
      const [inDim, outDim] = shapes[name] as [number, number];
      this.transposed[name] = transpose(this.weights[name], inDim, outDim);
    }
  }

  forward(inputs: TAESRInputs, options: TAESRForwardOptions = {}): TAESROutput {
    const { vocabSize, outputDim: D, maxLength } = this.architecture;
    const batch = readBatch(inputs, vocabSize, maxLength);
    const { depth = "auto", earlyExit = true } = options;
    if (depth !== "auto" && !(Number.isInteger(depth) && depth >= 1 && depth <= this.config.depths.hard)) {
      throw new RangeError(`depth must be "auto" or an integer from 1 to ${this.config.depths.hard}, got ${String(depth)}`);
    }
    if (typeof earlyExit !== "boolean") throw new TypeError(`earlyExit must be a boolean, got ${typeof earlyExit}`);

    const rule = routerRuleOf(this.config);
    const epsilon = this.config.earlyExitEpsilon;
    const ws = new Workspace(batch.length, this.architecture);
    const out: TAESROutput = { poolerOutput: [], lastHiddenState: [], depth: [], routed: [] };

    for (let b = 0; b < batch.ids.length; b++) {
      const ids = batch.ids[b]!;
      const mask = batch.mask[b]!;
      let tokens = 0;
      for (const m of mask) tokens += m;
      const route = routeByTokenCount(tokens, rule);
      const target = depth === "auto" ? depthForRoute(route, this.config.depths) : depth;

      this.embed(ids, ws.x);
      ws.h.fill(0);
      let steps = 0;
      let havePrevious = false;
      while (steps < target) {
        this.step(ws, mask);
        steps++;
        // The embedding is only needed to test convergence or at the last step.
        if (!earlyExit && steps < target) continue;
        this.pool(ws, mask, ws.e);
        // Early exit compares two embeddings, so it can only trigger from step 2 on (as in TaesrEncoder).
        const converged = earlyExit && havePrevious && maxCosineDistance(ws.ePrevious, ws.e, 1, D) < epsilon;
        ws.ePrevious.set(ws.e);
        havePrevious = true;
        if (converged) break;
      }
      out.poolerOutput.push(ws.e.slice(0, D));
      out.lastHiddenState.push(ws.h.slice());
      out.depth.push(steps);
      out.routed.push(route);
    }
    return out;
  }

  /**
   * The sparse head's term weights (spec.ts; config.sparseHead) of one row's final hidden state h, row-major [T, hidden]
   * as `forward` returns it in lastHiddenState, under its mask (default: all tokens) → [vocabSize], ≥ 0:
   * w_v = log(1 + ReLU(max over real t of LNs(h_t)·E_v + b_v)), E the token table. T·V·H multiply-adds (33 M for
   * 32 tokens at V 8192, H 128), as sparse.onnx computes them.
   */
  sparse(hiddenState: ArrayLike<number>, attentionMask?: ArrayLike<number>): Float32Array {
    if (!hasSparseHead(this.architecture)) throw new Error("this model has no sparse head (config.sparseHead is not set)");
    const { hidden: H, vocabSize: V } = this.architecture;
    const T = hiddenRows(hiddenState, attentionMask, H);
    const n = new Float32Array(T * H);
    layerNorm(n, Float32Array.from(hiddenState), T, H, this.weights["sparse.ln.gamma"], this.weights["sparse.ln.beta"]);
    const table = this.weights["embed.token"];
    const bias = this.weights["sparse.bias"];
    const out = new Float32Array(V);
    for (let v = 0; v < V; v++) {
      let best = -Infinity;
      for (let t = 0; t < T; t++) {
        if (attentionMask !== undefined && !attentionMask[t]) continue;
        let z = bias[v]!;
        for (let i = 0; i < H; i++) z += n[t * H + i]! * table[v * H + i]!;
        if (z > best) best = z;
      }
      // No real token: every position is padding and the graph's max sits 1e9 below zero, so the weight is 0.
      out[v] = best > 0 ? Math.log1p(best) : 0;
    }
    return out;
  }

  /**
   * The late-interaction head's token vectors (spec.ts; config.lateHead) of one row's final hidden state h, row-major
   * [T, hidden] as `forward` returns it in lastHiddenState, under its mask (default: all tokens): v_t = u_t / √(‖u_t‖² +
   * 1e-12) with u_t = LNout(h_t)·W_late, for the real positions only, in order → [count, lateHead.dim], as late.onnx
   * computes them (which zeroes the padding rows instead of dropping them).
   */
  tokenVectors(hiddenState: ArrayLike<number>, attentionMask?: ArrayLike<number>): TokenVectors {
    const late = this.architecture.lateHead;
    if (!hasLateHead(this.architecture) || late === undefined) throw new Error("this model has no late-interaction head (config.lateHead is not set)");
    const { hidden: H } = this.architecture;
    const dim = late.dim;
    const T = hiddenRows(hiddenState, attentionMask, H);
    const n = new Float32Array(T * H);
    layerNorm(n, Float32Array.from(hiddenState), T, H, this.weights["out.ln.gamma"], this.weights["out.ln.beta"]);
    const w = this.weights["late.proj.w"];
    const rows: number[] = [];
    for (let t = 0; t < T; t++) if (attentionMask === undefined || attentionMask[t]) rows.push(t);
    const data = new Float32Array(rows.length * dim);
    const u = new Float64Array(dim);
    rows.forEach((t, r) => {
      u.fill(0);
      for (let i = 0; i < H; i++) {
        const x = n[t * H + i]!;
        for (let j = 0; j < dim; j++) u[j] = u[j]! + x * w[i * dim + j]!;
      }
      let squares = 0;
      for (let j = 0; j < dim; j++) {
        // The graph's MatMul output is float32: round before squaring, as it does.
        u[j] = Math.fround(u[j]!);
        squares += u[j]! * u[j]!;
      }
      const scale = 1 / Math.sqrt(squares + 1e-12);
      for (let j = 0; j < dim; j++) data[r * dim + j] = u[j]! * scale;
    });
    return { count: rows.length, dims: dim, data };
  }

  /** The first `dims` components, L2-normalised (a zero vector stays zero); dims must be a trained Matryoshka prefix. */
  matryoshkaSlice(vec: ArrayLike<number>, dims: number): Float32Array {
    return matryoshkaSlice(this.config, vec, dims);
  }

  /** The components of one named subspace (a copy, not normalised). */
  subspaceSlice(vec: ArrayLike<number>, name: SubspaceName): Float32Array {
    return subspaceSlice(this.config, vec, name);
  }

  /** Each subspace's part of a · b for two full-width embeddings (L2-normalise them first to split their cosine). */
  subspaceShares(a: ArrayLike<number>, b: ArrayLike<number>): SubspaceShares {
    return subspaceShares(this.config, a, b);
  }

  /** x = tokenEmbedding[ids] + positionEmbedding[0..T) into `x` [T, H]. */
  private embed(ids: Int32Array, x: Float32Array): void {
    const H = this.architecture.hidden;
    const token = this.weights["embed.token"];
    const position = this.weights["embed.position"];
    for (let t = 0; t < ids.length; t++) {
      const row = ids[t]! * H;
      for (let i = 0; i < H; i++) x[t * H + i] = token[row + i]! + position[t * H + i]!;
    }
  }

  /** A dense layer's transposed matrix; only the block's own exist (a missing one is a bug here, not bad input). */
  private matrix(name: MatrixName): Float32Array {
    const m = this.transposed[name];
    if (m === undefined) throw new Error(`internal: ${this.block} model has no matrix ${name}`);
    return m;
  }

  /** One application of the shared block, in place: h ← h + a + m (spec.ts, for this model's block). */
  private step(ws: Workspace, mask: Uint8Array): void {
    const { hidden: H, ffn: F, maxLength: L } = this.architecture;
    const w = this.weights;
    const T = ws.length;
    const n = T * H;
    for (let i = 0; i < n; i++) ws.u[i] = ws.h[i]! + ws.x[i]!;
    const mixer = hasMixer(this.architecture);
    const attention = hasAttention(this.architecture);
    if (mixer) {
      // a₁ = Mix(LNmix(u), mask); u ← u + a₁ (the attention input w in hybrid, v in mlp_mixer)
      layerNorm(ws.normed, ws.u, T, H, w["block.mix.ln.gamma"], w["block.mix.ln.beta"]);
      tokenMix(ws.mixed, ws.normed, mask, T, H, L, this.matrix("block.mix.w1"), w["block.mix.b1"], this.matrix("block.mix.w2"), w["block.mix.b2"], ws.mixT, ws.mixG);
      for (let i = 0; i < n; i++) ws.u[i] = ws.u[i]! + ws.mixed[i]!;
    }
    if (attention) {
      // a₂ = MHA(LN1(u), mask); u ← u + a₂
      this.attend(ws, mask);
      for (let i = 0; i < n; i++) ws.u[i] = ws.u[i]! + ws.a[i]!;
    }
    layerNorm(ws.normed, ws.u, T, H, w["block.ln2.gamma"], w["block.ln2.beta"]);
    linear(ws.ffn, ws.normed, T, H, this.matrix("block.ffn.w1"), w["block.ffn.b1"], F);
    for (let i = 0; i < T * F; i++) ws.ffn[i] = geluTanh(ws.ffn[i]!);
    linear(ws.m, ws.ffn, T, F, this.matrix("block.ffn.w2"), w["block.ffn.b2"], H);
    // The graph's order of additions: ((h + a₁) + a₂) + m, each rounded to float32.
    for (let i = 0; i < n; i++) {
      let acc = ws.h[i]!;
      if (mixer) acc = Math.fround(acc + ws.mixed[i]!);
      if (attention) acc = Math.fround(acc + ws.a[i]!);
      ws.h[i] = acc + ws.m[i]!;
    }
  }

  /** a = MHA(LN1(u), mask) into ws.a. */
  private attend(ws: Workspace, mask: Uint8Array): void {
    const { hidden: H, heads } = this.architecture;
    const w = this.weights;
    const T = ws.length;
    layerNorm(ws.normed, ws.u, T, H, w["block.ln1.gamma"], w["block.ln1.beta"]);
    linear(ws.q, ws.normed, T, H, this.matrix("block.attn.wq"), w["block.attn.bq"], H);
    linear(ws.k, ws.normed, T, H, this.matrix("block.attn.wk"), w["block.attn.bk"], H);
    linear(ws.v, ws.normed, T, H, this.matrix("block.attn.wv"), w["block.attn.bv"], H);
    attention(ws.context, ws.q, ws.k, ws.v, mask, T, H, heads, ws.scores, ws.acc);
    linear(ws.a, ws.context, T, H, this.matrix("block.attn.wo"), w["block.attn.bo"], H);
  }

  /** e = proj(maskedMean(LNout(h))) into `e`; the mean divides by max(Σ mask, 1). */
  private pool(ws: Workspace, mask: Uint8Array, e: Float32Array): void {
    const { hidden: H, outputDim: D } = this.architecture;
    const w = this.weights;
    const T = ws.length;
    layerNorm(ws.normed, ws.h, T, H, w["out.ln.gamma"], w["out.ln.beta"]);
    const sum = ws.acc.subarray(0, H).fill(0);
    let count = 0;
    for (let t = 0; t < T; t++) {
      if (mask[t] === 0) continue;
      count++;
      for (let i = 0; i < H; i++) sum[i] = sum[i]! + ws.normed[t * H + i]!;
    }
    const divisor = Math.max(count, 1);
    for (let i = 0; i < H; i++) ws.pooled[i] = sum[i]! / divisor;
    linear(e, ws.pooled, 1, H, this.matrix("out.proj.w"), w["out.proj.b"], D);
  }
}

/** Scratch tensors for one padded length T, reused by every row and step of a forward call. */
class Workspace {
  readonly x: Float32Array;
  readonly h: Float32Array;
  readonly u: Float32Array;
  readonly normed: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly context: Float32Array;
  readonly a: Float32Array;
  /** The token-mixing branch a₁ [T,H], its masked input transposed [H,T] and its hidden layer [H,L]. */
  readonly mixed: Float32Array;
  readonly mixT: Float32Array;
  readonly mixG: Float32Array;
  readonly ffn: Float32Array;
  readonly m: Float32Array;
  readonly pooled: Float32Array;
  readonly e: Float32Array;
  readonly ePrevious: Float32Array;
  readonly scores: Float64Array;
  /** float64 accumulators: the pooling sum, one head's attention output row. */
  readonly acc: Float64Array;

  constructor(
    readonly length: number,
    arch: TaesrArchitecture,
  ) {
    const { hidden: H, ffn: F, outputDim: D, maxLength: L } = arch;
    const tokens = length * H;
    const mixer = hasMixer(arch);
    this.mixed = new Float32Array(mixer ? tokens : 0);
    this.mixT = new Float32Array(mixer ? tokens : 0);
    this.mixG = new Float32Array(mixer ? H * L : 0);
    this.x = new Float32Array(tokens);
    this.h = new Float32Array(tokens);
    this.u = new Float32Array(tokens);
    this.normed = new Float32Array(tokens);
    this.q = new Float32Array(tokens);
    this.k = new Float32Array(tokens);
    this.v = new Float32Array(tokens);
    this.context = new Float32Array(tokens);
    this.a = new Float32Array(tokens);
    this.ffn = new Float32Array(length * F);
    this.m = new Float32Array(tokens);
    this.pooled = new Float32Array(H);
    this.e = new Float32Array(D);
    this.ePrevious = new Float32Array(D);
    this.scores = new Float64Array(length);
    this.acc = new Float64Array(H);
  }
}

/**
 * out[rows, outDim] = x[rows, inDim] · w + b, from wT = wᵀ [outDim, inDim]: each output is then a dot product of two
 * contiguous rows, and four outputs at a time share each load of x — about twice as fast in V8 as streaming w's rows
 * into an accumulator row.
 */
function linear(out: Float32Array, x: Float32Array, rows: number, inDim: number, wT: Float32Array, b: Float32Array, outDim: number): void {
  for (let r = 0; r < rows; r++) {
    const xRow = r * inDim;
    const outRow = r * outDim;
    let j = 0;
    for (; j + 4 <= outDim; j += 4) {
      const w0 = j * inDim;
      const w1 = w0 + inDim;
      const w2 = w1 + inDim;
      const w3 = w2 + inDim;
      let d0 = 0;
      let d1 = 0;
      let d2 = 0;
      let d3 = 0;
      for (let i = 0; i < inDim; i++) {
        const xi = x[xRow + i]!;
        d0 += xi * wT[w0 + i]!;
        d1 += xi * wT[w1 + i]!;
        d2 += xi * wT[w2 + i]!;
        d3 += xi * wT[w3 + i]!;
      }
      // The product is rounded to float32 before the bias is added, as MatMul then Add do in the graph.
      out[outRow + j] = Math.fround(d0) + b[j]!;
      out[outRow + j + 1] = Math.fround(d1) + b[j + 1]!;
      out[outRow + j + 2] = Math.fround(d2) + b[j + 2]!;
      out[outRow + j + 3] = Math.fround(d3) + b[j + 3]!;
    }
    for (; j < outDim; j++) {
      const w0 = j * inDim;
      let d = 0;
      for (let i = 0; i < inDim; i++) d += x[xRow + i]! * wT[w0 + i]!;
      out[outRow + j] = Math.fround(d) + b[j]!;
    }
  }
}

/**
 * The token-mixing MLP of spec.ts into out [T,H]: Z = z ⊙ mask / max(Σmask, 1), G = gelu_tanh(Zᵀ·Wt1[0..T) + bt1) [H,L],
 * out = (G·Wt2[:,0..T) + bt2[0..T))ᵀ. w1T = Wt1ᵀ and w2T = Wt2ᵀ ([L,L] each), so every dot product runs over
 * contiguous memory; slicing to T is reading the first T entries of each w1T row and the first T rows of w2T.
 * Rounded to float32 where the graph's MatMul and Add round.
 */
function tokenMix(
  out: Float32Array,
  z: Float32Array,
  mask: Uint8Array,
  T: number,
  H: number,
  L: number,
  w1T: Float32Array,
  b1: Float32Array,
  w2T: Float32Array,
  b2: Float32Array,
  zT: Float32Array,
  g: Float32Array,
): void {
  let count = 0;
  for (let t = 0; t < T; t++) count += mask[t]!;
  // mask / max(Σmask, 1) as the graph's Div makes it (float32), then the product rounded to float32 on store.
  const share = Math.fround(1 / Math.max(count, 1));
  for (let t = 0; t < T; t++) for (let c = 0; c < H; c++) zT[c * T + t] = mask[t] === 0 ? 0 : z[t * H + c]! * share;
  for (let c = 0; c < H; c++) {
    const zRow = c * T;
    for (let j = 0; j < L; j++) {
      const wRow = j * L;
      let d = 0;
      for (let t = 0; t < T; t++) d += zT[zRow + t]! * w1T[wRow + t]!;
      g[c * L + j] = geluTanh(Math.fround(Math.fround(d) + b1[j]!));
    }
  }
  for (let t = 0; t < T; t++) {
    const wRow = t * L;
    for (let c = 0; c < H; c++) {
      const gRow = c * L;
      let d = 0;
      for (let j = 0; j < L; j++) d += g[gRow + j]! * w2T[wRow + j]!;
      out[t * H + c] = Math.fround(d) + b2[t]!;
    }
  }
}

/** wᵀ of a row-major [inDim, outDim] matrix, the layout {@link linear} reads. */
function transpose(w: Float32Array, inDim: number, outDim: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let i = 0; i < inDim; i++) for (let j = 0; j < outDim; j++) t[j * inDim + i] = w[i * outDim + j]!;
  return t;
}

/** LayerNorm over each row of width `width` (biased variance, eps LAYER_NORM_EPS), as ONNX LayerNormalization. */
function layerNorm(out: Float32Array, x: Float32Array, rows: number, width: number, gamma: Float32Array, beta: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let sum = 0;
    for (let i = 0; i < width; i++) sum += x[base + i]!;
    const mean = sum / width;
    let squares = 0;
    for (let i = 0; i < width; i++) {
      const c = x[base + i]! - mean;
      squares += c * c;
    }
    const rstd = 1 / Math.sqrt(squares / width + LAYER_NORM_EPS);
    for (let i = 0; i < width; i++) out[base + i] = (x[base + i]! - mean) * rstd * gamma[i]! + beta[i]!;
  }
}

/**
 * Multi-head self-attention over q, k, v [T, H] (head h = columns h·dh…(h+1)·dh) into context [T, H]:
 * softmax(q·kᵀ/√dh + padding bias)·v per head, the bias ATTENTION_MASK_VALUE on padded keys.
 */
function attention(
  context: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: Uint8Array,
  T: number,
  H: number,
  heads: number,
  scores: Float64Array,
  acc: Float64Array,
): void {
  const dh = H / heads;
  const scale = Math.fround(1 / Math.sqrt(dh));
  for (let head = 0; head < heads; head++) {
    const off = head * dh;
    for (let i = 0; i < T; i++) {
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < T; j++) {
        let dot = 0;
        for (let d = 0; d < dh; d++) dot += q[i * H + off + d]! * k[j * H + off + d]!;
        let s = Math.fround(Math.fround(dot) * scale);
        if (mask[j] === 0) s = Math.fround(s + ATTENTION_MASK_VALUE);
        scores[j] = s;
        if (s > max) max = s;
      }
      let total = 0;
      for (let j = 0; j < T; j++) {
        const p = Math.exp(scores[j]! - max);
        scores[j] = p;
        total += p;
      }
      for (let d = 0; d < dh; d++) acc[d] = 0;
      for (let j = 0; j < T; j++) {
        const p = scores[j]! / total;
        if (p === 0) continue;
        for (let d = 0; d < dh; d++) acc[d] = acc[d]! + p * v[j * H + off + d]!;
      }
      for (let d = 0; d < dh; d++) context[i * H + off + d] = acc[d]!;
    }
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** gelu_tanh(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))), literally as spec.ts writes it. */
function geluTanh(z: number): number {
  return 0.5 * z * (1 + Math.tanh(GELU_C * (z + 0.044715 * z * z * z)));
}

interface Batch {
  ids: Int32Array[];
  mask: Uint8Array[];
  /** Padded length T shared by every row. */
  length: number;
}

function readBatch(inputs: TAESRInputs, vocabSize: number, maxLength: number): Batch {
  const { inputIds, attentionMask } = inputs;
  if (!Array.isArray(inputIds) || inputIds.length === 0) throw new TypeError("inputIds must be a non-empty array of rows");
  const length = inputIds[0]!.length;
  if (!Number.isInteger(length) || length < 1 || length > maxLength) {
    throw new RangeError(`rows must have from 1 to maxLength (${maxLength}) ids, got ${length}`);
  }
  if (attentionMask !== undefined && (!Array.isArray(attentionMask) || attentionMask.length !== inputIds.length)) {
    throw new RangeError(`attentionMask must have one row per inputIds row (${inputIds.length})`);
  }
  const ids: Int32Array[] = [];
  const mask: Uint8Array[] = [];
  inputIds.forEach((row, b) => {
    if (row.length !== length) throw new RangeError(`inputIds[${b}] has ${row.length} ids, expected ${length} (pad every row to one length)`);
    const idRow = new Int32Array(length);
    for (let t = 0; t < length; t++) {
      const id = row[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new RangeError(`inputIds[${b}][${t}] = ${id} is not a token id (integer from 0 to ${vocabSize - 1})`);
      }
      idRow[t] = id;
    }
    const maskRow = new Uint8Array(length).fill(1);
    const given = attentionMask?.[b];
    if (given !== undefined) {
      if (given.length !== length) throw new RangeError(`attentionMask[${b}] has ${given.length} entries, expected ${length}`);
      for (let t = 0; t < length; t++) {
        const m = given[t];
        if (m !== 0 && m !== 1) throw new RangeError(`attentionMask[${b}][${t}] must be 0 or 1, got ${String(m)}`);
        maskRow[t] = m;
      }
    }
    ids.push(idRow);
    mask.push(maskRow);
  });
  return { ids, mask, length };
}

function checkWeights(arch: TaesrArchitecture, weights: TAESRWeights): TAESRWeights {
  const shapes = weightShapes(arch);
  const names = weightNames(arch);
  const unknown = Object.keys(weights).filter((name) => !(names as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new Error(`unknown weights: ${unknown.join(", ")} (expected the names of spec.ts weightNames for block ${blockOf(arch)})`);
  }
  for (const name of names) {
    const data: unknown = weights[name];
    const shape = shapes[name];
    const size = shape.reduce((p, d) => p * d, 1);
    if (!(data instanceof Float32Array)) throw new TypeError(`weight "${name}" must be a Float32Array`);
    if (data.length !== size) {
      throw new RangeError(`weight "${name}" has ${data.length} values, expected [${shape.join(", ")}] = ${size} for this config`);
    }
  }
  return weights;
}

function checkFullWidth(config: TAESRConfig, vec: ArrayLike<number>, what: string): void {
  if (vec.length !== config.outputDim) throw new RangeError(`${what} has ${vec.length} components, expected outputDim (${config.outputDim})`);
}

/** Config-only form of {@link TAESRModel.matryoshkaSlice}, for embeddings from any runtime (e.g. TaesrEncoder at 384 dims). */
export function matryoshkaSlice(config: TAESRConfig, vec: ArrayLike<number>, dims: number): Float32Array {
  checkFullWidth(config, vec, "the embedding");
  if (!config.matryoshkaDims.includes(dims)) {
    throw new RangeError(`dims must be one of ${config.matryoshkaDims.join(", ")} (the trained Matryoshka prefixes), got ${dims}`);
  }
  return prefixNormalizeRows(Float32Array.from(vec), 1, config.outputDim, dims)[0]!;
}

/** Config-only form of {@link TAESRModel.subspaceSlice}. */
export function subspaceSlice(config: TAESRConfig, vec: ArrayLike<number>, name: SubspaceName): Float32Array {
  checkFullWidth(config, vec, "the embedding");
  const range = config.subspaces[name];
  if (range === undefined) throw new RangeError(`unknown subspace ${JSON.stringify(name)}; expected one of ${SUBSPACE_NAMES.join(", ")}`);
  const [start, end] = range;
  const out = new Float32Array(end - start);
  for (let i = start; i < end; i++) out[i - start] = vec[i]!;
  return out;
}

/** Config-only form of {@link TAESRModel.subspaceShares}. */
export function subspaceShares(config: TAESRConfig, a: ArrayLike<number>, b: ArrayLike<number>): SubspaceShares {
  checkFullWidth(config, a, "the first embedding");
  checkFullWidth(config, b, "the second embedding");
  const shares = {} as Record<SubspaceName, number>;
  let total = 0;
  for (const name of SUBSPACE_NAMES) {
    const [start, end] = config.subspaces[name];
    let dot = 0;
    for (let i = start; i < end; i++) dot += a[i]! * b[i]!;
    shares[name] = dot;
    total += dot;
  }
  return { total, shares };
}

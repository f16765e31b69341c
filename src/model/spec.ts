/**
 * The TAESR architecture contract shared by training (TensorFlow.js), export (ONNX) and the runtime.
 * Every producer and consumer of weights or graphs agrees through this file; change it and all three together.
 *
 * Forward pass (one shared-weight block f, TRM-style recursion with the input injected each step):
 *   x   = tokenEmbedding[ids] + positionEmbedding[0..T)                              [B,T,H]
 *   h0  = 0
 *   for t = 1..k:
 *     u   = h + x
 *     a   = MHA(LN1(u), keyPaddingMask)          (pre-LN; additive mask −1e9 on padded keys)
 *     v   = u + a
 *     m   = W2·gelu_tanh(W1·LN2(v) + b1) + b2
 *     h   = h + a + m
 *     e_t = proj(maskedMean(LNout(h)))  ∈ R^384  (unnormalised; consumers slice a Matryoshka prefix, then L2-normalise)
 * LayerNorm eps = 1e-5. gelu_tanh(z) = 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).
 * maskedMean divides by max(Σmask, 1).
 */

export interface TaesrArchitecture {
  vocabSize: number;
  hidden: number;
  heads: number;
  ffn: number;
  maxLength: number;
  /** Width of the projected embedding (always 384 in TAESR). */
  outputDim: number;
  /** Matryoshka prefixes that are trained to stand alone, ascending, last one = outputDim. */
  matryoshkaDims: number[];
  /** Recursion steps per route. */
  depths: { easy: number; medium: number; hard: number };
}

export const LAYER_NORM_EPS = 1e-5;
export const ATTENTION_MASK_VALUE = -1e9;

/** Weight tensors, row-major float32; a matrix [in,out] maps a row vector of width `in` to width `out` (y = xW + b). */
export function weightShapes(a: TaesrArchitecture): Record<WeightName, number[]> {
  const { vocabSize: V, hidden: H, ffn: F, maxLength: L, outputDim: D } = a;
  return {
    "embed.token": [V, H],
    "embed.position": [L, H],
    "block.ln1.gamma": [H],
    "block.ln1.beta": [H],
    "block.attn.wq": [H, H],
    "block.attn.bq": [H],
    "block.attn.wk": [H, H],
    "block.attn.bk": [H],
    "block.attn.wv": [H, H],
    "block.attn.bv": [H],
    "block.attn.wo": [H, H],
    "block.attn.bo": [H],
    "block.ln2.gamma": [H],
    "block.ln2.beta": [H],
    "block.ffn.w1": [H, F],
    "block.ffn.b1": [F],
    "block.ffn.w2": [F, H],
    "block.ffn.b2": [H],
    "out.ln.gamma": [H],
    "out.ln.beta": [H],
    "out.proj.w": [H, D],
    "out.proj.b": [D],
  };
}

export const WEIGHT_NAMES = [
  "embed.token",
  "embed.position",
  "block.ln1.gamma",
  "block.ln1.beta",
  "block.attn.wq",
  "block.attn.bq",
  "block.attn.wk",
  "block.attn.bk",
  "block.attn.wv",
  "block.attn.bv",
  "block.attn.wo",
  "block.attn.bo",
  "block.ln2.gamma",
  "block.ln2.beta",
  "block.ffn.w1",
  "block.ffn.b1",
  "block.ffn.w2",
  "block.ffn.b2",
  "out.ln.gamma",
  "out.ln.beta",
  "out.proj.w",
  "out.proj.b",
] as const;
export type WeightName = (typeof WEIGHT_NAMES)[number];

/**
 * The two ONNX graphs of an artifact variant (fp32 or int8). Splitting the recursion into a step graph lets the runtime
 * choose the depth per input and stop early on convergence, with one set of weights.
 *
 * embed.onnx: input_ids int64 [B,T]                                   → x float32 [B,T,H]
 * step.onnx:  h float32 [B,T,H], x float32 [B,T,H], attention_mask float32 [B,T] (1 = token, 0 = padding)
 *                                                                     → h_next float32 [B,T,H], embedding float32 [B,outputDim]
 */
export const GRAPH_IO = {
  embed: { inputs: ["input_ids"], outputs: ["x"] },
  step: { inputs: ["h", "x", "attention_mask"], outputs: ["h_next", "embedding"] },
} as const;

export const OPSET_VERSION = 17;

/** The artifact's manifest.json. */
export interface ArtifactManifest {
  format: "taesr-artifact/1";
  name: string;
  version: string;
  createdAt: string;
  architecture: TaesrArchitecture;
  /** Relative path → sha256 hex and byte length of every other file in the artifact directory. */
  files: Record<string, { sha256: string; bytes: number }>;
  tokenizer: string;
  variants: Record<"fp32" | "int8", { embed: string; step: string }>;
  parameters: number;
  router: RouterRule;
  /** Early exit: stop recursing when 1 − cos(e_t, e_{t−1}) < epsilon for every input of the batch. */
  earlyExitEpsilon: number;
  training: Record<string, unknown>;
  eval: Record<string, unknown>;
}

/** The documented routing rule (a trained router replaces it later): token count thresholds on the encoded input. */
export interface RouterRule {
  kind: "rule";
  /** Inputs with at most this many word-piece tokens (excluding specials) are easy. */
  easyMaxTokens: number;
  /** … at most this many are medium; longer ones are hard. */
  mediumMaxTokens: number;
}

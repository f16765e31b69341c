/**
 * Floating-point operations of one TAESR forward pass, for one sequence of T tokens at depth k, counted from the maths
 * of spec.ts (not measured): the cost axis of the depth/quality trade-off the router makes, comparable across machines
 * and engines where latency is not.
 *
 * Convention: a multiply-add counts 2 FLOPs (a [T,in]·[in,out] product is 2·T·in·out); every other elementwise
 * operation counts 1, a transcendental (exp, tanh) included. With n heads, F = ffn, D = outputDim:
 *
 *   embed    gather 0 (a table lookup) + position add T·H
 *   per step
 *     u = h + x                                  T·H
 *     LN1, LN2, LNout                            7·T·H each: mean (add), centre (sub), variance (mul, add),
 *                                                normalise (mul by 1/σ), affine (mul γ, add β)
 *     Q, K, V, O projections                     4 × (2·T·H² + T·H bias)
 *     scores QKᵀ, weighted sum P·V               2·T²·H each (n heads × T² × H/n multiply-adds)
 *     scale, mask, softmax                       7·n·T²: scale by 1/√dh, add mask, then max, subtract, exp, sum, divide
 *     v = u + a                                  T·H
 *     FFN                                        2·T·H·F + T·F (W1, b1), 9·T·F (gelu_tanh), 2·T·F·H + T·H (W2, b2)
 *     h = h + a + m                              2·T·H
 *   the token-mixing sub-layer (mlp_mixer in place of Q/K/V/O and attention; hybrid adds it before them), L = maxLength
 *     LNmix                                      7·T·H
 *     multiply by mask / max(Σmask, 1)           T·H
 *     Wt1[0..T) (+ bt1), gelu_tanh               2·H·T·L + H·L, 9·H·L
 *     Wt2[:,0..T) (+ bt2)                        2·H·L·T + H·T
 *     hybrid only: w = u + a₁ and the third term of h = h + a₁ + a₂ + m    2·T·H
 *     masked mean                                2·T·H (mask multiply, sum) + H (divide by the token count)
 *     output projection                          2·H·D + D
 *
 * The embedding e_t is part of every step because step.onnx computes it every step (early exit compares consecutive
 * ones). Not counted: per-row scalars (a LayerNorm's divisions and rsqrt, a softmax's reciprocal: O(T), negligible),
 * data movement (reshapes, transposes, the gather), int8 quantise/dequantise work in the int8 variant (it changes the
 * arithmetic's precision, not its count), and the runtime's own JS work around the graphs (early-exit cosine,
 * Matryoshka renormalisation, token vectors: O(D) or O(T·H) per step at most).
 *
 * T is the length the graphs run at: for a batch, the padded length, since padding is computed and then masked.
 *
 * @module
 * @example
 *   queryFlops(manifest.architecture, 12, 3); // { embed, perStep, total: embed + 3·perStep }
 */
import { hasAttention, hasMixer, type TaesrArchitecture } from "./spec.js";

export interface QueryFlops {
  /** embed.onnx: the position-embedding add (the token gather is free). */
  embed: number;
  /** One step.onnx run: the shared block plus the pooled, projected embedding e_t. */
  perStep: number;
  /** embed + depth · perStep. */
  total: number;
}

/** Elementwise FLOPs per element (see the module doc for what each covers). */
const LAYER_NORM = 7;
const GELU_TANH = 9;
const SCORE_ELEMENTWISE = 7;

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

/** FLOPs to embed one sequence of `tokens` tokens with `depth` recursion steps (see the module doc for the count). */
export function queryFlops(arch: TaesrArchitecture, tokens: number, depth: number): QueryFlops {
  const { hidden: H, heads: n, ffn: F, outputDim: D, maxLength } = arch;
  positiveInteger("architecture.hidden", H);
  positiveInteger("architecture.heads", n);
  positiveInteger("architecture.ffn", F);
  positiveInteger("architecture.outputDim", D);
  if (H % n !== 0) throw new RangeError(`architecture.hidden ${H} is not divisible by architecture.heads ${n}`);
  // Even an empty text runs as one [UNK] token, and the position table stops at maxLength.
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > maxLength) {
    throw new RangeError(`tokens must be an integer from 1 to maxLength ${maxLength}, got ${tokens}`);
  }
  positiveInteger("depth", depth);

  const T = tokens;
  const L = maxLength;
  const TH = T * H;
  const embed = TH;
  // LN2 and LNout always; LN1 with attention, LNmix with the mixer.
  const withAttention = hasAttention(arch);
  const withMixer = hasMixer(arch);
  const layerNorms = (2 + Number(withAttention) + Number(withMixer)) * LAYER_NORM * TH;
  const residuals = TH + TH + 2 * TH + (withAttention && withMixer ? 2 * TH : 0);
  const projections = withAttention ? 4 * (2 * TH * H + TH) : 0;
  const attention = withAttention ? 2 * (2 * T * T * H) + SCORE_ELEMENTWISE * n * T * T : 0;
  const mixer = withMixer ? TH + 2 * H * T * L + H * L + GELU_TANH * H * L + 2 * H * L * T + TH : 0;
  const ffn = 2 * TH * F + T * F + GELU_TANH * T * F + 2 * T * F * H + TH;
  const output = 2 * TH + H + 2 * H * D + D;
  const perStep = layerNorms + residuals + projections + attention + mixer + ffn + output;
  return { embed, perStep, total: embed + depth * perStep };
}

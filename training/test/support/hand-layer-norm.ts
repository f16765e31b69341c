/**
 * LayerNorm by hand in float64 (spec.ts's formula, ε 1e-5): the first step of the heads' hand computations that tests
 * compare the tfjs heads against.
 *
 * @example
 *   const n = layerNormByHand(h.subarray(r * H, (r + 1) * H), w["out.ln.gamma"], w["out.ln.beta"]);
 */

/** (x − mean) / √(variance + 1e-5) · γ + β over one row, population variance. */
export function layerNormByHand(row: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>): number[] {
  const x = Array.from(row);
  const H = x.length;
  const mean = x.reduce((a, v) => a + v, 0) / H;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / H;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + 1e-5)) * gamma[i]! + beta[i]!);
}

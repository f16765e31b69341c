/**
 * Symmetric int8 weight quantisation for the edge variant.
 *
 * Matrices are quantised per output channel (column of a [in,out] matrix, the axis MatMulInteger's per-column
 * dequantisation multiplies by); the token-embedding table per row (each token's vector is dequantised alone after
 * Gather). Symmetric → zero point 0, so MatMulInteger needs no b_zero_point.
 *
 * @module
 */

export interface QuantizedTensor {
  q: Int8Array;
  /** One scale per quantised channel: value ≈ q · scale. */
  scale: Float32Array;
}

/** Full int8 range, for tables that are only gathered and dequantised (the token embedding). */
export const INT8_MAX = 127;

/**
 * Range for weight matrices that feed MatMulInteger: 7 bits ("reduce_range", as ORT's own quantize_dynamic does on x86).
 * ORT's x86 kernels multiply uint8 activations by int8 weights with 16-bit pairwise sums (AVX2 vpmaddubsw), which
 * saturate at full range: measured here on random TAESR weights, 127 gave per-row cosine vs fp32 down to 0.974,
 * 63 gives ≥ 0.9995. The lost bit costs far less than the saturation.
 */
export const MATMUL_INT8_MAX = 63;

function scaleFor(maxAbs: number, qmax: number): number {
  // An all-zero channel still needs a finite, non-zero scale.
  return maxAbs > 0 ? maxAbs / qmax : 1;
}

function quantizeValue(v: number, scale: number, qmax: number): number {
  return Math.max(-qmax, Math.min(qmax, Math.round(v / scale)));
}

/** Per-column quantisation of a row-major [rows, cols] matrix. */
export function quantizePerColumn(w: Float32Array, rows: number, cols: number, qmax = MATMUL_INT8_MAX): QuantizedTensor {
  const maxAbs = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(w[r * cols + c]!));
  }
  const scale = maxAbs.map((m) => scaleFor(m, qmax));
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) q[r * cols + c] = quantizeValue(w[r * cols + c]!, scale[c]!, qmax);
  }
  return { q, scale };
}

/** Per-row quantisation of a row-major [rows, cols] table. */
export function quantizePerRow(w: Float32Array, rows: number, cols: number, qmax = INT8_MAX): QuantizedTensor {
  const scale = new Float32Array(rows);
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(w[r * cols + c]!));
    const s = scaleFor(m, qmax);
    scale[r] = s;
    for (let c = 0; c < cols; c++) q[r * cols + c] = quantizeValue(w[r * cols + c]!, s, qmax);
  }
  return { q, scale };
}

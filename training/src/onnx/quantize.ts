/**
 * Symmetric int8 weight quantisation for the edge variant.
 *
 * Matrices are quantised per output channel (column of a [in,out] matrix, the axis MatMulInteger's per-column
 * dequantisation multiplies by); the token-embedding table per row (each token's vector is dequantised alone after
 * Gather). Symmetric → zero point 0, so MatMulInteger needs no b_zero_point.
 *
 * The int4 variant's token table is 4-bit in groups of 32 values with float16 scales (quantizeInt4Groups; the format
 * and its decoder are src/model/int4-table.ts).
 *
 * @module
 */
import { checkInt4Shape, float16ToFloat32, INT4_CENTRE, INT4_HALF_RANGE, type Int4Table } from "../../../src/model/int4-table.js";

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

/**
 * The float16 bit pattern nearest to `v` (round to nearest, ties to even; overflow → ±Infinity, tiny values → the
 * subnormals, then ±0). Node 20 has no Math.f16round, and the table's scales must be rounded exactly as stored.
 */
export function float32ToFloat16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    // Subnormal: value = m · 2^-24 with m = the 24-bit significand shifted right by 14 − e.
    mantissa |= 0x800000;
    const shift = 14 - e;
    let m = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && m & 1)) m++;
    return sign | m;
  }
  let h = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches 0x7c00, Infinity, at the top).
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Group size of the int4 token table: 32 values share one float16 scale (4 scales per 128-wide row). */
export const INT4_GROUP_SIZE = 32;

/**
 * Clipping factors tried per group: scale = α · max|v| / 7.5. The largest value of a group is usually an outlier, and
 * clipping it a little buys a finer grid for the other 31: on taesr-edge-small@0.2.0's table the search lowers the
 * relative error from 0.089 (α = 1 only) to 0.084. Every α is tried against the float16-rounded scale, as stored.
 */
const INT4_CLIP_FACTORS = Array.from({ length: 16 }, (_, i) => 0.7 + 0.02 * i);

/** Smallest positive float16 (a subnormal): the scale of an all-zero group, which then decodes to ±3e-8. */
const FLOAT16_MIN_BITS = 0x0001;

function nibbleFor(v: number, scale: number): number {
  return Math.max(0, Math.min(15, Math.round(v / scale + INT4_CENTRE)));
}

/**
 * 4-bit quantisation of a row-major [rows, cols] table in groups of `groupSize` values along each row, in the layout of
 * src/model/int4-table.ts (codes [rows, cols/2], float16 scales [rows, cols/groupSize]). Each group keeps the clipping
 * factor with the least squared error.
 * @throws Error when the shape does not allow the layout or a value is not finite.
 */
export function quantizeInt4Groups(w: Float32Array, rows: number, cols: number, groupSize = INT4_GROUP_SIZE): Int4Table {
  checkInt4Shape(rows, cols, groupSize);
  if (w.length !== rows * cols) throw new Error(`quantizeInt4Groups: ${w.length} values, [${rows}, ${cols}] needs ${rows * cols}`);
  const groups = cols / groupSize;
  const half = cols / 2;
  const codes = new Uint8Array(rows * half);
  const scales = new Uint16Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const start = r * cols + g * groupSize;
      let maxAbs = 0;
      for (let i = 0; i < groupSize; i++) {
        const v = w[start + i]!;
        if (!Number.isFinite(v)) throw new Error(`quantizeInt4Groups: non-finite value at row ${r}, column ${g * groupSize + i}`);
        maxAbs = Math.max(maxAbs, Math.abs(v));
      }
      let bestBits = FLOAT16_MIN_BITS;
      if (maxAbs > 0) {
        let bestError = Number.POSITIVE_INFINITY;
        for (const alpha of INT4_CLIP_FACTORS) {
          const bits = float32ToFloat16Bits((alpha * maxAbs) / INT4_HALF_RANGE);
          const scale = float16ToFloat32(bits);
          if (!(scale > 0) || !Number.isFinite(scale)) continue;
          let error = 0;
          for (let i = 0; i < groupSize; i++) {
            const v = w[start + i]!;
            const d = (nibbleFor(v, scale) - INT4_CENTRE) * scale - v;
            error += d * d;
          }
          if (error < bestError) {
            bestError = error;
            bestBits = bits;
          }
        }
      }
      scales[r * groups + g] = bestBits;
      const scale = float16ToFloat32(bestBits);
      for (let i = 0; i < groupSize; i++) {
        const c = g * groupSize + i;
        const nibble = nibbleFor(w[start + i]!, scale);
        const byte = r * half + (c % half);
        codes[byte] = c < half ? (codes[byte]! & 0xf0) | nibble : (codes[byte]! & 0x0f) | (nibble << 4);
      }
    }
  }
  return { codes, scales, rows, cols, groupSize };
}

/**
 * The 4-bit token-embedding table of the "int4" artifact variant: its layout, and decoding back to float32.
 *
 * The token table is 8,192 × 128 in the edge models, 84 % of the fp32 weights and, as int8, still 78 % of the int8
 * artifact; four bits per value halve it again while the block matrices (int8 already) stay as they are. The encoder
 * (with its scale search) is training/src/onnx/quantize.ts; the graph that decodes it at run time is the int4 embed.onnx
 * of training/src/onnx/taesr-graphs.ts. This module is the format's reference decoder, platform-neutral like the rest of
 * src/model: the graph's output is tested equal to it, and onnx-weights reads tables back through it.
 *
 * Layout, for a [V, H] table quantised in groups of `groupSize` consecutive values of a row (H/groupSize groups a row):
 * - codes:  uint8 [V, H/2]. Byte j of row r holds value j in its low nibble and value j + H/2 in its high nibble:
 *           the two halves of a row unpack as two whole tensors and one Concat, with no interleaving Reshape.
 * - scales: float16 [V, H/groupSize, 1] (the trailing 1 lets the gathered scales broadcast over their group).
 * - value  = (nibble − 7.5) · scale. The 16 codes are the half-integers ±0.5 … ±7.5, symmetric about zero without a
 *           stored zero point; all 16 are used (a symmetric integer grid −7 … 7 would waste one), at the price of no
 *           exact zero, which a trained embedding row does not need.
 *
 * @example
 *   const table = dequantizeInt4Table({ codes, scales, rows: 8192, cols: 128, groupSize: 32 });
 *
 * @module
 */

/** The nibble that stands for zero (between codes 7 and 8): value = (nibble − INT4_CENTRE) · scale. */
export const INT4_CENTRE = 7.5;
/** Largest |nibble − centre|: a group's scale is at least max|value| / INT4_HALF_RANGE before clipping. */
export const INT4_HALF_RANGE = 7.5;

/** A 4-bit table as stored in the graph's two initializers. */
export interface Int4Table {
  /** uint8 [rows, cols/2], nibbles laid out as in the module comment. */
  codes: Uint8Array;
  /** float16 bit patterns [rows, cols/groupSize]. */
  scales: Uint16Array;
  rows: number;
  cols: number;
  groupSize: number;
}

/** Checks the shape relations every reader and writer relies on. */
export function checkInt4Shape(rows: number, cols: number, groupSize: number): void {
  for (const [name, v] of [
    ["rows", rows],
    ["cols", cols],
    ["groupSize", groupSize],
  ] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`int4 table: ${name} must be a positive integer, got ${v}`);
  }
  if (cols % 2 !== 0) throw new Error(`int4 table: cols (${cols}) must be even: two values share a byte`);
  if (cols % groupSize !== 0) throw new Error(`int4 table: cols (${cols}) must be a multiple of groupSize (${groupSize})`);
}

/** The float32 value of an IEEE half-precision bit pattern (exact: every float16 is a float32). */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The nibble of value `col` of row `row` (0 … 15). */
export function int4Code(table: Pick<Int4Table, "codes" | "cols">, row: number, col: number): number {
  const half = table.cols / 2;
  const byte = table.codes[row * half + (col % half)]!;
  return col < half ? byte & 0x0f : byte >> 4;
}

/**
 * The float32 table the int4 embed graph computes from these codes and scales, value by value:
 * fround((nibble − 7.5) · float32(scale)), the product rounded once as onnxruntime's float Mul rounds it.
 * @throws Error when the arrays do not fit the shape.
 */
export function dequantizeInt4Table(table: Int4Table): Float32Array {
  const { codes, scales, rows, cols, groupSize } = table;
  checkInt4Shape(rows, cols, groupSize);
  const groups = cols / groupSize;
  if (codes.length !== (rows * cols) / 2) throw new Error(`int4 table: ${codes.length} code bytes, [${rows}, ${cols}] needs ${(rows * cols) / 2}`);
  if (scales.length !== rows * groups) throw new Error(`int4 table: ${scales.length} scales, ${rows} rows × ${groups} groups needs ${rows * groups}`);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const scale = float16ToFloat32(scales[r * groups + Math.floor(c / groupSize)]!);
      out[r * cols + c] = (int4Code(table, r, c) - INT4_CENTRE) * scale;
    }
  }
  return out;
}

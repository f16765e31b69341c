/**
 * Compressed dense vectors: sign bits (1 bit per dimension, Hamming distance) and scalar int8 codes (1 byte per
 * dimension plus one float scale per vector). A 128-d float vector takes 512 bytes; its int8 codes 132; its sign bits 16.
 *
 * The intended use is two-stage search, as in binary-quantisation retrieval systems: a Hamming scan over the bits of
 * every document picks `factor × k` candidates cheaply (XOR + popcount on 32-bit words), then those few are rescored
 * with their int8 codes against the float query (an asymmetric dot product, no query quantisation), and the best k
 * returned. Hamming distance between sign vectors relates to the angle θ between the float vectors
 * (E[hamming]/dims = θ/π for isotropic vectors), so the scan keeps the right neighbourhood; the rescoring restores the
 * order within it.
 *
 * Conventions: rows are packed row-major like {@link denseSearch}'s matrix; ids are row indexes; a bit is set when the
 * component is > 0 (0 and −0 count as negative), bit i of a row lives in word ⌊i/32⌋ at position i mod 32. Scores are
 * "higher is better" and lie in [−1, 1] so that fusion can treat them like cosines: a binary score is
 * 1 − 2·hamming/dims (the mean of the ±1 products), an int8 score the dequantised dot product.
 * Platform-neutral (no `node:` imports, no Workers globals).
 *
 * @module
 * @example
 *   const bits = packSignBits(matrix, 128);                 // Uint32Array, 4 words per row
 *   const codes = quantizeInt8Rows(matrix, 128);            // { codes: Int8Array, scales: Float32Array }
 *   const hits = binaryRescoreSearch(bits, codes, 128, query, 100); // Hamming top 1,000 → int8 rescoring → top 100
 */
import { TopK } from "./topk.js";
import type { RankedHit } from "./types.js";

/** 32-bit words a row of `dims` sign bits takes. */
export function signWords(dims: number): number {
  checkDims(dims);
  return Math.ceil(dims / 32);
}

/** Sign bits of every `dims`-wide row of a row-major matrix: `signWords(dims)` words per row, bit set ⇔ component > 0. */
export function packSignBits(matrix: ArrayLike<number>, dims: number): Uint32Array<ArrayBuffer> {
  const words = signWords(dims);
  if (matrix.length % dims !== 0) throw new RangeError(`matrix length ${matrix.length} is not a multiple of ${dims}`);
  const rows = matrix.length / dims;
  const out = new Uint32Array(rows * words);
  for (let row = 0; row < rows; row++) {
    const base = row * dims;
    for (let i = 0; i < dims; i++) {
      if (matrix[base + i]! > 0) out[row * words + (i >>> 5)]! |= 1 << (i & 31);
    }
  }
  return out;
}

/** Number of set bits of a 32-bit word (SWAR popcount). */
export function popcount32(word: number): number {
  let v = word >>> 0;
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  v = (v + (v >>> 4)) & 0x0f0f0f0f;
  return Math.imul(v, 0x01010101) >>> 24;
}

/** Hamming distance between the `words`-long bit rows starting at `aOffset` in `a` and `bOffset` in `b`. */
export function hammingDistance(a: Uint32Array, aOffset: number, b: Uint32Array, bOffset: number, words: number): number {
  let distance = 0;
  for (let w = 0; w < words; w++) distance += popcount32(a[aOffset + w]! ^ b[bOffset + w]!);
  return distance;
}

/**
 * The k rows whose sign bits are nearest `queryBits` (one row, as from {@link packSignBits} of the query), best first,
 * scored 1 − 2·hamming/dims; ties go to the lower row index. With `allowed`, only rows whose byte is non-zero take
 * part (a metadata filter applied before ranking, so it never shortens the list while allowed rows remain).
 */
export function hammingSearch(bits: Uint32Array, dims: number, queryBits: Uint32Array, k: number, allowed?: Uint8Array): RankedHit<number>[] {
  const words = signWords(dims);
  if (queryBits.length !== words) throw new RangeError(`query has ${queryBits.length} words, ${dims} dimensions need ${words}`);
  if (bits.length % words !== 0) throw new RangeError(`bit matrix length ${bits.length} is not a multiple of ${words} words`);
  const rows = bits.length / words;
  if (allowed && allowed.length !== rows) throw new RangeError(`allowed mask has ${allowed.length} rows, the matrix ${rows}`);
  const best = new TopK<number>(Math.min(k, rows));
  for (let row = 0, offset = 0; row < rows; row++, offset += words) {
    if (allowed && allowed[row] === 0) continue;
    const score = 1 - (2 * hammingDistance(bits, offset, queryBits, 0, words)) / dims;
    if (score >= best.threshold) best.push(row, score);
  }
  return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
}

/** Scalar-quantised rows: `codes[row·dims + i] · scales[row]` ≈ the original component. */
export interface Int8Rows {
  dims: number;
  codes: Int8Array<ArrayBuffer>;
  /** One scale per row: max |component| / 127 (0 for an all-zero row). */
  scales: Float32Array<ArrayBuffer>;
}

/**
 * Symmetric per-vector int8 quantisation: scale = max|x| / 127, code = round(x / scale) ∈ [−127, 127]. Per-vector
 * (not per-dimension) scales keep every vector decodable on its own, so a row can be appended without refitting.
 */
export function quantizeInt8Rows(matrix: ArrayLike<number>, dims: number): Int8Rows {
  checkDims(dims);
  if (matrix.length % dims !== 0) throw new RangeError(`matrix length ${matrix.length} is not a multiple of ${dims}`);
  const rows = matrix.length / dims;
  const codes = new Int8Array(rows * dims);
  const scales = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    const base = row * dims;
    let maxAbs = 0;
    for (let i = 0; i < dims; i++) maxAbs = Math.max(maxAbs, Math.abs(matrix[base + i]!));
    if (maxAbs === 0) continue;
    const scale = maxAbs / 127;
    scales[row] = scale;
    for (let i = 0; i < dims; i++) codes[base + i] = Math.max(-127, Math.min(127, Math.round(matrix[base + i]! / scale)));
  }
  return { dims, codes, scales };
}

/** Dequantised dot product of row `row` of `quantized` with a float query: scale · Σ code_i · q_i. */
export function int8Dot(quantized: Int8Rows, row: number, query: ArrayLike<number>): number {
  const { dims, codes, scales } = quantized;
  const base = row * dims;
  let dot = 0;
  for (let i = 0; i < dims; i++) dot += codes[base + i]! * query[i]!;
  return dot * scales[row]!;
}

/** Exact top-k over int8 rows against a float query (asymmetric: only the documents are quantised), best first. */
export function int8Search(quantized: Int8Rows, query: ArrayLike<number>, k: number): RankedHit<number>[] {
  checkQuery(query, quantized.dims);
  const rows = quantized.scales.length;
  const best = new TopK<number>(Math.min(k, rows));
  for (let row = 0; row < rows; row++) {
    const score = int8Dot(quantized, row, query);
    if (score >= best.threshold) best.push(row, score);
  }
  return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
}

/** Rescores candidate rows with their int8 codes against the float query and returns the best k of them, best first. */
export function rescoreInt8(candidates: readonly { id: number }[], quantized: Int8Rows, query: ArrayLike<number>, k: number): RankedHit<number>[] {
  checkQuery(query, quantized.dims);
  const best = new TopK<number>(Math.min(k, candidates.length));
  for (const { id } of candidates) best.push(id, int8Dot(quantized, id, query));
  return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
}

/** Default oversampling of the Hamming stage: it keeps `factor × k` candidates for rescoring. */
export const DEFAULT_RESCORE_FACTOR = 10;

/**
 * Two-stage search: Hamming scan of the query's sign bits over `bits` for the top `factor × k` rows, then int8
 * rescoring of those rows against the float query; the best k of the rescored candidates, best first. `allowed`
 * restricts both stages to the rows it marks (see {@link hammingSearch}).
 */
export function binaryRescoreSearch(
  bits: Uint32Array,
  quantized: Int8Rows,
  query: ArrayLike<number>,
  k: number,
  factor: number = DEFAULT_RESCORE_FACTOR,
  allowed?: Uint8Array,
): RankedHit<number>[] {
  if (!(Number.isInteger(factor) && factor >= 1)) throw new RangeError(`rescore factor must be an integer ≥ 1, got ${factor}`);
  const dims = quantized.dims;
  checkQuery(query, dims);
  const candidates = hammingSearch(bits, dims, packSignBits(query, dims), factor * k, allowed);
  return rescoreInt8(candidates, quantized, query, k);
}

/** Stored bytes per vector of each representation (the int8 scale as a float32). */
export function compressedBytesPerVector(dims: number): { float32: number; int8: number; binary: number } {
  return { float32: 4 * dims, int8: dims + 4, binary: 4 * signWords(dims) };
}

function checkDims(dims: number): void {
  if (!Number.isInteger(dims) || dims <= 0) throw new RangeError(`dims must be a positive integer, got ${dims}`);
}

function checkQuery(query: ArrayLike<number>, dims: number): void {
  if (query.length !== dims) throw new RangeError(`query has ${query.length} dimensions, the vectors have ${dims}`);
}

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
 *
 * Selection is a counting sort rather than a heap: a distance takes only 32·words + 1 values, so one pass stores every
 * allowed row's distance and a histogram of them; the histogram gives the cutoff distance d* (fewer than k rows lie
 * below it, at least k at or below it); a second pass in ascending row order keeps every row below d* and the first
 * rows at d* until k are kept, writing each into its slot of the (distance, row) order directly.
 */
export function hammingSearch(bits: Uint32Array, dims: number, queryBits: Uint32Array, k: number, allowed?: Uint8Array): RankedHit<number>[] {
  const words = signWords(dims);
  if (queryBits.length !== words) throw new RangeError(`query has ${queryBits.length} words, ${dims} dimensions need ${words}`);
  if (bits.length % words !== 0) throw new RangeError(`bit matrix length ${bits.length} is not a multiple of ${words} words`);
  const rows = bits.length / words;
  if (allowed && allowed.length !== rows) throw new RangeError(`allowed mask has ${allowed.length} rows, the matrix ${rows}`);
  // The same check (and message) as the TopK this replaced, on the same Math.min(k, rows).
  const limit = Math.min(k, rows);
  if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`top-k needs a non-negative integer k, got ${limit}`);
  if (limit === 0) return [];

  // Distances span 0..32·words, not 0..dims: padding bits past `dims` are counted too when a caller's rows set them.
  const maxDistance = 32 * words;
  const histogram = histogramScratch(maxDistance + 1);
  const distances = distanceScratch(rows, maxDistance);
  const excluded = distances instanceof Uint16Array ? 0xffff : 0xffffffff; // > maxDistance: never selected
  let allowedRows = 0;
  if (words === 4) {
    // The common 128-d case (also 97–127-d) with the query held in locals.
    const q0 = queryBits[0]!, q1 = queryBits[1]!, q2 = queryBits[2]!, q3 = queryBits[3]!;
    for (let row = 0, offset = 0; row < rows; row++, offset += 4) {
      if (allowed !== undefined && allowed[row] === 0) {
        distances[row] = excluded;
        continue;
      }
      // popcount32 of four words with the last steps shared: per-nibble counts (≤ 4) of two words add without carry,
      // their byte sums (≤ 16) over four words too, and one multiply totals the bytes (≤ 128).
      let x = bits[offset]! ^ q0;
      let y = bits[offset + 1]! ^ q1;
      x = x - ((x >>> 1) & 0x55555555);
      y = y - ((y >>> 1) & 0x55555555);
      let a = (x & 0x33333333) + ((x >>> 2) & 0x33333333) + (y & 0x33333333) + ((y >>> 2) & 0x33333333);
      x = bits[offset + 2]! ^ q2;
      y = bits[offset + 3]! ^ q3;
      x = x - ((x >>> 1) & 0x55555555);
      y = y - ((y >>> 1) & 0x55555555);
      let b = (x & 0x33333333) + ((x >>> 2) & 0x33333333) + (y & 0x33333333) + ((y >>> 2) & 0x33333333);
      a = (a & 0x0f0f0f0f) + ((a >>> 4) & 0x0f0f0f0f) + (b & 0x0f0f0f0f) + ((b >>> 4) & 0x0f0f0f0f);
      const d = Math.imul(a, 0x01010101) >>> 24;
      distances[row] = d;
      histogram[d]!++;
      allowedRows++;
    }
  } else {
    for (let row = 0, offset = 0; row < rows; row++, offset += words) {
      if (allowed !== undefined && allowed[row] === 0) {
        distances[row] = excluded;
        continue;
      }
      // Two words at a time with shared final steps (byte sums ≤ 16), as in the four-word case above.
      let d = 0;
      let w = 0;
      for (; w + 1 < words; w += 2) {
        let x = bits[offset + w]! ^ queryBits[w]!;
        let y = bits[offset + w + 1]! ^ queryBits[w + 1]!;
        x = x - ((x >>> 1) & 0x55555555);
        y = y - ((y >>> 1) & 0x55555555);
        let a = (x & 0x33333333) + ((x >>> 2) & 0x33333333) + (y & 0x33333333) + ((y >>> 2) & 0x33333333);
        a = (a & 0x0f0f0f0f) + ((a >>> 4) & 0x0f0f0f0f);
        d += Math.imul(a, 0x01010101) >>> 24;
      }
      if (w < words) d += popcount32(bits[offset + w]! ^ queryBits[w]!);
      distances[row] = d;
      histogram[d]!++;
      allowedRows++;
    }
  }
  const take = Math.min(limit, allowedRows);
  if (take === 0) return [];

  // Cutoff d*: `below` rows have distance < d*, and below + histogram[d*] ≥ take.
  let cutoff = 0;
  let below = 0;
  while (below + histogram[cutoff]! < take) below += histogram[cutoff++]!;
  // Turn the histogram into the first output slot of each distance ≤ d* (a stable counting sort).
  for (let d = 0, start = 0; d <= cutoff; d++) {
    const count = histogram[d]!;
    histogram[d] = start;
    start += count;
  }
  const order = orderScratch(take);
  let ties = take - below; // rows at distance d* still to keep, the lowest rows first
  for (let row = 0, placed = 0; placed < take; row++) {
    const d = distances[row]!;
    if (d < cutoff || (d === cutoff && ties-- > 0)) {
      order[histogram[d]!++] = row;
      placed++;
    }
  }
  const hits: RankedHit<number>[] = [];
  for (let index = 0; index < take; index++) {
    const row = order[index]!;
    hits.push({ id: row, score: 1 - (2 * distances[row]!) / dims, rank: index + 1 });
  }
  return hits;
}

// Scratch buffers of hammingSearch, reused across calls (JS runs one call at a time) and grown on demand.
let histogramBuffer = new Uint32Array(0);
let distance16Buffer = new Uint16Array(0);
let distance32Buffer = new Uint32Array(0);
let orderBuffer = new Uint32Array(0);

/** A zeroed histogram of at least `size` counters. */
function histogramScratch(size: number): Uint32Array {
  if (histogramBuffer.length < size) histogramBuffer = new Uint32Array(size);
  else histogramBuffer.fill(0, 0, size);
  return histogramBuffer;
}

/** Room for `rows` distances of at most `maxDistance`, leaving one value above it free to mark excluded rows. */
function distanceScratch(rows: number, maxDistance: number): Uint16Array | Uint32Array {
  if (maxDistance < 0xffff) {
    if (distance16Buffer.length < rows) distance16Buffer = new Uint16Array(grownLength(distance16Buffer.length, rows));
    return distance16Buffer;
  }
  if (distance32Buffer.length < rows) distance32Buffer = new Uint32Array(grownLength(distance32Buffer.length, rows));
  return distance32Buffer;
}

function orderScratch(size: number): Uint32Array {
  if (orderBuffer.length < size) orderBuffer = new Uint32Array(grownLength(orderBuffer.length, size));
  return orderBuffer;
}

function grownLength(current: number, needed: number): number {
  return Math.max(needed, Math.ceil(current * 1.5));
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
  const { dims, codes, scales } = quantized;
  // One copy of the query in a Float64Array keeps the hot loop monomorphic whatever array type the caller passed
  // (a shard's isolate sees Float32Arrays, plain arrays and Float64Arrays); values and products are unchanged, so are
  // the scores. The sum runs in int8Dot's order.
  const q = Float64Array.from(query);
  const best = new TopK<number>(Math.min(k, candidates.length));
  for (const { id } of candidates) {
    const base = id * dims;
    let dot = 0;
    for (let i = 0; i < dims; i++) dot += codes[base + i]! * q[i]!;
    const score = dot * scales[id]!;
    if (score >= best.threshold) best.push(id, score);
  }
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

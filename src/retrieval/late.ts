/**
 * Late interaction (ColBERT-style): a query and a document are each a matrix of unit-length token vectors, and
 * MaxSim(q, d) = Σ_i max_j q_i · d_j — every query token is matched with its best document token. Too costly to run over
 * a whole collection here, so it reranks a first-stage candidate list ({@link lateRerank}).
 *
 * Storage: documents' matrices dominate the index (one vector per token instead of one per document), so they are kept
 * as int8 with one float32 scale per token row ({@link quantizeTokenMatrix}): symmetric, scale = max |v_i| / 127, which
 * keeps each row's largest component exact and bounds the error of every component by scale / 2. {@link maxSim} reads
 * that form directly (integer dot product, one multiply by the row's scale), without a float copy.
 *
 * Empty matrices (the encoder never produces one — an empty text is a lone [UNK] token — but stored data might):
 * an empty query scores 0 against anything (the empty sum); an empty document scores −(query tokens), as if each query
 * token found only a dot product of −1, the lowest two unit vectors can have. An empty document thus ranks no higher
 * than any document with tokens, and the score stays finite for sorting, fusion and JSON.
 *
 * @module
 * @example
 *   const stored = quantizeTokenMatrix(docTokens);                 // index: quantizedTokenMatrixBytes(stored) bytes
 *   const reranked = lateRerank(denseHits, queryTokens, (id) => store.get(id), 10);
 */
import type { RankedHit } from "./types.js";

/** Token vectors, row-major [count, dims], rows unit length (TaesrEncoder's `tokenVectors` satisfy it). */
export interface TokenMatrix {
  count: number;
  dims: number;
  data: Float32Array;
}

/** A {@link TokenMatrix} as int8 codes, row-major [count, dims]; row t ≈ scales[t] · data[t·dims …]. */
export interface QuantizedTokenMatrix {
  count: number;
  dims: number;
  data: Int8Array;
  scales: Float32Array;
}

function checkShape(matrix: TokenMatrix | QuantizedTokenMatrix, name: string): void {
  const { count, dims } = matrix;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`${name}.count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(dims) || dims < 1) throw new RangeError(`${name}.dims must be a positive integer, got ${dims}`);
  if (!(matrix.data instanceof Float32Array || matrix.data instanceof Int8Array)) {
    throw new TypeError(`${name}.data must be a Float32Array or (quantized) an Int8Array`);
  }
  if (matrix.data.length !== count * dims) {
    throw new RangeError(`${name}.data has ${matrix.data.length} values, expected count·dims = ${count}·${dims}`);
  }
  if (isQuantized(matrix)) {
    if (!(matrix.scales instanceof Float32Array)) throw new TypeError(`${name}.scales must be a Float32Array`);
    if (matrix.scales.length !== count) throw new RangeError(`${name}.scales has ${matrix.scales.length} entries, expected count ${count}`);
  }
}

/** Whether a token matrix is the int8 form. */
export function isQuantized(matrix: TokenMatrix | QuantizedTokenMatrix): matrix is QuantizedTokenMatrix {
  return matrix.data instanceof Int8Array;
}

/** int8 codes with one scale per row (see the module doc); a zero row gets scale 0 and all-zero codes. */
export function quantizeTokenMatrix(matrix: TokenMatrix): QuantizedTokenMatrix {
  checkShape(matrix, "matrix");
  if (isQuantized(matrix)) throw new TypeError("matrix is already quantized");
  const { count, dims, data: source } = matrix;
  const data = new Int8Array(count * dims);
  const scales = new Float32Array(count);
  for (let t = 0, offset = 0; t < count; t++, offset += dims) {
    let maxAbs = 0;
    for (let i = 0; i < dims; i++) {
      const value = source[offset + i]!;
      if (!Number.isFinite(value)) throw new RangeError(`matrix row ${t} component ${i} is ${value}, not a finite number`);
      maxAbs = Math.max(maxAbs, Math.abs(value));
    }
    if (maxAbs === 0) continue;
    scales[t] = maxAbs / 127;
    // Divide by the stored (float32-rounded) scale, so that codes and scale agree exactly on the row's largest value.
    const inverse = 1 / scales[t]!;
    for (let i = 0; i < dims; i++) data[offset + i] = Math.max(-127, Math.min(127, Math.round(source[offset + i]! * inverse)));
  }
  return { count, dims, data, scales };
}

/**
 * Bytes a quantized matrix occupies as stored: count·dims int8 codes plus count float32 scales. The count and dims
 * themselves (a few bytes of header, or implied by the storage layer) are not included.
 */
export function quantizedTokenMatrixBytes(matrix: QuantizedTokenMatrix): number {
  return matrix.data.byteLength + matrix.scales.byteLength;
}

/**
 * Σ over query tokens of the largest dot product with any document token. Both sides are assumed unit length (then
 * each term is a cosine in [−1, 1]); the document may be float or quantized. Empty matrices: see the module doc.
 */
export function maxSim(query: TokenMatrix, doc: TokenMatrix | QuantizedTokenMatrix): number {
  checkShape(query, "query");
  if (isQuantized(query)) throw new TypeError("query must be a float TokenMatrix, not a quantized one");
  checkShape(doc, "doc");
  if (query.dims !== doc.dims) throw new RangeError(`query has ${query.dims}-dimensional token vectors, the document ${doc.dims}`);
  if (query.count === 0) return 0;
  if (doc.count === 0) return -query.count;
  return isQuantized(doc) ? maxSimQuantized(query, doc) : maxSimFloat(query, doc);
}

function maxSimFloat(query: TokenMatrix, doc: TokenMatrix): number {
  const { dims } = query;
  const q = query.data;
  const d = doc.data;
  let total = 0;
  for (let i = 0, qOffset = 0; i < query.count; i++, qOffset += dims) {
    let best = Number.NEGATIVE_INFINITY;
    for (let j = 0, dOffset = 0; j < doc.count; j++, dOffset += dims) {
      let dot = 0;
      for (let k = 0; k < dims; k++) dot += q[qOffset + k]! * d[dOffset + k]!;
      if (dot > best) best = dot;
    }
    total += best;
  }
  return total;
}

function maxSimQuantized(query: TokenMatrix, doc: QuantizedTokenMatrix): number {
  const { dims } = query;
  const q = query.data;
  const codes = doc.data;
  const scales = doc.scales;
  let total = 0;
  for (let i = 0, qOffset = 0; i < query.count; i++, qOffset += dims) {
    let best = Number.NEGATIVE_INFINITY;
    for (let j = 0, dOffset = 0; j < doc.count; j++, dOffset += dims) {
      let dot = 0;
      for (let k = 0; k < dims; k++) dot += q[qOffset + k]! * codes[dOffset + k]!;
      dot *= scales[j]!;
      if (dot > best) best = dot;
    }
    total += best;
  }
  return total;
}

/**
 * Reranks first-stage candidates by MaxSim against `queryTokens`, best first, at most `topK` (ranks renumbered from 1,
 * scores are MaxSim). Every candidate given is rescored: pass `candidates.slice(0, depth)` to rerank fewer.
 * Ties on MaxSim go to the better original rank, then the smaller id. A candidate named twice counts once, at its
 * better rank.
 *
 * Candidates for which `docTokens` returns undefined are kept, after every scored one, in their original order, with
 * the empty-document score −(query tokens) (see the module doc). Throwing instead would let one document whose token
 * matrix is missing (indexed before token vectors were stored, or not yet backfilled) fail the whole search; ranking
 * it last degrades only that document, and the first stage already judged it a candidate.
 */
export function lateRerank<Id extends string | number>(
  candidates: readonly RankedHit<Id>[],
  queryTokens: TokenMatrix,
  docTokens: (id: Id) => TokenMatrix | QuantizedTokenMatrix | undefined,
  topK: number,
): RankedHit<Id>[] {
  if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK must be a non-negative integer, got ${topK}`);
  checkShape(queryTokens, "queryTokens");
  if (isQuantized(queryTokens)) throw new TypeError("queryTokens must be a float TokenMatrix, not a quantized one");

  const best = new Map<Id, RankedHit<Id>>();
  for (const hit of candidates) {
    const previous = best.get(hit.id);
    if (!previous || hit.rank < previous.rank) best.set(hit.id, hit);
  }
  const floor = -queryTokens.count;
  const rescored = [...best.values()].map((hit) => {
    const tokens = docTokens(hit.id);
    if (tokens === undefined) return { id: hit.id, rank: hit.rank, scored: false, score: floor };
    const name = `token matrix of ${JSON.stringify(hit.id)}`;
    checkShape(tokens, name);
    if (tokens.dims !== queryTokens.dims) {
      throw new RangeError(`${name} has ${tokens.dims}-dimensional vectors, the query ${queryTokens.dims}`);
    }
    return { id: hit.id, rank: hit.rank, scored: true, score: maxSim(queryTokens, tokens) };
  });
  rescored.sort(
    (a, b) => Number(b.scored) - Number(a.scored) || b.score - a.score || a.rank - b.rank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  return rescored.slice(0, topK).map(({ id, score }, index) => ({ id, score, rank: index + 1 }));
}

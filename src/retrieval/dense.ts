/**
 * Dense retrieval: exact cosine top-k over a packed row-major matrix of L2-normalised vectors. Because rows and the
 * query are unit length, cosine is a plain dot product; selection keeps a k-sized heap instead of sorting every row.
 * Matryoshka prefixes are handled here too: a prefix of a unit vector is not unit length, so {@link packMatrix} and
 * {@link prefixNormalize} renormalise after slicing (the prefix of any positive rescaling normalises to the same vector,
 * so storing the normalised 128-d embedding is enough to serve 64-d as well).
 *
 * @module
 * @example
 *   const matrix = packMatrix(docVectors, 128);
 *   const hits = denseSearch(matrix, 128, queryVector, 10); // [{ id: rowIndex, score: cosine, rank: 1 }, …]
 */
import { TopK } from "./topk.js";
import type { RankedHit } from "./types.js";

/** The first `dims` components of `vector`, scaled to unit length (all zeros stays all zeros rather than NaN). */
export function prefixNormalize(vector: ArrayLike<number>, dims: number): Float32Array<ArrayBuffer> {
  if (!Number.isInteger(dims) || dims <= 0) throw new RangeError(`dims must be a positive integer, got ${dims}`);
  if (vector.length < dims) throw new RangeError(`vector has ${vector.length} components, fewer than the ${dims} asked for`);
  const out = new Float32Array(dims);
  let sumSquares = 0;
  for (let i = 0; i < dims; i++) {
    const value = vector[i]!;
    out[i] = value;
    sumSquares += value * value;
  }
  if (sumSquares > 0) {
    const scale = 1 / Math.sqrt(sumSquares);
    for (let i = 0; i < dims; i++) out[i]! *= scale;
  }
  return out;
}

/** Packs the normalised `dims`-prefix of every vector into one row-major matrix (row i = vectors[i]). */
export function packMatrix(vectors: readonly ArrayLike<number>[], dims: number): Float32Array<ArrayBuffer> {
  const matrix = new Float32Array(vectors.length * dims);
  vectors.forEach((vector, row) => matrix.set(prefixNormalize(vector, dims), row * dims));
  return matrix;
}

/**
 * The k rows most similar to `query` by cosine, best first; ids are row indexes. `query` must already be unit length
 * (use {@link prefixNormalize}); ties go to the lower row index.
 */
export function denseSearch(matrix: Float32Array, dims: number, query: ArrayLike<number>, k: number): RankedHit<number>[] {
  if (query.length !== dims) throw new RangeError(`query has ${query.length} dimensions, the matrix has ${dims}`);
  if (matrix.length % dims !== 0) throw new RangeError(`matrix length ${matrix.length} is not a multiple of ${dims}`);
  const rows = matrix.length / dims;
  const best = new TopK<number>(Math.min(k, rows));
  for (let row = 0, offset = 0; row < rows; row++, offset += dims) {
    let dot = 0;
    for (let i = 0; i < dims; i++) dot += matrix[offset + i]! * query[i]!;
    // Only call into the heap when the row can enter it; most rows of a large matrix cannot.
    if (dot >= best.threshold) best.push(row, dot);
  }
  return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
}

/**
 * A ranking of rows turned into a ranking of their owners, for an index that stores several rows per document (one
 * per passage) and scores a document by its best row: `owners[row]` is the row's document; each document keeps its
 * first (best) row's score, the first `k` documents in order. Exact when `hits` is the top (k · the most rows any
 * document has) rows: a document among the k best has fewer than that many rows above its best.
 */
export function bestRowPerOwner(hits: readonly RankedHit<number>[], owners: ArrayLike<number>, k: number): RankedHit<number>[] {
  const seen = new Set<number>();
  const out: RankedHit<number>[] = [];
  for (const hit of hits) {
    if (out.length >= k) break;
    const owner = owners[hit.id];
    if (owner === undefined) throw new RangeError(`row ${hit.id} has no owner (${owners.length} rows)`);
    if (seen.has(owner)) continue;
    seen.add(owner);
    out.push({ id: owner, score: hit.score, rank: out.length + 1 });
  }
  return out;
}

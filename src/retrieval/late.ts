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
import type { FusedHit, RankedHit } from "./types.js";

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

/**
 * Late-interaction rerank fused with the first stage (the served stage; {@link lateRerank} above reorders by MaxSim
 * alone, which on SciFact test scored 0.296 NDCG@10 against hybrid's 0.703: MaxSim from a 32-d head is a weak signal
 * on its own, useful only beside the first-stage evidence).
 *
 * The top `k` of a first-stage ranking are rescored by
 *   final(d) = w_first · first(d) + w_late · late(d),
 * both terms normalised per query against the scorer's theoretical minimum and the prefix's observed maximum, as convex
 * fusion does (fusion.ts, TM2C2):
 * - first(d) = (s(d) − m) / (M − m), s the first-stage score, m its theoretical minimum (0 for a convex or RRF fused
 *   score, both sums of non-negative terms), M the best score of the prefix;
 * - late(d) = (MaxSim(d) + |q|) / (M_late + |q|), |q| the query's token count (MaxSim ≥ −|q|: every term is a cosine
 *   ≥ −1), M_late the best MaxSim of the prefix. The theoretical rather than the observed minimum keeps a flat list flat:
 *   a prefix whose MaxSims all sit within 2% of each other must not be stretched over [0, 1] and outvote the first stage.
 * A prefix document without a token matrix (stored before the model had its head, or by another model version) gets
 * late 0: no late evidence counts as the least, never as average.
 *
 * Documents past the prefix keep their first-stage order and score w_first · first(d): never above any prefix document
 * (first(d) is at most every prefix document's, late ≥ 0), so scores stay non-increasing down the whole list. The
 * prefix depends only on the first-stage ranking and k, never on the page asked for, so pages tile one ranking.
 *
 * Ties: final score, then first-stage position. Weights need not sum to 1 (only their ratio orders the prefix); late 0
 * reproduces the first-stage order exactly.
 */

/** Largest rerank depth: MaxSim costs |q|·|d|·dims per document, and token matrices travel from the shards. */
export const MAX_LATE_RERANK_DEPTH = 100;
/** Rerank depth when neither the request nor the model's tuned late fusion names one. */
export const DEFAULT_LATE_RERANK_DEPTH = 50;

/** Weights of the first-stage score and of MaxSim in {@link fuseLateInteraction}. */
export interface LateFusionWeights {
  first: number;
  late: number;
}

/**
 * The untuned fallback, used only when a request asks for the rerank of a model whose manifest ships no tuned late
 * fusion: equal shares. A tuned fusion (manifest `retrieval.late`, `npm run eval -- --mode hybrid+late --tune-fusion`)
 * replaces it.
 */
export const DEFAULT_LATE_WEIGHTS: Readonly<LateFusionWeights> = Object.freeze({ first: 0.5, late: 0.5 });

export interface LateFusionOptions {
  /** How many of the ranking's best documents are rescored (1 … {@link MAX_LATE_RERANK_DEPTH}). */
  k: number;
  weights: LateFusionWeights;
  /** Theoretical minimum of the first-stage score; default 0 (convex or RRF fused scores). */
  firstMin?: number;
}

/** A copy of a per-list record that may gain the "late" entry. */
function widen<Name extends string>(record: Partial<Record<Name, number>>): Partial<Record<Name | "late", number>> {
  return { ...record } as Partial<Record<Name | "late", number>>;
}

/** MaxSim of each of the ranking's first `k` documents (undefined where `docTokens` has no matrix). */
export function prefixMaxSims<Id>(
  ranking: readonly { id: Id }[],
  queryTokens: TokenMatrix,
  docTokens: (id: Id) => TokenMatrix | QuantizedTokenMatrix | undefined,
  k: number,
): (number | undefined)[] {
  checkShape(queryTokens, "queryTokens");
  if (isQuantized(queryTokens)) throw new TypeError("queryTokens must be a float TokenMatrix, not a quantized one");
  return ranking.slice(0, k).map((hit) => {
    const tokens = docTokens(hit.id);
    // Another model's head (other width) cannot be compared with this query: treated as missing, like no matrix at all.
    return tokens === undefined || tokens.dims !== queryTokens.dims ? undefined : maxSim(queryTokens, tokens);
  });
}

/**
 * The first-stage ranking with its top `k` reordered by the fused score (see the note above), best first, as long as
 * the ranking. Prefix documents gain `ranks.late` (their rank by MaxSim alone within the prefix) and `scores.late`
 * (MaxSim); `score` becomes the fused score everywhere. `late[i]` is the MaxSim of `ranking[i]` (undefined: no token
 * matrix) for i < min(k, ranking.length) — {@link prefixMaxSims} — so a caller can score once and fuse at many weights.
 */
export function fuseLateInteraction<Id extends string | number, Name extends string>(
  ranking: readonly FusedHit<Id, Name>[],
  late: readonly (number | undefined)[],
  queryTokenCount: number,
  options: LateFusionOptions,
): FusedHit<Id, Name | "late">[] {
  const { k, weights } = options;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`the rerank depth k must be a positive integer, got ${k}`);
  for (const [name, weight] of Object.entries(weights)) {
    if (!(weight >= 0) || !Number.isFinite(weight)) throw new RangeError(`late fusion weight "${name}" must be finite and ≥ 0, got ${weight}`);
  }
  if (weights.first === 0 && weights.late === 0) throw new RangeError("late fusion weights must not both be 0");
  if (!Number.isInteger(queryTokenCount) || queryTokenCount < 0) throw new RangeError(`queryTokenCount must be a non-negative integer, got ${queryTokenCount}`);
  const depth = Math.min(k, ranking.length);
  if (late.length < depth) throw new RangeError(`${late.length} MaxSim scores for a prefix of ${depth} documents`);

  const firstMin = options.firstMin ?? 0;
  let firstMax = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < depth; i++) firstMax = Math.max(firstMax, ranking[i]!.score);
  const firstRange = firstMax - firstMin;
  const first = (score: number) => (firstRange > 0 ? Math.max(0, (score - firstMin) / firstRange) : 0);

  let lateMax = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < depth; i++) if (late[i] !== undefined) lateMax = Math.max(lateMax, late[i]!);
  const lateRange = lateMax + queryTokenCount;
  const lateNorm = (score: number | undefined) => (score === undefined || !(lateRange > 0) ? 0 : Math.max(0, (score + queryTokenCount) / lateRange));

  // Rank by MaxSim alone within the prefix (ties: first-stage position), reported as ranks.late.
  const scoredPositions = [...Array(depth).keys()].filter((i) => late[i] !== undefined);
  scoredPositions.sort((a, b) => late[b]! - late[a]! || a - b);
  const lateRank = new Map(scoredPositions.map((position, index) => [position, index + 1]));

  const prefix = ranking.slice(0, depth).map((hit, position) => {
    const maxSimScore = late[position];
    const score = weights.first * first(hit.score) + weights.late * lateNorm(maxSimScore);
    const fused: FusedHit<Id, Name | "late"> = { id: hit.id, score, ranks: widen(hit.ranks), scores: widen(hit.scores) };
    if (maxSimScore !== undefined) {
      fused.ranks.late = lateRank.get(position)!;
      fused.scores.late = maxSimScore;
    }
    return { fused, position };
  });
  prefix.sort((a, b) => b.fused.score - a.fused.score || a.position - b.position);
  const tail = ranking.slice(depth).map((hit): FusedHit<Id, Name | "late"> => ({
    id: hit.id,
    score: weights.first * first(hit.score),
    ranks: widen(hit.ranks),
    scores: widen(hit.scores),
  }));
  return [...prefix.map(({ fused }) => fused), ...tail];
}

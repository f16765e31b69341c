/**
 * An in-memory inverted index over learned sparse term weights (the SPLADE-style head's {tokenId: weight} per text,
 * src/model/encoder.ts `sparse`): score(q, d) = Σ_{v ∈ q ∩ d} q_v · d_v, the dot product the head was trained with,
 * computed term at a time over the postings of the query's terms only — so a query costs the summed length of its
 * terms' posting lists, which is what the FLOPS regulariser keeps small. Platform-neutral.
 *
 * {@link packedSparseSearch} is the same scoring over typed-array postings whose documents are row numbers — the form
 * a store keeps in memory (the index shard's sparse list) — with a filter mask; a unit test holds the two equal.
 *
 * @module
 * @example
 *   const index = new SparseIndex<string>();
 *   index.add("doc-1", { 17: 1.2, 4051: 0.4 });
 *   index.search({ 17: 0.9 }, 10); // [{ id: "doc-1", score: 1.08, rank: 1 }]
 */
import { TopK } from "./topk.js";
import type { RankedHit } from "./types.js";

/** Term id → weight (> 0). Keys are vocabulary ids, as object keys (JSON-friendly) or a Map. */
export type SparseVector = Readonly<Record<number, number>> | ReadonlyMap<number, number>;

function entries(vector: SparseVector, what: string): [number, number][] {
  const list: [number, number][] =
    vector instanceof Map ? [...(vector as ReadonlyMap<number, number>)] : Object.entries(vector).map(([k, w]) => [Number(k), w as number]);
  for (const [term, weight] of list) {
    if (!Number.isInteger(term) || term < 0) throw new RangeError(`${what}: term ids must be non-negative integers, got ${term}`);
    if (!Number.isFinite(weight)) throw new RangeError(`${what}: term ${term} has a non-finite weight ${weight}`);
  }
  return list;
}

/**
 * The lowest score the dot product can give: both sides' weights are > 0, so a document sharing no term with the query
 * scores 0 and every other one more. Convex fusion normalises the sparse list against it.
 */
export const SPARSE_MIN_SCORE = 0;

/** A vector's entries that can add to a score (weight > 0) as [term, weight] pairs, ascending by term. */
export function sparsePairs(vector: SparseVector, what = "sparse vector"): [number, number][] {
  return entries(vector, what)
    .filter(([, weight]) => weight > 0)
    .sort((a, b) => a[0] - b[0]);
}

/** One term's postings over a row space: `docs[i]` (a row) has weight `weights[i]` (> 0) for the term. */
export interface PackedSparsePostings {
  docs: Uint32Array;
  weights: Float64Array | Float32Array;
}

/**
 * The best k of `rows` rows by Σ q_v · d_v over the query's terms, best first (ties to the smaller row): the scoring of
 * {@link SparseIndex.search} over packed postings. Rows sharing no term with the query, and rows whose `allowed` byte
 * is 0 (a metadata filter applied before ranking), are not returned. Query terms must be distinct, weights > 0.
 */
export function packedSparseSearch(
  query: readonly (readonly [number, number])[],
  postings: ReadonlyMap<number, PackedSparsePostings>,
  rows: number,
  k: number,
  allowed?: Uint8Array,
): RankedHit<number>[] {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
  if (allowed && allowed.length !== rows) throw new RangeError(`the filter mask covers ${allowed.length} rows, the index ${rows}`);
  const scores = new Float64Array(rows);
  const touched: number[] = [];
  for (const [term, q] of query) {
    if (!(q > 0) || !Number.isFinite(q)) throw new RangeError(`query term ${term} has weight ${q}; sparse query weights must be finite and > 0`);
    const list = postings.get(term);
    if (!list) continue;
    for (let i = 0; i < list.docs.length; i++) {
      const row = list.docs[i]!;
      if (allowed && allowed[row] === 0) continue;
      // Every product is > 0, so a row still at 0 has not been touched yet.
      if (scores[row] === 0) touched.push(row);
      scores[row] = scores[row]! + q * list.weights[i]!;
    }
  }
  const best = new TopK<number>(Math.min(k, touched.length));
  for (const row of touched) best.push(row, scores[row]!);
  return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
}

export class SparseIndex<Id extends string | number> {
  /** term → parallel arrays of document slots and weights. */
  private readonly postings = new Map<number, { docs: number[]; weights: number[] }>();
  private readonly ids: Id[] = [];
  private readonly slots = new Map<Id, number>();

  /** Documents indexed. */
  get size(): number {
    return this.ids.length;
  }

  /** Posting entries over all terms (the index's size in (term, document) pairs). */
  get postingCount(): number {
    let n = 0;
    for (const p of this.postings.values()) n += p.docs.length;
    return n;
  }

  /** Adds a document's terms; weights ≤ 0 are not indexed (they could never add to a score). Ids must be new. */
  add(id: Id, vector: SparseVector): void {
    if (this.slots.has(id)) throw new Error(`document ${String(id)} is already in the sparse index`);
    const terms = entries(vector, `document ${String(id)}`); // validated before anything is added
    const slot = this.ids.length;
    this.ids.push(id);
    this.slots.set(id, slot);
    for (const [term, weight] of terms) {
      if (weight <= 0) continue;
      let list = this.postings.get(term);
      if (!list) this.postings.set(term, (list = { docs: [], weights: [] }));
      list.docs.push(slot);
      list.weights.push(weight);
    }
  }

  /** The k documents with the largest dot product with `query`, best first (ties to the earlier-added document);
   * documents sharing no term with the query are not returned. */
  search(query: SparseVector, k: number): RankedHit<Id>[] {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}`);
    const scores = new Float64Array(this.ids.length);
    const touched: number[] = [];
    for (const [term, q] of entries(query, "query")) {
      if (q <= 0) continue;
      const list = this.postings.get(term);
      if (!list) continue;
      for (let i = 0; i < list.docs.length; i++) {
        const slot = list.docs[i]!;
        if (scores[slot] === 0) touched.push(slot);
        scores[slot] = scores[slot]! + q * list.weights[i]!;
      }
    }
    const best = new TopK<number>(Math.min(k, touched.length));
    for (const slot of touched) best.push(slot, scores[slot]!);
    return best.sorted().map(({ key, score }, index) => ({ id: this.ids[key]!, score, rank: index + 1 }));
  }
}

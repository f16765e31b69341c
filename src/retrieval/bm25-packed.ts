/**
 * BM25 over packed postings: documents are dense integer indexes, postings are typed arrays, and scores accumulate in
 * one reusable Float64Array instead of a Map — the form an index keeps in memory once it holds 100k documents, where
 * a common word piece ("the", "of") has tens of thousands of postings and a Map-based accumulator (and one object per
 * posting) costs more than the arithmetic. Same formula, same defaults and same tie rule as {@link bm25Search}, so the
 * two rank identically (a unit test holds them equal).
 *
 * Exact pruning: terms are scored from the highest possible contribution (qtf·idf·(k1 + 1)) down, so the rare terms'
 * short lists come first and the common word pieces' long lists last. Before a long list, if what the remaining terms
 * could still add to a document not yet seen is below the k-th best score so far, no such document can reach the top
 * k: the remaining lists then only add to documents already seen (the "continue" strategy of term-at-a-time
 * evaluation). The top k and their scores are the exhaustive ones; only documents that cannot make it are skipped.
 *
 * @module
 * @example
 *   const scorer = new PackedBm25(docLengths);                     // docLengths[i] = |d_i|
 *   const hits = scorer.search(queryTerms, postingsByTerm, 10);    // [{ id: docIndex, score, rank }]
 */
import { BM25_DEFAULTS, bm25Idf, termFrequencies } from "./bm25.js";
import { TopK } from "./topk.js";
import type { Bm25Params, RankedHit } from "./types.js";

/** One term's postings: `docs[i]` (a document index) contains the term `tfs[i]` times; df = docs.length. */
export interface PackedPostings {
  docs: Uint32Array;
  tfs: Uint16Array;
}

/**
 * Corpus statistics that override this index's own: a sharded index scores every shard with the statistics of the
 * whole corpus, so a document's BM25 does not depend on which shard it landed in.
 */
export interface Bm25GlobalStats {
  docCount: number;
  avgDocLength: number;
  /** Document frequency of each query term over the whole corpus; a term missing here uses this index's own df. */
  df: ReadonlyMap<string, number>;
}

export interface PackedBm25SearchOptions {
  corpus?: Bm25GlobalStats;
  /** Only documents whose byte is non-zero are scored (a metadata filter applied before ranking). */
  allowed?: Uint8Array;
}

export class PackedBm25 {
  readonly docCount: number;
  readonly avgDocLength: number;
  private readonly scores: Float64Array;
  /** Indexes with a non-zero score in the current query, so resetting costs the postings read, not docCount. */
  private readonly touched: Uint32Array;
  private readonly seen: Uint8Array;
  /** Scratch for {@link kthLargest}. */
  private readonly partial: Float64Array;

  /** `docLengths[i]` = |d_i|, the number of lexical terms of document i. */
  constructor(
    private readonly docLengths: ArrayLike<number>,
    private readonly params: Bm25Params = BM25_DEFAULTS,
  ) {
    this.docCount = docLengths.length;
    let total = 0;
    for (let i = 0; i < docLengths.length; i++) total += docLengths[i]!;
    // An empty or all-empty corpus has avgdl 0; fall back to 1 so length normalisation stays finite (as bm25Scores).
    this.avgDocLength = this.docCount > 0 && total > 0 ? total / this.docCount : 1;
    this.scores = new Float64Array(this.docCount);
    this.touched = new Uint32Array(this.docCount);
    this.seen = new Uint8Array(this.docCount);
    this.partial = new Float64Array(this.docCount);
  }

  /** The k-th largest current score among the first `count` touched documents (1 ≤ k ≤ count), by quickselect. */
  private kthLargest(count: number, k: number): number {
    const values = this.partial;
    for (let i = 0; i < count; i++) values[i] = this.scores[this.touched[i]!]!;
    let low = 0;
    let high = count - 1;
    const target = k - 1;
    while (low < high) {
      const pivot = values[(low + high) >>> 1]!;
      let i = low;
      let j = high;
      while (i <= j) {
        while (values[i]! > pivot) i++;
        while (values[j]! < pivot) j--;
        if (i <= j) {
          const swap = values[i]!;
          values[i++] = values[j]!;
          values[j--] = swap;
        }
      }
      if (target <= j) high = j;
      else if (target >= i) low = i;
      else return values[target]!;
    }
    return values[target]!;
  }

  /** The k best documents by BM25, best first; ties go to the smaller index. Terms missing from `postings` add nothing. */
  search(
    queryTerms: Iterable<string>,
    postings: ReadonlyMap<string, PackedPostings>,
    k: number,
    options: PackedBm25SearchOptions = {},
  ): RankedHit<number>[] {
    const { k1, b } = this.params;
    const { scores, touched, seen, docLengths } = this;
    const { corpus, allowed } = options;
    if (allowed && allowed.length !== this.docCount) throw new RangeError(`allowed mask has ${allowed.length} documents, the index ${this.docCount}`);
    const avgDocLength = corpus ? (corpus.avgDocLength > 0 ? corpus.avgDocLength : 1) : this.avgDocLength;
    const docCount = corpus?.docCount ?? this.docCount;
    const terms: { term: string; list: PackedPostings; weight: number }[] = [];
    for (const [term, qtf] of termFrequencies(queryTerms)) {
      const list = postings.get(term);
      if (!list || list.docs.length === 0) continue;
      if (list.docs.length !== list.tfs.length) throw new RangeError(`postings of "${term}" have ${list.docs.length} documents but ${list.tfs.length} term frequencies`);
      terms.push({ term, list, weight: qtf * bm25Idf(corpus?.df.get(term) ?? list.docs.length, docCount) });
    }
    // Pruning (see the class comment) needs every contribution bounded by weight·(k1 + 1) ≥ 0; statistics that make
    // an idf negative (df above the document count) turn it off rather than risk a wrong top k.
    const prunable = k > 0 && k1 >= 0 && terms.every((term) => term.weight >= 0);
    // Stable: equal weights keep query order. Rare terms (short lists, high idf) build the accumulator first.
    if (prunable) terms.sort((a, b) => b.weight - a.weight);
    const bounds = new Float64Array(terms.length + 1);
    for (let j = terms.length - 1; j >= 0; j--) bounds[j] = bounds[j + 1]! + terms[j]!.weight * (k1 + 1);
    let touchedCount = 0;
    let onlyTouched = false;
    for (let j = 0; j < terms.length; j++) {
      const { term, list, weight } = terms[j]!;
      const { docs, tfs } = list;
      if (prunable && !onlyTouched && touchedCount >= k && docs.length > touchedCount) {
        // No document untouched so far can gain more than bounds[j] from the terms left; once that is below the k-th
        // best partial score (which only grows), none can enter the top k, so the rest only add to touched ones.
        const theta = this.kthLargest(touchedCount, k);
        if (bounds[j]! * (1 + 1e-9) < theta) onlyTouched = true;
      }
      for (let i = 0; i < docs.length; i++) {
        const doc = docs[i]!;
        const tf = tfs[i]!;
        if (doc >= this.docCount) throw new RangeError(`postings of "${term}" name document ${doc}, but there are ${this.docCount}`);
        if (tf === 0 || (allowed && allowed[doc] === 0)) continue;
        if (seen[doc] === 0) {
          if (onlyTouched) continue;
          seen[doc] = 1;
          touched[touchedCount++] = doc;
        }
        const norm = k1 * (1 - b + (b * docLengths[doc]!) / avgDocLength);
        scores[doc]! += (weight * tf * (k1 + 1)) / (tf + norm);
      }
    }
    const best = new TopK<number>(k);
    for (let i = 0; i < touchedCount; i++) {
      const doc = touched[i]!;
      const score = scores[doc]!;
      if (score >= best.threshold) best.push(doc, score);
      scores[doc] = 0;
      seen[doc] = 0;
    }
    return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
  }
}

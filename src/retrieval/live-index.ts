/**
 * In-memory search structures that follow writes instead of being rebuilt after them: rows are only ever appended, a
 * replaced or deleted document's row is marked dead (the caller keeps the `alive` mask), and every search skips dead
 * rows through that mask. A store that keeps these beside its source of truth pays for one document's terms and codes
 * per write, where rebuilding a 25k-document view after each write cost seconds.
 *
 * - {@link LiveLexicalIndex}: BM25 postings (term → rows, tf) with live document frequencies and lengths, so the
 *   corpus statistics it reports and scores with never count a dead row. Scoring is {@link PackedBm25}'s.
 * - {@link LiveSparseIndex}: learned sparse postings (vocabulary id → rows, weight), scored by
 *   {@link packedSparseSearch}.
 * - {@link LiveDenseIndex}: sign bits and int8 codes of the normalised Matryoshka prefix per row, searched by
 *   {@link binaryRescoreSearch}.
 *
 * Dead rows keep their postings and codes until the caller rebuilds (it should once they are a large share: they cost
 * memory and scan time, never correctness). Platform-neutral.
 *
 * @module
 * @example
 *   const lexical = new LiveLexicalIndex();
 *   lexical.add(0, [["lighthouse", 2]], 2);
 *   lexical.search(["lighthouse"], 10, alive); // [{ id: 0, score, rank: 1 }]
 */
import { PackedBm25, type PackedPostings } from "./bm25-packed.js";
import type { Bm25Params } from "./types.js";
import { BM25_DEFAULTS } from "./bm25.js";
import { binaryRescoreSearch, packSignBits, quantizeInt8Rows, signWords } from "./compressed.js";
import { prefixNormalize } from "./dense.js";
import { packedSparseSearch, type PackedSparsePostings } from "./sparse.js";
import type { RankedHit } from "./types.js";

type TypedArray =
  | Uint8Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>
  | Int8Array<ArrayBuffer>
  | Float32Array<ArrayBuffer>
  | Float64Array<ArrayBuffer>;

/** `array` itself when it holds `needed` elements, else a copy at least twice as long: amortised O(1) appends. */
export function ensureCapacity<T extends TypedArray>(array: T, needed: number): T {
  if (array.length >= needed) return array;
  const Constructor = array.constructor as new (length: number) => T;
  const grown = new Constructor(Math.max(needed, 2 * array.length, 16));
  grown.set(array as never);
  return grown;
}

function checkAppend(row: number, next: number): void {
  if (!Number.isInteger(row) || row < next) throw new RangeError(`rows are appended in increasing order: got row ${row}, the next free row is ${next}`);
}

function checkMask(alive: Uint8Array, rows: number): void {
  if (alive.length < rows) throw new RangeError(`the row mask covers ${alive.length} rows, the index has ${rows}`);
}

interface GrowingPostings<Value extends Uint16Array<ArrayBuffer> | Float32Array<ArrayBuffer>> {
  docs: Uint32Array<ArrayBuffer>;
  values: Value;
  size: number;
}

/** Corpus statistics over live rows: what a sharded caller sums across shards for BM25. */
export interface LiveTermStats {
  docCount: number;
  totalLength: number;
  df: Record<string, number>;
}

export class LiveLexicalIndex {
  private lengths = new Uint32Array(0);
  private rows = 0;
  private readonly postings = new Map<string, GrowingPostings<Uint16Array<ArrayBuffer>>>();
  /** Live rows containing each term; a term whose rows all died is deleted, so `size` counts live terms. */
  private readonly liveDf = new Map<string, number>();
  private liveDocs = 0;
  private liveLength = 0;
  /** Scratch of the scorer, remade only when rows were added since the last search. */
  private scorer: PackedBm25 | null = null;

  constructor(private readonly params: Bm25Params = BM25_DEFAULTS) {}

  /** Rows ever added (dead ones included): the row space the caller's masks cover. */
  get rowCount(): number {
    return this.rows;
  }

  get documentCount(): number {
    return this.liveDocs;
  }

  /** Distinct terms of the live rows. */
  get termCount(): number {
    return this.liveDf.size;
  }

  /** (term, row) pairs of the live rows. */
  get postingCount(): number {
    let total = 0;
    for (const df of this.liveDf.values()) total += df;
    return total;
  }

  /** Appends row `row` (≥ every row added before) holding `terms` ([term, tf ≥ 1], distinct terms) of BM25 length `length`. */
  add(row: number, terms: readonly (readonly [string, number])[], length: number): void {
    checkAppend(row, this.rows);
    this.lengths = ensureCapacity(this.lengths, row + 1);
    this.lengths[row] = length;
    this.rows = row + 1;
    this.scorer = null;
    this.liveDocs += 1;
    this.liveLength += length;
    for (const [term, tf] of terms) {
      if (!(tf >= 1)) continue;
      let list = this.postings.get(term);
      if (!list) this.postings.set(term, (list = { docs: new Uint32Array(4), values: new Uint16Array(4), size: 0 }));
      list.docs = ensureCapacity(list.docs, list.size + 1);
      list.values = ensureCapacity(list.values, list.size + 1);
      list.docs[list.size] = row;
      list.values[list.size++] = Math.min(tf, 0xffff);
      this.liveDf.set(term, (this.liveDf.get(term) ?? 0) + 1);
    }
  }

  /** Takes a row out of the statistics; `terms` and `length` must be what it was added with. Its postings stay, masked. */
  remove(terms: readonly (readonly [string, number])[], length: number): void {
    this.liveDocs -= 1;
    this.liveLength -= length;
    for (const [term, tf] of terms) {
      if (!(tf >= 1)) continue;
      const df = (this.liveDf.get(term) ?? 0) - 1;
      if (df > 0) this.liveDf.set(term, df);
      else this.liveDf.delete(term);
    }
  }

  /** Live document count, total length and each distinct term's live document frequency. */
  stats(terms: Iterable<string>): LiveTermStats {
    const df: Record<string, number> = {};
    for (const term of terms) df[term] = this.liveDf.get(term) ?? 0;
    return { docCount: this.liveDocs, totalLength: this.liveLength, df };
  }

  /**
   * The best k live rows by BM25, best first (ties to the smaller row). `allowed` marks the rows that may score —
   * at least the live ones (a filter narrows it further). Statistics are this index's live ones unless `corpus`
   * (the whole corpus's, for a shard) is given.
   */
  search(
    query: readonly string[],
    k: number,
    allowed: Uint8Array,
    corpus?: { docCount: number; avgDocLength: number; df: ReadonlyMap<string, number> },
  ): RankedHit<number>[] {
    checkMask(allowed, this.rows);
    this.scorer ??= new PackedBm25(this.lengths.subarray(0, this.rows), this.params);
    const lists = new Map<string, PackedPostings>();
    for (const term of query) {
      const list = this.postings.get(term);
      if (list && !lists.has(term)) lists.set(term, { docs: list.docs.subarray(0, list.size), tfs: list.values.subarray(0, list.size) });
    }
    // Without the whole corpus's statistics, this index's live ones (never those of the dead rows its postings keep).
    corpus ??= {
      docCount: this.liveDocs,
      avgDocLength: this.liveDocs > 0 ? this.liveLength / this.liveDocs : 0,
      df: new Map(query.map((term) => [term, this.liveDf.get(term) ?? 0] as const)),
    };
    return this.scorer.search(query, lists, k, { corpus, allowed: allowed.subarray(0, this.rows) });
  }
}

export class LiveSparseIndex {
  private rows = 0;
  // Weights as float32: the model's outputs are float32, so nothing is lost, and a posting takes 8 bytes, not 12 —
  // at 256 terms per document the postings are most of a shard's memory (6.4M of them for 25k documents).
  private readonly postings = new Map<number, GrowingPostings<Float32Array<ArrayBuffer>>>();
  private liveEntries = 0;

  get rowCount(): number {
    return this.rows;
  }

  /** (term, row) pairs of the rows added and not removed. */
  get postingCount(): number {
    return this.liveEntries;
  }

  /** Appends row `row` (≥ every row added before) with its [vocabulary id, weight > 0] pairs. */
  add(row: number, terms: readonly (readonly [number, number])[]): void {
    checkAppend(row, this.rows);
    this.rows = row + 1;
    for (const [term, weight] of terms) {
      if (!(weight > 0)) continue;
      let list = this.postings.get(term);
      if (!list) this.postings.set(term, (list = { docs: new Uint32Array(4), values: new Float32Array(4), size: 0 }));
      list.docs = ensureCapacity(list.docs, list.size + 1);
      list.values = ensureCapacity(list.values, list.size + 1);
      list.docs[list.size] = row;
      list.values[list.size++] = weight;
      this.liveEntries += 1;
    }
  }

  /** Counts a dead row's pairs out of {@link postingCount}; its postings stay, masked by the caller. */
  remove(terms: readonly (readonly [number, number])[]): void {
    for (const [, weight] of terms) if (weight > 0) this.liveEntries -= 1;
  }

  /** The best k rows by Σ q_v·d_v among the rows `allowed` marks, best first (see {@link packedSparseSearch}). */
  search(query: readonly (readonly [number, number])[], k: number, allowed: Uint8Array): RankedHit<number>[] {
    checkMask(allowed, this.rows);
    const lists = new Map<number, PackedSparsePostings>();
    for (const [term] of query) {
      const list = this.postings.get(term);
      if (list) lists.set(term, { docs: list.docs.subarray(0, list.size), weights: list.values.subarray(0, list.size) });
    }
    return packedSparseSearch(query, lists, this.rows, k, allowed.subarray(0, this.rows));
  }
}

/**
 * Sign bits and int8 codes of the unit-normalised `dims`-prefix of each row's vector, for the two-stage dense search.
 * Its own rows are dense (0…size−1); `rowOf(i)` maps them to the caller's row space, where the mask lives.
 */
export class LiveDenseIndex {
  private readonly words: number;
  private size = 0;
  private catalogRows = new Uint32Array(0);
  private bits = new Uint32Array(0);
  private codes = new Int8Array(0);
  private scales = new Float32Array(0);

  constructor(readonly dims: number) {
    this.words = signWords(dims);
  }

  get rowCount(): number {
    return this.size;
  }

  /** Adds the vector of caller row `catalogRow`; vectors wider than `dims` contribute their prefix. */
  add(catalogRow: number, vector: ArrayLike<number>): void {
    if (vector.length < this.dims) throw new RangeError(`a ${vector.length}-d vector has no ${this.dims}-d prefix`);
    const unit = prefixNormalize(vector, this.dims);
    const row = this.size;
    this.catalogRows = ensureCapacity(this.catalogRows, row + 1);
    this.bits = ensureCapacity(this.bits, (row + 1) * this.words);
    this.codes = ensureCapacity(this.codes, (row + 1) * this.dims);
    this.scales = ensureCapacity(this.scales, row + 1);
    this.catalogRows[row] = catalogRow;
    this.bits.set(packSignBits(unit, this.dims), row * this.words);
    const quantized = quantizeInt8Rows(unit, this.dims);
    this.codes.set(quantized.codes, row * this.dims);
    this.scales[row] = quantized.scales[0]!;
    this.size = row + 1;
  }

  /**
   * The best k rows for `query` (already unit-normalised, `dims` wide) among those whose caller row `allowed` marks,
   * as caller rows: a Hamming scan keeping `factor × k` rows, then int8 rescoring.
   */
  search(query: ArrayLike<number>, k: number, factor: number, allowed: Uint8Array | undefined): RankedHit<number>[] {
    const size = this.size;
    let rowsAllowed: Uint8Array | undefined;
    if (allowed) {
      rowsAllowed = new Uint8Array(size);
      for (let row = 0; row < size; row++) rowsAllowed[row] = allowed[this.catalogRows[row]!]!;
    }
    const hits = binaryRescoreSearch(
      this.bits.subarray(0, size * this.words),
      { dims: this.dims, codes: this.codes.subarray(0, size * this.dims), scales: this.scales.subarray(0, size) },
      query,
      k,
      factor,
      rowsAllowed,
    );
    return hits.map((hit) => ({ ...hit, id: this.catalogRows[hit.id]! }));
  }
}

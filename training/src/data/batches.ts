/**
 * Turns pairs into padded token batches for in-batch-negative contrastive training.
 *
 * - Order: each epoch is a seeded permutation of the pairs, so (epoch, index) is a complete data cursor: a resumed run
 *   rebuilds the same epoch and skips to the index, with no RNG state to save.
 * - Bucketing: within windows of `bucketWindow` batches the pairs are sorted by document length before cutting
 *   batches, so a batch pads to a length close to its members' (documents dominate the compute). Batch order is then
 *   shuffled again so lengths do not trend within an epoch.
 * - No duplicate documents or queries within a batch: an in-batch negative equal to the positive is a false negative
 *   that teaches the model to separate identical texts. A conflicting pair waits for the next batch.
 * - Tokenisation is lazy (per batch), so start-up does not pay for the whole corpus; lengths for bucketing use the
 *   character count, which tracks token count closely enough for sorting.
 *
 * @module
 */
import { createRng, deriveSeed, hashString, shuffleInPlace } from "./random.js";
import { normKey, type PairSource, type TextPair } from "./pairs.js";
import { visibleWords } from "./subspace-labels.js";
import type { LexicalScorer } from "./lexical-scores.js";

/** What the batcher needs from a tokenizer (WordPieceTokenizer satisfies it). */
export interface BatchTokenizer {
  encode(text: string, options: { maxLength: number }): number[];
  readonly padId: number;
}

/** A padded, row-major token matrix and its mask (1 = token, 0 = padding). */
export interface TokenMatrix {
  ids: Int32Array;
  mask: Float32Array;
  rows: number;
  length: number;
  /** Non-padding tokens. */
  tokens: number;
}

export interface EncodedBatch {
  queries: TokenMatrix;
  /** The positives (row i belongs to query i), then any hard negatives (docs.rows ≥ queries.rows). */
  docs: TokenMatrix;
  /** The subspace probes' rows (options.probeRows): see {@link PairBatcher.probeSample}. */
  probe?: ProbeSample;
  /** options.lexical's score of every query against every document row, row-major [queries.rows × docs.rows]. */
  lexical?: Float32Array;
}

/** Texts for the subspace objectives (train/subspace-loss.ts): their tokens, and what the labels are derived from. */
export interface ProbeSample {
  /** The rows' tokens, shortest first: the sample mixes three-piece glosses with full-length abstracts, and the
   * micro-batch runs it in length groups (train/length-groups.ts) rather than padding every gloss to the longest. */
  matrix: TokenMatrix;
  /** Per row, in the matrix's order: the words the model sees (subspace-labels.ts visibleWords) and the pair's source. */
  rows: { text: string; source: PairSource }[];
}

export interface BatcherOptions {
  batchSize: number;
  maxQueryLength: number;
  maxDocLength: number;
  seed: number;
  /** Batches per length-sorting window (larger = tighter padding, less randomness in batch composition). */
  bucketWindow?: number;
  /** Rows of the subspace probes' sample added to each batch (absent or 0: none). */
  probeRows?: number;
  /** Scores each batch's queries against its documents (the distillation teacher's lexical half; absent: none). */
  lexical?: LexicalScorer;
}

export class PairBatcher {
  private readonly docKeys: number[];
  private readonly queryKeys: number[];
  private readonly epochCache = new Map<number, number[][]>();

  constructor(
    readonly pairs: readonly TextPair[],
    private readonly tokenizer: BatchTokenizer,
    readonly options: BatcherOptions,
  ) {
    if (pairs.length < options.batchSize) {
      throw new Error(`only ${pairs.length} training pairs for batch size ${options.batchSize}`);
    }
    this.docKeys = pairs.map((p) => hashString(normKey(p.doc)));
    this.queryKeys = pairs.map((p) => hashString(normKey(p.query)));
  }

  /** The batches (as pair indices) of an epoch; deterministic in (seed, epoch). Only full batches are returned. */
  epochBatches(epoch: number): number[][] {
    const cached = this.epochCache.get(epoch);
    if (cached) return cached;
    const { batchSize, seed } = this.options;
    const window = batchSize * (this.options.bucketWindow ?? 32);
    const rng = createRng(deriveSeed(seed, `epoch:${epoch}`));
    const order = shuffleInPlace(
      this.pairs.map((_, i) => i),
      rng,
    );
    const batches: number[][] = [];
    let current: number[] = [];
    let currentDocs = new Set<number>();
    let currentQueries = new Set<number>();
    let waiting: number[] = [];
    const tryAdd = (i: number): boolean => {
      const d = this.docKeys[i] as number;
      const q = this.queryKeys[i] as number;
      if (currentDocs.has(d) || currentQueries.has(q)) return false;
      current.push(i);
      currentDocs.add(d);
      currentQueries.add(q);
      if (current.length === batchSize) {
        batches.push(current);
        current = [];
        currentDocs = new Set();
        currentQueries = new Set();
        // Pairs that conflicted with the finished batch get the first chance at the next one.
        const retry = waiting;
        waiting = [];
        for (const j of retry) if (!tryAdd(j)) waiting.push(j);
      }
      return true;
    };
    for (let start = 0; start < order.length; start += window) {
      const slice = order.slice(start, start + window);
      slice.sort((a, b) => (this.pairs[a] as TextPair).doc.length - (this.pairs[b] as TextPair).doc.length);
      for (const i of slice) if (!tryAdd(i)) waiting.push(i);
    }
    // The final partial batch and any leftovers are dropped: fixed batch size keeps the loss scale comparable.
    shuffleInPlace(batches, rng);
    // Keep only the current and next epoch: memory stays bounded on long runs.
    for (const key of this.epochCache.keys()) if (key < epoch) this.epochCache.delete(key);
    this.epochCache.set(epoch, batches);
    return batches;
  }

  /**
   * Queries and documents of a batch. Pairs with a hard negative (data/hard-negatives.ts) append it as an extra
   * document row after the positives, so `docs.rows` = batch size + negatives (loss.ts scores every query against all
   * of them). A negative equal to a document already in the batch is left out: it would be some row's positive.
   */
  encode(indices: readonly number[]): EncodedBatch {
    // Pairs shortest query first, so the queries can run in length groups (train/length-groups.ts): queries run every
    // recursion step, and padded to the batch's longest they cost about twice their tokens. The loss does not depend on
    // the order of a batch's pairs.
    const byQuery = indices.map((i) => ({ pair: this.pairs[i] as TextPair, tokens: this.tokenizer.encode((this.pairs[i] as TextPair).query, { maxLength: this.options.maxQueryLength }) }));
    byQuery.sort((a, b) => a.tokens.length - b.tokens.length);
    const pairs = byQuery.map((p) => p.pair);
    const docTexts = pairs.map((p) => p.doc);
    const taken = new Set(indices.map((i) => this.docKeys[i] as number));
    for (const pair of pairs) {
      if (pair.negative === undefined) continue;
      const key = hashString(normKey(pair.negative));
      if (taken.has(key)) continue;
      taken.add(key);
      docTexts.push(pair.negative);
    }
    const encoded: EncodedBatch = {
      queries: this.pad(byQuery.map((p) => p.tokens)),
      docs: this.pad(docTexts.map((text) => this.tokenizer.encode(text, { maxLength: this.options.maxDocLength }))),
    };
    if (this.options.probeRows) encoded.probe = this.probeSample(indices, this.options.probeRows);
    if (this.options.lexical) encoded.lexical = this.options.lexical.scores(pairs.map((p) => p.query), docTexts);
    return encoded;
  }

  /**
   * `count` texts drawn uniformly from all pairs (a query or a document, by a seeded coin), for the subspace objectives.
   * Not the batch's own rows: batches are cut from length-sorted windows, so one is mostly one source (WordNet glosses
   * are short, SciFact abstracts long) and the probes would chase each batch's class mix instead of reading the
   * embedding. The draw is seeded by the batch's pair indices, so every data-parallel rank and a resumed run draw the
   * same sample for the same batch.
   */
  probeSample(indices: readonly number[], count: number): ProbeSample {
    const rng = createRng(deriveSeed(this.options.seed, `probe:${indices.join(",")}`));
    const drawn = Array.from({ length: count }, () => this.drawProbeRow(rng));
    // Stable sort: rows of equal length keep their draw order. The loss is a mean over rows, so order does not count.
    drawn.sort((a, b) => a.tokens.length - b.tokens.length);
    return { matrix: this.pad(drawn.map((d) => d.tokens)), rows: drawn.map((d) => d.row) };
  }

  /**
   * `count` rows drawn exactly as {@link probeSample} draws them (same distribution, own seed), without token
   * matrices: what the subspace loss estimates its class shares from (train/subspace-loss.ts balancedClassWeights).
   * Deterministic in (seed, pairs), so every data-parallel rank and a resumed run get the same rows.
   */
  probePopulation(count: number): ProbeSample["rows"] {
    if (this.pairs.length === 0) throw new Error("probePopulation: the batcher has no pairs to draw from");
    const rng = createRng(deriveSeed(this.options.seed, "probe-population"));
    return Array.from({ length: count }, () => this.drawProbeRow(rng).row);
  }

  /** One probe row: a uniform pair, then its query or its document by a coin (two draws of `rng`, in that order). */
  private drawProbeRow(rng: () => number): { tokens: number[]; row: ProbeSample["rows"][number] } {
    const pair = this.pairs[Math.floor(rng() * this.pairs.length)] as TextPair;
    const isQuery = rng() < 0.5;
    const text = isQuery ? pair.query : pair.doc;
    const tokens = this.tokenizer.encode(text, { maxLength: isQuery ? this.options.maxQueryLength : this.options.maxDocLength });
    return { tokens, row: { text: visibleWords(text, tokens.length), source: pair.source } };
  }

  /** Pads to the longest row of the batch (each row already capped by the tokenizer's maxLength). */
  pad(rows: number[][]): TokenMatrix {
    const length = Math.max(1, ...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * length).fill(this.tokenizer.padId);
    const mask = new Float32Array(rows.length * length);
    let tokens = 0;
    rows.forEach((row, r) => {
      ids.set(row, r * length);
      mask.fill(1, r * length, r * length + row.length);
      tokens += row.length;
    });
    return { ids, mask, rows: rows.length, length, tokens };
  }
}

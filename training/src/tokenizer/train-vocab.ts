/**
 * Learns a WordPiece vocabulary from text, the way HuggingFace's WordPiece trainer does: BPE merges by pair frequency
 * over word counts, with "##" marking pieces that continue a word. We chose frequency-based BPE merges over
 * likelihood-scored WordPiece merges (count(ab) / (count(a)·count(b))) because the likelihood score favours pairs of
 * rare symbols, which on a small corpus spends vocabulary on one-off fragments; frequency merges are the better-trodden
 * path and the greedy longest-match encoder works well with them.
 *
 * Algorithm:
 *  1. Count words: each text goes through the runtime's own normalize + preTokenize (src/tokenizer), so training and
 *     inference see identical words.
 *  2. Alphabet: every character seen ≥ minCharFrequency times (weighted by word count) enters the vocabulary, in its
 *     word-initial form and its "##" form — except characters the pre-tokeniser always isolates (punctuation, symbols,
 *     CJK), which never continue a word. This guarantees any word made of alphabet characters encodes without [UNK].
 *     Words containing a rarer character are left out of merging (they encode as [UNK] anyway).
 *  3. Merges: each word is a sequence of symbol ids ("c" first, "##c" after). Repeatedly merge the most frequent
 *     adjacent pair (a, b) into a + b-without-"##", until the vocabulary reaches vocabSize or the best pair occurs
 *     fewer than minFrequency times. Pair counts are updated incrementally: a pair → words index says which words a
 *     merge touches, and a max-heap with lazy invalidation finds the best pair — never a full re-scan per merge.
 *     Ties break on the lower (older) symbol ids, so the result is deterministic for a given corpus.
 *
 * Vocabulary order (= ids): [PAD], [UNK], alphabet (initial forms by code point, then "##" forms), merged pieces in
 * merge order.
 *
 * @example
 *   const { tokenizer } = await trainVocab(texts, { vocabSize: 8192, minFrequency: 3 });
 *   WordPieceTokenizer.fromJSON(tokenizer).encode("hello");
 *
 * @module
 */
import {
  CONTINUATION_PREFIX,
  DEFAULT_MAX_INPUT_CHARS_PER_WORD,
  NORMALIZATION,
  PAD_TOKEN,
  TOKENIZER_FORMAT,
  UNK_TOKEN,
  isIsolatedChar,
  normalizeAndPreTokenize,
  type TokenizerJSON,
} from "../../../src/tokenizer/index.js";

export interface TrainVocabOptions {
  /** Target vocabulary size, specials included. */
  vocabSize: number;
  /** A pair must occur at least this often (weighted by word count) to be merged. Default 2. */
  minFrequency?: number;
  /** A character must occur at least this often to enter the alphabet. Default: minFrequency. */
  minCharFrequency?: number;
  /** Words longer than this (code points) encode as [UNK] and are not trained on. Default 100. */
  maxInputCharsPerWord?: number;
  onProgress?: (progress: TrainProgress) => void;
}

export type TrainProgress =
  | { phase: "count"; texts: number; uniqueWords: number }
  | { phase: "merge"; vocabSize: number; targetVocabSize: number };

export interface TrainStats {
  texts: number;
  uniqueWords: number;
  /** Unique words that took part in merging (all characters in the alphabet, not too long). */
  trainedWords: number;
  /** Alphabet tokens (initial + "##" forms). */
  alphabetTokens: number;
  merges: number;
  /** Why merging stopped. */
  stoppedBy: "vocabSize" | "minFrequency";
  countMs: number;
  mergeMs: number;
}

export interface TrainVocabResult {
  tokenizer: TokenizerJSON;
  stats: TrainStats;
}

export type TextSource = AsyncIterable<string> | Iterable<string>;

/** Word → occurrence count over all texts, using the runtime normalisation and pre-tokenisation. */
export async function countWords(
  texts: TextSource,
  onProgress?: (progress: TrainProgress) => void,
): Promise<{ counts: Map<string, number>; texts: number }> {
  const counts = new Map<string, number>();
  let n = 0;
  for await (const text of texts) {
    for (const word of normalizeAndPreTokenize(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
    n++;
    if (onProgress && n % 1000 === 0) onProgress({ phase: "count", texts: n, uniqueWords: counts.size });
  }
  onProgress?.({ phase: "count", texts: n, uniqueWords: counts.size });
  return { counts, texts: n };
}

/** Trains a vocabulary from raw texts: {@link countWords}, then {@link trainVocabFromCounts}. */
export async function trainVocab(texts: TextSource, options: TrainVocabOptions): Promise<TrainVocabResult> {
  const t0 = performance.now();
  const { counts, texts: n } = await countWords(texts, options.onProgress);
  const countMs = performance.now() - t0;
  const result = trainVocabFromCounts(counts, options);
  return { tokenizer: result.tokenizer, stats: { ...result.stats, texts: n, countMs } };
}

/** Trains a vocabulary from word counts (words as produced by preTokenize). */
export function trainVocabFromCounts(counts: ReadonlyMap<string, number>, options: TrainVocabOptions): TrainVocabResult {
  const t0 = performance.now();
  const minFrequency = options.minFrequency ?? 2;
  const minCharFrequency = options.minCharFrequency ?? minFrequency;
  const maxChars = options.maxInputCharsPerWord ?? DEFAULT_MAX_INPUT_CHARS_PER_WORD;
  const target = options.vocabSize;
  if (!Number.isInteger(target) || target < 2) throw new RangeError(`vocabSize must be an integer ≥ 2, got ${target}`);
  if (!(minFrequency >= 1)) throw new RangeError(`minFrequency must be ≥ 1, got ${minFrequency}`);

  // Words as code-point arrays; long words are [UNK] at encode time, so they must not shape the vocabulary.
  const words: string[][] = [];
  const wordCounts: number[] = [];
  const charCounts = new Map<string, number>();
  for (const [word, count] of counts) {
    const chars = Array.from(word);
    if (chars.length === 0 || chars.length > maxChars) continue;
    words.push(chars);
    wordCounts.push(count);
    for (const c of chars) charCounts.set(c, (charCounts.get(c) ?? 0) + count);
  }

  const alphabet = [...charCounts]
    .filter(([, count]) => count >= minCharFrequency)
    .map(([c]) => c)
    .sort(compareCodePoints);
  const vocab: string[] = [PAD_TOKEN, UNK_TOKEN];
  const symbols = new SymbolTable();
  for (const c of alphabet) vocab.push(c);
  for (const c of alphabet) if (!isIsolatedChar(c)) vocab.push(CONTINUATION_PREFIX + c);
  const alphabetTokens = vocab.length - 2;
  if (vocab.length > target) {
    throw new RangeError(
      `The alphabet alone needs ${vocab.length} tokens, more than vocabSize ${target}: raise vocabSize or minCharFrequency.`,
    );
  }
  for (const token of vocab) symbols.id(token);

  const corpus = WordCorpus.build(words, wordCounts, symbols);
  const inVocab = new Set(vocab);
  let merges = 0;
  let stoppedBy: TrainStats["stoppedBy"] = "minFrequency";
  let lastReport = 0;
  while (true) {
    if (vocab.length >= target) {
      stoppedBy = "vocabSize";
      break;
    }
    const best = corpus.popBestPair(minFrequency);
    if (best === undefined) break;
    const token = symbols.token(best.a) + symbols.token(best.b).slice(CONTINUATION_PREFIX.length);
    const merged = symbols.id(token);
    corpus.merge(best.key, best.a, best.b, merged);
    merges++;
    // Different merge paths can rebuild the same string ("##a"+"##bc", "##ab"+"##c"): one vocabulary entry.
    if (!inVocab.has(token)) {
      inVocab.add(token);
      vocab.push(token);
    }
    if (options.onProgress && vocab.length - lastReport >= 64) {
      lastReport = vocab.length;
      options.onProgress({ phase: "merge", vocabSize: vocab.length, targetVocabSize: target });
    }
  }
  options.onProgress?.({ phase: "merge", vocabSize: vocab.length, targetVocabSize: target });

  return {
    tokenizer: {
      format: TOKENIZER_FORMAT,
      normalization: NORMALIZATION,
      continuationPrefix: CONTINUATION_PREFIX,
      maxInputCharsPerWord: maxChars,
      vocab,
    },
    stats: {
      texts: 0,
      uniqueWords: counts.size,
      trainedWords: corpus.trainedWords,
      alphabetTokens,
      merges,
      stoppedBy,
      countMs: 0,
      mergeMs: performance.now() - t0,
    },
  };
}

/** Sorts by code point (not UTF-16 unit), so astral characters order consistently with the BMP. */
function compareCodePoints(a: string, b: string): number {
  return a.codePointAt(0)! - b.codePointAt(0)!;
}

/** Interns symbol strings as dense integer ids. */
class SymbolTable {
  private readonly ids = new Map<string, number>();
  private readonly tokens: string[] = [];

  id(token: string): number {
    let id = this.ids.get(token);
    if (id === undefined) {
      id = this.tokens.length;
      this.tokens.push(token);
      this.ids.set(token, id);
    }
    return id;
  }

  has(token: string): boolean {
    return this.ids.has(token);
  }

  token(id: number): string {
    return this.tokens[id]!;
  }
}

/** Pair (a, b) of symbol ids packed into one safe integer key: ids stay far below 2^26. */
const PAIR_SHIFT = 2 ** 26;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

/**
 * The unique words as symbol-id sequences in one flat array (each word owns a fixed segment and shrinks in place as
 * merges apply), with pair counts, a pair → words index and a lazy max-heap over pair counts.
 */
class WordCorpus {
  private readonly symbols: Int32Array;
  private readonly starts: Int32Array;
  private readonly lengths: Int32Array;
  private readonly counts: Float64Array;
  private readonly pairCounts = new Map<number, number>();
  /** Pair → indices of words that contained it when it appeared there (may hold stale or repeated entries). */
  private readonly where = new Map<number, number[]>();
  private readonly heap = new PairHeap();
  readonly trainedWords: number;

  private constructor(symbols: Int32Array, starts: Int32Array, lengths: Int32Array, counts: Float64Array) {
    this.symbols = symbols;
    this.starts = starts;
    this.lengths = lengths;
    this.counts = counts;
    this.trainedWords = starts.length;
  }

  static build(words: readonly string[][], wordCounts: readonly number[], table: SymbolTable): WordCorpus {
    const kept: number[][] = [];
    const keptCounts: number[] = [];
    let total = 0;
    for (let w = 0; w < words.length; w++) {
      const chars = words[w]!;
      const ids: number[] = [];
      let ok = true;
      for (let i = 0; i < chars.length; i++) {
        const token = i === 0 ? chars[i]! : CONTINUATION_PREFIX + chars[i]!;
        if (!table.has(token)) {
          ok = false;
          break;
        }
        ids.push(table.id(token));
      }
      if (!ok) continue;
      kept.push(ids);
      keptCounts.push(wordCounts[w]!);
      total += ids.length;
    }
    const symbols = new Int32Array(total);
    const starts = new Int32Array(kept.length);
    const lengths = new Int32Array(kept.length);
    let offset = 0;
    kept.forEach((ids, w) => {
      starts[w] = offset;
      lengths[w] = ids.length;
      symbols.set(ids, offset);
      offset += ids.length;
    });
    const corpus = new WordCorpus(symbols, starts, lengths, Float64Array.from(keptCounts));
    corpus.indexPairs();
    return corpus;
  }

  private indexPairs(): void {
    const { symbols, starts, lengths, counts } = this;
    for (let w = 0; w < starts.length; w++) {
      const s = starts[w]!;
      const end = s + lengths[w]!;
      for (let i = s; i + 1 < end; i++) this.add(pairKey(symbols[i]!, symbols[i + 1]!), counts[w]!, w);
    }
    for (const [key, count] of this.pairCounts) this.heap.push(count, key);
  }

  /** Adds `delta` to a pair's count; on an increase, records that word `w` contains the pair. */
  private add(key: number, delta: number, w: number): void {
    this.pairCounts.set(key, (this.pairCounts.get(key) ?? 0) + delta);
    if (delta > 0) {
      let list = this.where.get(key);
      if (list === undefined) this.where.set(key, (list = []));
      if (list[list.length - 1] !== w) list.push(w);
    }
  }

  /** Removes and returns the most frequent pair with count ≥ minFrequency, or undefined if none is left. */
  popBestPair(minFrequency: number): { key: number; a: number; b: number } | undefined {
    while (this.heap.size > 0) {
      const { count, key } = this.heap.pop();
      const current = this.pairCounts.get(key) ?? 0;
      if (current !== count) {
        // Stale entry. A decreased count is re-queued; an increased one already has a fresher entry.
        if (current > 0 && current < count) this.heap.push(current, key);
        continue;
      }
      if (count < minFrequency) return undefined;
      return { key, a: Math.floor(key / PAIR_SHIFT), b: key % PAIR_SHIFT };
    }
    return undefined;
  }

  /** Replaces every occurrence of (a, b) with `merged`, updating neighbour pair counts and the heap. */
  merge(key: number, a: number, b: number, merged: number): void {
    const { symbols, starts, lengths, counts } = this;
    const touched = new Set<number>();
    for (const w of this.where.get(key) ?? []) {
      const s = starts[w]!;
      const len = lengths[w]!;
      const count = counts[w]!;
      let read = s;
      let write = s;
      const end = s + len;
      while (read < end) {
        if (read + 1 < end && symbols[read] === a && symbols[read + 1] === b) {
          // Left neighbour is the already-rewritten symbol (possibly an earlier `merged` in this word).
          if (write > s) {
            const prev = symbols[write - 1]!;
            this.add(pairKey(prev, a), -count, w);
            const k = pairKey(prev, merged);
            this.add(k, count, w);
            touched.add(k);
          }
          if (read + 2 < end) {
            const next = symbols[read + 2]!;
            this.add(pairKey(b, next), -count, w);
            const k = pairKey(merged, next);
            this.add(k, count, w);
            touched.add(k);
          }
          symbols[write++] = merged;
          read += 2;
        } else {
          symbols[write++] = symbols[read++]!;
        }
      }
      lengths[w] = write - s;
    }
    // Every occurrence is gone, and (a, b) cannot re-form: later merges only create pairs with new symbols.
    this.pairCounts.delete(key);
    this.where.delete(key);
    for (const k of touched) {
      const c = this.pairCounts.get(k) ?? 0;
      if (c > 0) this.heap.push(c, k);
    }
  }
}

/** Binary max-heap of (count, key); ties pop the lower key first for determinism. */
class PairHeap {
  private readonly counts: number[] = [];
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i]!;
    this.counts[i] = this.counts[j]!;
    this.counts[j] = c;
    const k = this.keys[i]!;
    this.keys[i] = this.keys[j]!;
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0]!, key: this.keys[0]! };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      const n = this.keys.length;
      while (true) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < n && this.before(l, best)) best = l;
        if (r < n && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

/**
 * The TAESR WordPiece tokenizer: normalise → pre-tokenise into words → greedy longest-match-first word pieces.
 *
 * Word pieces: the first piece of a word is looked up as-is, every later piece with the continuation prefix "##"
 * ("unaffable" → "un", "##aff", "##able"). A word longer than `maxInputCharsPerWord` code points, or one that cannot be
 * covered entirely by vocabulary pieces, becomes a single [UNK] (the BERT convention: no partial words).
 * No special tokens are added by `encode`; ids 0 and 1 are always [PAD] and [UNK].
 *
 * Runs unchanged in Workers, Node and browsers (no platform APIs), and produces identical ids everywhere because the
 * only Unicode machinery it relies on (String.prototype.normalize, \p{…} escapes) is specified by ECMAScript.
 *
 * Speed: the per-query hot path is a Map lookup per candidate piece. Initial and continuation pieces live in two
 * Maps keyed by the bare piece text, so a lookup slices the word but never concatenates "##" + piece, and the
 * candidate length is capped by the longest piece in the vocabulary instead of the word length.
 *
 * @example
 *   const tok = WordPieceTokenizer.fromJSON(json);
 *   tok.tokenize("Unaffable café");   // ["un", "##aff", "##able", "cafe"]
 *   tok.encode("Unaffable café", { maxLength: 64 });
 *
 * @module
 */
import { NORMALIZATION, normalize, preTokenize } from "./normalize.js";

export const TOKENIZER_FORMAT = "taesr-wordpiece/1" as const;
export const CONTINUATION_PREFIX = "##" as const;
export const PAD_TOKEN = "[PAD]" as const;
export const UNK_TOKEN = "[UNK]" as const;
export const PAD_ID = 0;
export const UNK_ID = 1;
export const DEFAULT_MAX_INPUT_CHARS_PER_WORD = 100;

/** The serialised tokenizer. `vocab[id]` is the token for `id`; continuation pieces carry the "##" prefix. */
export interface TokenizerJSON {
  format: typeof TOKENIZER_FORMAT;
  normalization: typeof NORMALIZATION;
  continuationPrefix: typeof CONTINUATION_PREFIX;
  maxInputCharsPerWord: number;
  vocab: string[];
}

export interface EncodeOptions {
  /** Keep at most this many ids (the rest is cut off). Default: no limit. */
  maxLength?: number;
}

/** A padded batch: every row has the same length (the longest encoded row), padded with {@link PAD_ID}. */
export interface EncodedBatch {
  ids: number[][];
  /** Number of real (non-padding) ids in each row. */
  lengths: number[];
}

export class WordPieceTokenizer {
  readonly padId = PAD_ID;
  readonly unkId = UNK_ID;
  readonly maxInputCharsPerWord: number;

  private readonly vocab: readonly string[];
  /** Every token → id, including specials and "##" pieces (for tokenToId). */
  private readonly byToken: ReadonlyMap<string, number>;
  /** Word-initial pieces → id. */
  private readonly initial: ReadonlyMap<string, number>;
  /** Continuation pieces, keyed WITHOUT the "##" prefix → id. */
  private readonly continuation: ReadonlyMap<string, number>;
  /** Longest piece (without prefix) in UTF-16 units: no candidate longer than this can match. */
  private readonly maxPieceUnits: number;

  private constructor(vocab: readonly string[], maxInputCharsPerWord: number) {
    this.vocab = vocab;
    this.maxInputCharsPerWord = maxInputCharsPerWord;
    const byToken = new Map<string, number>();
    const initial = new Map<string, number>();
    const continuation = new Map<string, number>();
    let maxPieceUnits = 1;
    for (let id = 0; id < vocab.length; id++) {
      const token = vocab[id]!;
      byToken.set(token, id);
      // Specials are never produced from text: the pre-tokeniser always splits "[" and "]" off.
      if (id === PAD_ID || id === UNK_ID) continue;
      const isContinuation = token.startsWith(CONTINUATION_PREFIX);
      const piece = isContinuation ? token.slice(CONTINUATION_PREFIX.length) : token;
      (isContinuation ? continuation : initial).set(piece, id);
      if (piece.length > maxPieceUnits) maxPieceUnits = piece.length;
    }
    this.byToken = byToken;
    this.initial = initial;
    this.continuation = continuation;
    this.maxPieceUnits = maxPieceUnits;
  }

  /** Loads a tokenizer, validating the JSON (format, normalisation, special ids, duplicate or empty tokens). */
  static fromJSON(json: TokenizerJSON): WordPieceTokenizer {
    if (typeof json !== "object" || json === null) fail("expected an object");
    if (json.format !== TOKENIZER_FORMAT) fail(`format is ${JSON.stringify(json.format)}, expected "${TOKENIZER_FORMAT}"`);
    if (json.normalization !== NORMALIZATION) {
      fail(`normalization is ${JSON.stringify(json.normalization)}, this build implements "${NORMALIZATION}"`);
    }
    if (json.continuationPrefix !== CONTINUATION_PREFIX) fail(`continuationPrefix must be "${CONTINUATION_PREFIX}"`);
    const maxChars = json.maxInputCharsPerWord;
    if (!Number.isInteger(maxChars) || maxChars < 1) fail("maxInputCharsPerWord must be a positive integer");
    const vocab = json.vocab;
    if (!Array.isArray(vocab) || vocab.length < 2) fail("vocab must be an array of at least 2 tokens");
    if (vocab[PAD_ID] !== PAD_TOKEN || vocab[UNK_ID] !== UNK_TOKEN) {
      fail(`vocab must start with "${PAD_TOKEN}", "${UNK_TOKEN}"`);
    }
    const seen = new Set<string>();
    for (let id = 0; id < vocab.length; id++) {
      const token = vocab[id];
      if (typeof token !== "string" || token.length === 0 || token === CONTINUATION_PREFIX) {
        fail(`token ${id} is not a non-empty piece: ${JSON.stringify(token)}`);
      }
      if (seen.has(token as string)) fail(`token ${JSON.stringify(token)} appears twice (second at id ${id})`);
      seen.add(token as string);
    }
    return new WordPieceTokenizer([...vocab], maxChars);
  }

  toJSON(): TokenizerJSON {
    return {
      format: TOKENIZER_FORMAT,
      normalization: NORMALIZATION,
      continuationPrefix: CONTINUATION_PREFIX,
      maxInputCharsPerWord: this.maxInputCharsPerWord,
      vocab: [...this.vocab],
    };
  }

  get vocabSize(): number {
    return this.vocab.length;
  }

  idToToken(id: number): string | undefined {
    return this.vocab[id];
  }

  tokenToId(token: string): number | undefined {
    return this.byToken.get(token);
  }

  /** Word pieces of `text` (continuations keep their "##" prefix; uncoverable words are "[UNK]"). */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.vocab[id]!);
  }

  /** Ids of `text`, truncated to `maxLength`. No special tokens are added. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const limit = opts.maxLength ?? Number.POSITIVE_INFINITY;
    if (!(limit >= 0)) throw new RangeError(`maxLength must be ≥ 0, got ${limit}`);
    const out: number[] = [];
    if (limit === 0) return out;
    // With a limit, a huge input is normalised chunk by chunk and work stops once the limit is reached, so a 1 MB
    // request costs about as much as a short one. Chunks end at whitespace, where normalisation is local (no
    // composition, no final-sigma context spans it), so the ids equal those of encoding the whole text at once.
    const chunkUnits = Number.isFinite(limit) ? Math.max(MIN_CHUNK_UNITS, limit * 16) : Number.POSITIVE_INFINITY;
    let from = 0;
    while (from < text.length && out.length < limit) {
      const to = chunkEnd(text, from, chunkUnits);
      for (const word of preTokenize(normalize(from === 0 && to === text.length ? text : text.slice(from, to)))) {
        this.encodeWord(word, out);
        if (out.length >= limit) break;
      }
      from = to;
    }
    if (out.length > limit) out.length = limit;
    return out;
  }

  /** Encodes each text (truncated to `maxLength`) and right-pads every row with PAD to the longest row. */
  encodeBatch(texts: readonly string[], maxLength: number): EncodedBatch {
    const ids = texts.map((t) => this.encode(t, { maxLength }));
    const lengths = ids.map((row) => row.length);
    const width = lengths.reduce((a, b) => Math.max(a, b), 0);
    for (const row of ids) while (row.length < width) row.push(PAD_ID);
    return { ids, lengths };
  }

  /**
   * Pieces joined back into text: pieces separated by single spaces, "##" continuations glued to the previous piece,
   * PAD skipped, UNK rendered as "[UNK]". For text whose words are all in the vocabulary and not truncated,
   * decode(encode(x)) === preTokenize(normalize(x)).join(" ") — i.e. the normalised text with exactly one space
   * between words, punctuation and CJK characters (the original spacing around them is not recoverable).
   */
  decode(ids: ArrayLike<number>): string {
    let out = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === PAD_ID) continue;
      const token = this.vocab[id];
      if (token === undefined) throw new RangeError(`decode: id ${id} is outside the vocabulary (size ${this.vocab.length})`);
      if (id !== UNK_ID && token.startsWith(CONTINUATION_PREFIX)) {
        out += token.slice(CONTINUATION_PREFIX.length);
      } else {
        out += out.length === 0 ? token : ` ${token}`;
      }
    }
    return out;
  }

  /** Appends the piece ids of one pre-tokenised word to `out` (a single UNK if the word cannot be covered). */
  private encodeWord(word: string, out: number[]): void {
    const n = word.length;
    // UTF-16 length ≥ code-point length, so only long words need the exact count.
    if (n > this.maxInputCharsPerWord && codePointLength(word) > this.maxInputCharsPerWord) {
      out.push(UNK_ID);
      return;
    }
    const first = out.length;
    let start = 0;
    while (start < n) {
      const table = start === 0 ? this.initial : this.continuation;
      let end = Math.min(n, start + this.maxPieceUnits);
      let id: number | undefined;
      for (; end > start; end--) {
        // Never cut between a surrogate pair: such a candidate cannot be in the vocabulary.
        const last = word.charCodeAt(end - 1);
        if (last >= 0xd800 && last <= 0xdbff && end < n) continue;
        id = table.get(word.slice(start, end));
        if (id !== undefined) break;
      }
      if (id === undefined) {
        out.length = first;
        out.push(UNK_ID);
        return;
      }
      out.push(id);
      start = end;
    }
  }
}

/** Smallest chunk (UTF-16 units) that {@link WordPieceTokenizer.encode} normalises at once when given a limit. */
const MIN_CHUNK_UNITS = 4096;
const IS_SPACE = /\s/;

/** End of the chunk starting at `from`: the first whitespace at or after `from + size`, or the end of the text. */
function chunkEnd(text: string, from: number, size: number): number {
  if (text.length - from <= size) return text.length;
  for (let i = from + size; i < text.length; i++) {
    if (IS_SPACE.test(text[i]!)) return i;
  }
  return text.length;
}

function fail(why: string): never {
  throw new Error(`Invalid tokenizer JSON: ${why}`);
}

function codePointLength(s: string): number {
  let count = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

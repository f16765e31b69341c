/**
 * Extends a trained WordPiece vocabulary with whole words it fragments: the frequent words of a corpus that the base
 * vocabulary splits into several pieces ("neutrophil" → "neutroph ##il", "dementia" → "dem ##ent ##ia") are appended
 * as word-initial pieces, after every existing entry, so every id the base model knows keeps its meaning and a model
 * trained with the base vocabulary can be continued with the extended one (model/vocab-extension.ts gives the new rows
 * their first values).
 *
 * Why: a 128-wide model reads a fragmented word as a sequence it must compose before it can match it; an 8k vocabulary
 * trained on Debian, WordNet and SciFact together splits a quarter of the words of SciFact's claims, most of them the
 * content words a claim is about. One piece per such word gives it its own row, which can start from the word's GloVe
 * vector (GloVe has "neutrophil" and "dementia" but none of their fragments).
 *
 * Which words (in order of frequency, ties by the word, up to `add`):
 *  - occurs at least `minFrequency` times in the texts;
 *  - at least `minChars` characters and at least one letter (numbers are unbounded and carry no meaning of their own);
 *  - the base vocabulary splits it into ≥ 2 pieces and covers it without [UNK];
 *  - not an inflection of a piece the vocabulary has: a word split into a piece and one inflectional ending
 *    ("decrease ##s", "improve ##d", "elder ##ly") already shares its row with its stem — which both the model and BM25
 *    (whose terms are these pieces) profit from — so it is left as it is. Only the ending is checked, not whether the
 *    stem is a word: "neutroph ##il" and "prost ##ate" are fragments, and get their own rows.
 * Appending a word changes how longer words starting with it are split ("neutrophils" → "neutrophil ##s"), the same
 * greedy longest-match rule as before.
 *
 * @example
 *   const { json, words } = await extendVocabulary(texts, base, { add: 8192, minFrequency: 5 });
 *
 * @module
 */
import { normalizeAndPreTokenize } from "../../../src/tokenizer/normalize.js";
import { UNK_TOKEN, WordPieceTokenizer, type TokenizerJSON } from "../../../src/tokenizer/index.js";

export interface VocabExtensionOptions {
  /** At most this many words are appended. */
  add: number;
  /** Fewest occurrences a word needs. Default {@link DEFAULT_MIN_FREQUENCY}. */
  minFrequency?: number;
  /** Shortest word, in characters. Default 4. */
  minChars?: number;
}

export interface AddedWord {
  word: string;
  count: number;
  /** How the base vocabulary split it. */
  basePieces: string[];
}

export interface VocabExtension {
  /** The base tokenizer's entries followed by the added words. */
  json: TokenizerJSON;
  added: AddedWord[];
  stats: {
    texts: number;
    /** Distinct words seen. */
    words: number;
    /** Distinct words that passed every rule (before the `add` cap). */
    candidates: number;
    /** Candidates' share of all word occurrences, and the added words' share. */
    candidateOccurrences: number;
    addedOccurrences: number;
    occurrences: number;
  };
}

/** Fewest occurrences a word needs by default: rarer words would get rows that training hardly ever updates. */
export const DEFAULT_MIN_FREQUENCY = 5;
const HAS_LETTER = /\p{L}/u;
/** Endings that make "stem ##ending" an inflection of the stem (English: plural, 3rd person, past, participle, adverb). */
const INFLECTIONS: ReadonlySet<string> = new Set(["##s", "##es", "##d", "##ed", "##ing", "##ly"]);

/** The extended vocabulary (module comment); `base` is not modified. */
export async function extendVocabulary(
  texts: AsyncIterable<string> | Iterable<string>,
  base: TokenizerJSON,
  options: VocabExtensionOptions,
): Promise<VocabExtension> {
  const { add, minFrequency = DEFAULT_MIN_FREQUENCY, minChars = 4 } = options;
  if (!Number.isInteger(add) || add < 1) throw new Error(`add must be a positive integer, got ${add}`);
  const tokenizer = WordPieceTokenizer.fromJSON(base);
  const counts = new Map<string, number>();
  let textCount = 0;
  let occurrences = 0;
  for await (const text of texts) {
    textCount += 1;
    for (const word of normalizeAndPreTokenize(text)) {
      occurrences += 1;
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }

  const candidates: AddedWord[] = [];
  let candidateOccurrences = 0;
  for (const [word, count] of counts) {
    if (count < minFrequency || [...word].length < minChars || !HAS_LETTER.test(word)) continue;
    if (word.length > tokenizer.maxInputCharsPerWord) continue;
    const pieces = tokenizer.tokenize(word);
    if (pieces.length < 2 || pieces.includes(UNK_TOKEN)) continue;
    if (pieces.length === 2 && INFLECTIONS.has(pieces[1]!)) continue;
    candidates.push({ word, count, basePieces: pieces });
    candidateOccurrences += count;
  }
  candidates.sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : a.word > b.word ? 1 : 0));
  const added = candidates.slice(0, add);
  const json: TokenizerJSON = { ...base, vocab: [...base.vocab, ...added.map((a) => a.word)] };
  // Round-trip through the runtime loader: an added word can never collide with an entry (it had ≥ 2 pieces).
  WordPieceTokenizer.fromJSON(json);
  return {
    json,
    added,
    stats: {
      texts: textCount,
      words: counts.size,
      candidates: candidates.length,
      candidateOccurrences,
      addedOccurrences: added.reduce((sum, a) => sum + a.count, 0),
      occurrences,
    },
  };
}

/** True when `extended` keeps every entry of `base` at its id (so a model of `base` can be continued with it). */
export function extendsVocabulary(base: readonly string[], extended: readonly string[]): boolean {
  if (extended.length < base.length) return false;
  for (let id = 0; id < base.length; id++) if (base[id] !== extended[id]) return false;
  return true;
}

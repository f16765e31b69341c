/**
 * Toy text for tests that batch pairs without a trained vocabulary: a word-per-token tokenizer and random words.
 *
 * @example
 *   const tokenizer = wordTokenizer(60);
 *   const rand = mulberry32(23);
 *   const doc = Array.from({ length: 5 }, () => randomWord(rand)).join(" ");
 */
import type { BatchTokenizer } from "../../src/data/batches.js";

/** One token per space-separated word, its id from the word's length and first letter, in 1..vocabSize−1 (0 = padding). */
export function wordTokenizer(vocabSize: number): BatchTokenizer {
  return {
    padId: 0,
    encode: (text, options) => text.split(" ").slice(0, options.maxLength).map((w) => 1 + ((w.length * 7 + w.charCodeAt(0)) % (vocabSize - 1))),
  };
}

/** A word of 2–10 letters from a seeded generator: varied enough that toy documents rarely repeat. */
export function randomWord(rand: () => number): string {
  return "abcdefghij".slice(0, 1 + Math.floor(rand() * 9)) + String.fromCharCode(97 + Math.floor(rand() * 26));
}

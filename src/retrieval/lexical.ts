/**
 * Which word pieces count as lexical terms. The tokenizer's pieces are the vocabulary of both the model and BM25, so
 * query and document agree by construction; this filter only drops pieces that carry no evidence of a match:
 * [UNK] (every unknown word would "match" every other) and pieces without a letter or digit (punctuation, symbols).
 *
 * @module
 * @example
 *   lexicalTerms(["the", "[UNK]", ",", "lens", "##es"]) // ["the", "lens", "##es"]
 */

const HAS_LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
const SPECIAL_TOKEN = /^\[[A-Z]+\]$/;

export function lexicalTerms(pieces: readonly string[]): string[] {
  return pieces.filter((piece) => !SPECIAL_TOKEN.test(piece) && HAS_LETTER_OR_DIGIT.test(piece));
}

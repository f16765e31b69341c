/**
 * Public surface of the TAESR tokenizer: normalisation/pre-tokenisation (shared with the vocabulary trainer) and the
 * WordPiece tokenizer with its JSON format.
 *
 * @module
 */
export { NORMALIZATION, isIsolatedChar, normalize, normalizeAndPreTokenize, preTokenize } from "./normalize.js";
export {
  CONTINUATION_PREFIX,
  DEFAULT_MAX_INPUT_CHARS_PER_WORD,
  PAD_ID,
  PAD_TOKEN,
  TOKENIZER_FORMAT,
  UNK_ID,
  UNK_TOKEN,
  WordPieceTokenizer,
} from "./wordpiece.js";
export type { EncodeOptions, EncodedBatch, TokenizerJSON } from "./wordpiece.js";

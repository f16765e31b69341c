/**
 * Text normalisation and pre-tokenisation for the TAESR WordPiece tokenizer ("nfkc-lower-strip-accents").
 *
 * The same two functions run in the vocabulary trainer (Node), the origin service (Node) and the edge (workerd), so
 * they use only ECMAScript built-ins (String.prototype.normalize and Unicode property escapes) — no platform APIs.
 *
 * Normalisation, in this order (each step says why it sits where it does):
 *  1. Unicode NFKC — folds compatibility forms (full-width Latin, ligatures "ﬁ", superscripts, half-width Katakana) into
 *     their plain equivalents so they share vocabulary entries.
 *  2. Lower-case (locale-independent `toLowerCase`) — the model is uncased. Done before accent stripping because some
 *     lower-case mappings introduce combining marks ("İ" → "i" + U+0307).
 *  3. Strip combining marks: NFD, then remove every \p{M} code point, so "café" → "cafe", "Ångström" → "angstrom".
 *     Exception: the kana voicing marks U+3099/U+309A are kept, because "が" → "か" would merge distinct Japanese words
 *     (only Japanese is affected; Hangul is recomposed below either way).
 *  4. NFC — recomposes what NFD split but step 3 kept: Hangul syllables (NFD turns "한" into three jamo) and voiced kana.
 *  5. Whitespace: every Unicode whitespace character (\s, including tab/newline/NBSP) becomes a space.
 *  6. Drop control (\p{Cc}), format (\p{Cf}: zero-width joiners, BOM, bidi marks) and lone-surrogate (\p{Cs}) code points —
 *     they carry no meaning for retrieval and would otherwise become [UNK] or split words.
 *  7. Collapse runs of spaces to one and trim.
 * ASCII-only input skips steps 1, 3 and 4: ASCII is invariant under NFKC/NFD/NFC, and most queries are ASCII.
 *
 * Pre-tokenisation (on normalised text) produces the "words" that WordPiece then splits into pieces:
 *  - split on whitespace;
 *  - every punctuation or symbol character (\p{P}, \p{S} — includes emoji) is its own word;
 *  - every CJK ideograph (Script=Han), Hiragana, Katakana and Hangul character is its own word (these scripts do not
 *    separate words with spaces, so per-character units are the robust default);
 *  - everything else (letters of other scripts, digits, marks) is grouped into maximal runs, so "covid19" and "2024"
 *    are single words and "3.14" is "3", ".", "14".
 *
 * @example
 *   normalize("  Café\u00A0au   LAIT\u200B! ")   // "cafe au lait!"
 *   preTokenize(normalize("Hello, 世界 2024"))    // ["hello", ",", "世", "界", "2024"]
 *
 * @module
 */

/** Identifier recorded in the tokenizer JSON; bump it whenever anything in this module changes behaviour. */
export const NORMALIZATION = "nfkc-lower-strip-accents" as const;

/** Printable ASCII plus tab/LF/CR: text in this range needs no Unicode normalisation. */
const ASCII_ONLY = /^[\t\n\r\x20-\x7e]*$/;
/** Combining marks, except the kana voicing marks (see step 3). */
const COMBINING_MARKS = /(?![\u3099\u309a])\p{M}/gu;
const WHITESPACE = /\s+/g;
const CONTROL = /[\p{Cc}\p{Cf}\p{Cs}]/gu;
const SPACES = / {2,}/g;

/** Characters that always form a word on their own (see the module comment). */
const ISOLATED_CLASS = "\\p{P}\\p{S}\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}";
/** One isolated character, or a maximal run of characters that are neither whitespace nor isolated. */
const PRE_TOKEN = new RegExp(`[${ISOLATED_CLASS}]|[^\\s${ISOLATED_CLASS}]+`, "gu");
const ISOLATED_CHAR = new RegExp(`^[${ISOLATED_CLASS}]$`, "u");

/** Normalises text as described in the module comment. Idempotent: normalize(normalize(x)) === normalize(x). */
export function normalize(text: string): string {
  let s: string;
  if (ASCII_ONLY.test(text)) {
    s = text.toLowerCase().replace(WHITESPACE, " ");
  } else {
    s = text.normalize("NFKC").toLowerCase().normalize("NFD").replace(COMBINING_MARKS, "").normalize("NFC");
    // Whitespace first: \s includes U+FEFF, which must separate words rather than vanish with the other \p{Cf}.
    s = s.replace(WHITESPACE, " ").replace(CONTROL, "").replace(SPACES, " ");
  }
  return s.trim();
}

/** Splits normalised text into words (see the module comment). Input is expected to come from {@link normalize}. */
export function preTokenize(normalized: string): string[] {
  return normalized.match(PRE_TOKEN) ?? [];
}

/** normalize + preTokenize: the word sequence WordPiece sees for a raw text. */
export function normalizeAndPreTokenize(text: string): string[] {
  return preTokenize(normalize(text));
}

/**
 * True when `char` (one code point) always forms a word of its own. Such characters never occur inside a longer word,
 * so the trainer need not give them a "##" continuation form.
 */
export function isIsolatedChar(char: string): boolean {
  return ISOLATED_CHAR.test(char);
}

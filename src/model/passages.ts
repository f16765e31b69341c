/**
 * Documents longer than the model's window, as passages.
 *
 * The encoder reads at most `architecture.maxLength` (128) word pieces; a SciFact abstract is about 300. Embedded whole,
 * a document's vector says nothing about the rest, and a query that matches a later sentence cannot find it densely.
 * Split into passages that each fit the window, embedded one by one and pooled (encoder.ts `passages`), the vector
 * covers the whole document: measured on SciFact train with taesr-edge-small@0.3.0, dense-128 NDCG@10 0.281 → 0.300
 * with the mean of the passage vectors (README → Documents as passages).
 *
 * A passage is whole sentences packed up to `maxPieces` word pieces, with the document's heading in front of every
 * one: the heading is the first line of a text that has one short enough (documentText() writes "title\ntext"), since
 * a passage alone often does not say what it is about. A sentence longer than a passage is cut at word boundaries. A
 * text that fits in one passage is returned unchanged, so short documents embed exactly as before. At most
 * `maxPassages` passages are made; the rest of a longer text is not read (`truncated`).
 *
 * Platform-neutral: the caller supplies the piece count (the tokenizer's), so this module needs no tokenizer.
 *
 * @module
 * @example
 *   const { passages } = splitPassages("Title\nFirst sentence. Second one.", (t) => tokenizer.encode(t).length, { maxPieces: 120, maxPassages: 8 });
 */

export interface PassageOptions {
  /** Word pieces per passage, heading included (≤ the model's maxLength). */
  maxPieces: number;
  /** Most passages per document. */
  maxPassages: number;
}

export interface SplitPassages {
  passages: string[];
  /** True when the text went on beyond `maxPassages` passages (that rest is not embedded). */
  truncated: boolean;
}

/** A heading longer than this share of a passage is treated as body text: it would crowd out the passages. */
const MAX_HEADING_SHARE = 0.25;

/** Sentence ends: . ! ? (and a closing quote or bracket) followed by space and a capital, digit or opening bracket. */
const SENTENCE_BREAK = /(?<=[.!?]["')\]]?)\s+(?=[A-Z0-9("[])/;

/** Validates passage options; throws a RangeError that names the field. */
export function checkPassageOptions(options: PassageOptions, maxLength: number): void {
  const { maxPieces, maxPassages } = options;
  if (!Number.isInteger(maxPieces) || maxPieces < 16 || maxPieces > maxLength) {
    throw new RangeError(`passages.maxPieces must be an integer from 16 to the model's maxLength (${maxLength}), got ${String(maxPieces)}`);
  }
  if (!Number.isInteger(maxPassages) || maxPassages < 1 || maxPassages > 64) {
    throw new RangeError(`passages.maxPassages must be an integer from 1 to 64, got ${String(maxPassages)}`);
  }
}

export function splitPassages(text: string, countPieces: (text: string) => number, options: PassageOptions): SplitPassages {
  const { maxPieces, maxPassages } = options;
  if (countPieces(text) <= maxPieces) return { passages: [text], truncated: false };
  const newline = text.indexOf("\n");
  let heading = newline > 0 ? text.slice(0, newline).trim() : "";
  let headingPieces = heading ? countPieces(heading) : 0;
  if (headingPieces > maxPieces * MAX_HEADING_SHARE) {
    heading = "";
    headingPieces = 0;
  }
  const body = heading ? text.slice(newline + 1) : text;
  const budget = maxPieces - headingPieces;
  const units = body
    .split(SENTENCE_BREAK)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .flatMap((sentence) => (countPieces(sentence) <= budget ? [sentence] : wordWindows(sentence, countPieces, budget)));
  const passages: string[] = [];
  let current: string[] = [];
  let used = 0;
  let truncated = false;
  const flush = (): boolean => {
    if (current.length === 0) return true;
    if (passages.length === maxPassages) return false;
    const joined = current.join(" ");
    passages.push(heading ? `${heading}\n${joined}` : joined);
    current = [];
    used = 0;
    return true;
  };
  for (const unit of units) {
    // Counted alone, a unit's pieces add up across a join: word pieces do not span the space between sentences.
    const pieces = countPieces(unit);
    if (used + pieces > budget && current.length > 0 && !flush()) {
      truncated = true;
      break;
    }
    current.push(unit);
    used += pieces;
  }
  if (!truncated && !flush()) truncated = true;
  if (passages.length === 0) return { passages: [text], truncated: false };
  return { passages, truncated };
}

/** A sentence longer than a passage, cut at spaces into runs of at most `budget` pieces (a single longer word alone). */
function wordWindows(sentence: string, countPieces: (text: string) => number, budget: number): string[] {
  const windows: string[] = [];
  let current: string[] = [];
  let used = 0;
  for (const word of sentence.split(/\s+/)) {
    const pieces = countPieces(word);
    if (used + pieces > budget && current.length > 0) {
      windows.push(current.join(" "));
      current = [];
      used = 0;
    }
    current.push(word);
    used += pieces;
  }
  if (current.length > 0) windows.push(current.join(" "));
  return windows;
}

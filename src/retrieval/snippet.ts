/**
 * Query-biased snippets: the window of a document that contains the most distinct query words, so a reader sees why
 * a result matched. Words are compared after the tokenizer's normalisation (case, accents, width), so "Café" in the
 * text matches "cafe" in the query. Counting distinct words keeps one frequent word ("the") from winning the window.
 *
 * @module
 * @example
 *   makeSnippet("A long text … the lighthouse keeper trimmed the wick …", "lighthouse wick", 80)
 *   // "…the lighthouse keeper trimmed the wick…"
 */
import { normalize, normalizeAndPreTokenize } from "../tokenizer/normalize.js";

export const DEFAULT_SNIPPET_CHARS = 220;
/** Characters of context kept before the first matching word. */
const LEAD_CHARS = 40;
/** Bound on matches examined, so a pathological document cannot make snippets quadratic in its length. */
const MAX_MATCHES = 2_000;

/** A word starts with a letter or digit and continues with letters, digits, combining marks and apostrophes. */
const WORD_START = /[\p{L}\p{N}]/u;
const WORD_CONTINUE = /[\p{L}\p{N}\p{M}'’]/u;

function isAsciiLetterOrDigit(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

function startsWord(code: number): boolean {
  return code < 0x80 ? isAsciiLetterOrDigit(code) : WORD_START.test(String.fromCodePoint(code));
}

function continuesWord(code: number): boolean {
  return code < 0x80 ? isAsciiLetterOrDigit(code) || code === 0x27 : WORD_CONTINUE.test(String.fromCodePoint(code));
}

/**
 * Calls `visit(start, end)` for each word of `text` (UTF-16 offsets) in order, stopping early if it returns false: the
 * matches of the Unicode pattern [\p{L}\p{N}][\p{L}\p{N}\p{M}'’]*, found by a scan by code point with an ASCII fast
 * path. With the regex itself, its match objects and Unicode classes over every character of ten results were most
 * of the snippets' cost.
 */
export function forEachWord(text: string, visit: (start: number, end: number) => boolean | void): void {
  let i = 0;
  while (i < text.length) {
    const code = text.codePointAt(i)!;
    const width = code > 0xffff ? 2 : 1;
    if (!startsWord(code)) {
      i += width;
      continue;
    }
    const start = i;
    i += width;
    while (i < text.length) {
      const next = text.codePointAt(i)!;
      if (!continuesWord(next)) break;
      i += next > 0xffff ? 2 : 1;
    }
    if (visit(start, i) === false) return;
  }
}

function isAscii(word: string): boolean {
  for (let i = 0; i < word.length; i++) if (word.charCodeAt(i) > 0x7f) return false;
  return true;
}

export function makeSnippet(text: string, query: string, maxChars: number = DEFAULT_SNIPPET_CHARS): string {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= maxChars) return flat;

  const queryWords = new Set(normalizeAndPreTokenize(query));
  const matches: { at: number; end: number; word: string }[] = [];
  forEachWord(flat, (at, end) => {
    const raw = flat.slice(at, end);
    // Normalising an ASCII word is lower-casing it; the full normalisation of every word of ten results was a tenth of
    // a search's CPU at 100k documents.
    const word = isAscii(raw) ? raw.toLowerCase() : normalize(raw);
    if (queryWords.has(word)) matches.push({ at, end, word });
    return matches.length < MAX_MATCHES;
  });

  // The window starting at each match holds the matches after it that end within maxChars − LEAD_CHARS of its start;
  // the first window with the most distinct words wins. Matches are in text order, so both ends only move forward: a
  // sliding window with a count per word, linear in the matches (a Set per start was quadratic in common words).
  let bestStart = 0;
  let bestCount = 0;
  const counts = new Map<string, number>();
  let stop = 0; // the window is matches[i, stop)
  for (let i = 0; i < matches.length; i++) {
    if (i > 0 && i - 1 < stop) {
      const left = matches[i - 1]!.word;
      const count = counts.get(left)! - 1;
      if (count === 0) counts.delete(left);
      else counts.set(left, count);
    }
    if (stop < i) stop = i;
    const windowEnd = matches[i]!.at + maxChars - LEAD_CHARS;
    while (stop < matches.length && matches[stop]!.end <= windowEnd) {
      const word = matches[stop++]!.word;
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
    if (counts.size > bestCount) {
      bestCount = counts.size;
      bestStart = matches[i]!.at;
    }
  }

  let start = bestCount === 0 ? 0 : Math.max(0, bestStart - LEAD_CHARS);
  if (start > 0) {
    // Start on a word boundary rather than mid-word.
    const space = flat.indexOf(" ", start);
    start = space >= 0 && space < bestStart ? space + 1 : start;
  }
  let end = Math.min(flat.length, start + maxChars);
  if (end < flat.length) {
    const space = flat.lastIndexOf(" ", end);
    if (space > start) end = space;
  }
  return `${start > 0 ? "…" : ""}${flat.slice(start, end).trim()}${end < flat.length ? "…" : ""}`;
}

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

const WORD = /[\p{L}\p{N}][\p{L}\p{N}\p{M}'’]*/gu;

function isAscii(word: string): boolean {
  for (let i = 0; i < word.length; i++) if (word.charCodeAt(i) > 0x7f) return false;
  return true;
}

export function makeSnippet(text: string, query: string, maxChars: number = DEFAULT_SNIPPET_CHARS): string {
  const flat = text.replace(/\s+/g, " ").trim();
  if (flat.length <= maxChars) return flat;

  const queryWords = new Set(normalizeAndPreTokenize(query));
  const matches: { at: number; end: number; word: string }[] = [];
  for (const match of flat.matchAll(WORD)) {
    // Normalising an ASCII word is lower-casing it; the full normalisation of every word of ten results was a tenth of
    // a search's CPU at 100k documents.
    const word = isAscii(match[0]) ? match[0].toLowerCase() : normalize(match[0]);
    if (queryWords.has(word)) matches.push({ at: match.index, end: match.index + match[0].length, word });
    if (matches.length >= MAX_MATCHES) break;
  }

  let bestStart = 0;
  let bestCount = 0;
  for (let i = 0; i < matches.length; i++) {
    const windowEnd = matches[i]!.at + maxChars - LEAD_CHARS;
    const distinct = new Set<string>();
    for (let j = i; j < matches.length && matches[j]!.end <= windowEnd; j++) distinct.add(matches[j]!.word);
    if (distinct.size > bestCount) {
      bestCount = distinct.size;
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

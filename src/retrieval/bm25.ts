/**
 * Okapi BM25 over caller-supplied term statistics and postings, so any inverted index (SQLite rows, KV, memory) can feed
 * it. Defaults k1 = 0.9, b = 0.4 (the Anserini/Pyserini defaults, tuned for short passages like ours).
 *
 *   score(d, q) = Σ_t qtf(t) · idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·|d|/avgdl))
 *   idf(t)      = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))      (Lucene's form: never negative, even for very common terms)
 *
 * A query term repeated in the query counts once per occurrence (qtf), as in Lucene's disjunction of term clauses.
 *
 * @module
 * @example
 *   const hits = bm25Search(["ret", "##rieval"], { docCount: 3, avgDocLength: 12 }, postingsByTerm, 10);
 */
import { TopK } from "./topk.js";
import type { Bm25CorpusStats, Bm25Params, RankedHit, TermPostings } from "./types.js";

export const BM25_DEFAULTS: Readonly<Bm25Params> = Object.freeze({ k1: 0.9, b: 0.4 });

/** Inverse document frequency of a term found in `df` of `docCount` documents. */
export function bm25Idf(df: number, docCount: number): number {
  return Math.log(1 + (docCount - df + 0.5) / (df + 0.5));
}

/** How many times each term occurs, in first-seen order (used for both query terms and document terms). */
export function termFrequencies(terms: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const term of terms) counts.set(term, (counts.get(term) ?? 0) + 1);
  return counts;
}

/**
 * Accumulates BM25 scores for every document that contains at least one query term. `postings` maps a term to its
 * statistics; query terms absent from it contribute nothing.
 */
export function bm25Scores<Id>(
  queryTerms: Iterable<string>,
  corpus: Bm25CorpusStats,
  postings: ReadonlyMap<string, TermPostings<Id>>,
  params: Bm25Params = BM25_DEFAULTS,
): Map<Id, number> {
  const scores = new Map<Id, number>();
  for (const [term, qtf] of termFrequencies(queryTerms)) {
    const stats = postings.get(term);
    if (!stats || stats.df <= 0) continue;
    const weight = qtf * bm25Idf(stats.df, corpus.docCount);
    for (const { docId, tf, docLength } of stats.postings) {
      if (tf <= 0) continue;
      scores.set(docId, (scores.get(docId) ?? 0) + termContribution(weight, tf, docLength, corpus, params));
    }
  }
  return scores;
}

/** One term's share of a document's score: its query weight (qtf · idf) saturated by tf and normalised by length. */
function termContribution(weight: number, tf: number, docLength: number, corpus: Bm25CorpusStats, { k1, b }: Bm25Params): number {
  // An empty or all-empty corpus has avgdl 0; fall back to 1 so length normalisation stays finite.
  const avgDocLength = corpus.avgDocLength > 0 ? corpus.avgDocLength : 1;
  const norm = k1 * (1 - b + (b * docLength) / avgDocLength);
  return (weight * tf * (k1 + 1)) / (tf + norm);
}

/** A document as {@link bm25DocumentScore} reads it: its term counts and its length in terms. */
export interface Bm25Document {
  tf: ReadonlyMap<string, number>;
  length: number;
}

/** A document's {@link Bm25Document} from its terms. */
export function bm25Document(terms: readonly string[]): Bm25Document {
  return { tf: termFrequencies(terms), length: terms.length };
}

/**
 * The BM25 score of one document for a query whose term counts are `queryTf`: what {@link bm25Scores} gives that
 * document, without walking any posting list — for scoring a few known documents against a large index.
 * `documentFrequency` is the index's df of a term (0 when absent).
 */
export function bm25DocumentScore(
  queryTf: ReadonlyMap<string, number>,
  document: Bm25Document,
  corpus: Bm25CorpusStats,
  documentFrequency: (term: string) => number,
  params: Bm25Params = BM25_DEFAULTS,
): number {
  let score = 0;
  for (const [term, qtf] of queryTf) {
    const tf = document.tf.get(term);
    if (tf === undefined || tf <= 0) continue;
    const df = documentFrequency(term);
    if (df <= 0) continue;
    score += termContribution(qtf * bm25Idf(df, corpus.docCount), tf, document.length, corpus, params);
  }
  return score;
}

/** The k best documents by BM25, best first; ties go to the smaller id. */
export function bm25Search<Id extends string | number>(
  queryTerms: Iterable<string>,
  corpus: Bm25CorpusStats,
  postings: ReadonlyMap<string, TermPostings<Id>>,
  k: number,
  params: Bm25Params = BM25_DEFAULTS,
): RankedHit<Id>[] {
  const best = new TopK<Id>(k);
  for (const [docId, score] of bm25Scores(queryTerms, corpus, postings, params)) best.push(docId, score);
  return best.sorted().map(({ key, score }, index) => ({ id: key, score, rank: index + 1 }));
}

/** An in-memory BM25 index: postings by term and the corpus statistics, documents numbered 0… in input order. */
export interface InMemoryBm25 {
  postings: Map<string, TermPostings<number>>;
  stats: Bm25CorpusStats;
  /** Postings in all (one per distinct term per document), for size estimates. */
  postingCount: number;
}

/** Builds the postings of documents given as their terms (document i gets id i). */
export function buildBm25Postings(documents: Iterable<readonly string[]>): InMemoryBm25 {
  const postings = new Map<string, TermPostings<number>>();
  let totalLength = 0;
  let postingCount = 0;
  let docId = 0;
  for (const terms of documents) {
    totalLength += terms.length;
    for (const [term, tf] of termFrequencies(terms)) {
      let entry = postings.get(term);
      if (!entry) postings.set(term, (entry = { df: 0, postings: [] }));
      entry.df++;
      entry.postings.push({ docId, tf, docLength: terms.length });
      postingCount++;
    }
    docId++;
  }
  return { postings, stats: { docCount: docId, avgDocLength: totalLength / Math.max(1, docId) }, postingCount };
}


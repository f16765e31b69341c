/**
 * Shared shapes of the retrieval core. Every ranker (dense, lexical) yields {@link RankedHit}s with 1-based ranks, and
 * fusion combines any number of named lists into {@link FusedHit}s — so a new ranker (sparse learned terms, late
 * interaction) plugs in by producing one more list, without touching the others.
 *
 * @module
 */

/** One entry of a ranked list produced by a single ranker. */
export interface RankedHit<Id = string> {
  id: Id;
  /** The ranker's own score (cosine for dense, BM25 for lexical); only comparable within one list. */
  score: number;
  /** 1-based position in the list. */
  rank: number;
}

/** The name of a ranked list that takes part in fusion. */
export type ListName = string;

/** One fused result: its fused score plus where it stood in each list it appeared in. */
export interface FusedHit<Id = string, Name extends ListName = ListName> {
  id: Id;
  /** Fused score: Σ weight_l · normalised score_l (convex combination) or Σ weight_l / (k + rank_l) (RRF). */
  score: number;
  /** 1-based rank per list; absent when the document was not in that list. */
  ranks: Partial<Record<Name, number>>;
  /** The ranker's own score per list; absent when the document was not in that list. */
  scores: Partial<Record<Name, number>>;
}

/** Okapi BM25 saturation (k1) and length normalisation (b). */
export interface Bm25Params {
  k1: number;
  b: number;
}

/** Collection-wide statistics BM25 needs; the storage layer computes them however it likes. */
export interface Bm25CorpusStats {
  /** Number of documents in the collection (N). */
  docCount: number;
  /** Mean document length in terms (avgdl). */
  avgDocLength: number;
}

/** One document's occurrence of a term. Carries the document's length so no second lookup is needed while scoring. */
export interface Posting<Id = string> {
  docId: Id;
  /** Term frequency in the document (> 0). */
  tf: number;
  /** Document length in terms (|d|). */
  docLength: number;
}

/** A term's document frequency and postings, as read from whatever inverted index the caller keeps (keyed by term). */
export interface TermPostings<Id = string> {
  /** Number of documents containing the term (n(q)). Given explicitly so that callers may pass truncated postings. */
  df: number;
  postings: Posting<Id>[];
}

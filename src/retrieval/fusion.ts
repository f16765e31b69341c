/**
 * Two ways to fuse named ranked lists into one ranking: score-aware convex combination (the hybrid default) and
 * weighted reciprocal rank fusion (kept for comparison and for callers who ask for it).
 *
 * Convex combination, TM2C2 of Bruch et al. 2023 ("An Analysis of Fusion Functions for Hybrid Retrieval"): per query,
 * each list's scores are normalised against the scorer's theoretical minimum m and the list's observed maximum M,
 * norm(s) = (s − m) / (M − m) — BM25 s / M (m = 0), cosine (s + 1) / (M + 1) (m = −1) — and
 * fused(d) = Σ_l w_l · norm_l(d). A document a list did not return gets that list's lowest observed normalised score:
 * the list was cut at some depth, so the document's true score is at most that, and the bound is a better guess than 0
 * (which would punish a document merely for falling just past a list's cut-off). The exception is a list that came
 * back shorter than the depth it was read at (when the caller says the depth): it was not cut, it holds every document
 * its ranker scores at all (BM25: every document sharing a query term), so a missing document's true score is known —
 * the minimum, normalised 0. Filling it with the lowest observed score instead would hand a document that shares no
 * word with the query most of the lexical weight; with a single lexical match, all of it. Unlike RRF this keeps score
 * magnitudes: a document lexical ranks first by a wide margin (BM25 24.9 against 7.2 for the runner-up) keeps that
 * margin, where RRF reduces it to 1/61 against 1/62 and lets documents at middling ranks in both lists overtake it.
 * Normalising by the theoretical rather than the observed minimum keeps a list's spread honest: a query whose
 * candidates all sit at cosine 0.40–0.45 has a flat dense list, not one stretched across [0, 1].
 *
 * Default convex weights: lexical 0.7, dense 0.3 ({@link DEFAULT_CONVEX_WEIGHTS}) — the fallback for an artifact that
 * ships no tuned fusion. The tuned one is chosen per artifact on a validation split (`npm run eval -- --split train
 * --mode hybrid --tune-fusion --save`, stored in its manifest; see hybrid.ts for which default applies). Only the
 * ratio matters for the ranking; the weights need not sum to 1.
 *
 * Weighted RRF (Cormack et al., 2009): score(d) = Σ_l w_l / (k + rank_l(d)), ranks 1-based, k = 60. It needs only ranks.
 * Default RRF weights lexical × 3, dense × 1 ({@link DEFAULT_RRF_WEIGHTS}): a document found only by the dense list
 * scores at most 1/61 ≈ 0.0164, less than any lexical hit ranked 1..122 gets from lexical alone (3/(60+122) ≈ 0.0165).
 * It cannot stop a document at middling ranks in both lists (e.g. dense #9 + lexical #4: 1/69 + 3/64 ≈ 0.061) from
 * beating lexical's clear #1 found by lexical alone (3/61 ≈ 0.049), which is why convex is the default.
 *
 * @module
 * @example
 *   const fused = convexCombinationFusion({ dense: denseHits, lexical: bm25Hits }, { weights: DEFAULT_CONVEX_WEIGHTS });
 *   const rrf = reciprocalRankFusion({ dense: denseHits, lexical: bm25Hits }, { weights: DEFAULT_RRF_WEIGHTS });
 */
import type { FusedHit, ListName, RankedHit } from "./types.js";

export const RRF_K = 60;

/** Weighted RRF defaults: lexical × 3, dense × 1 (see the module note). */
export const DEFAULT_RRF_WEIGHTS: Readonly<{ dense: number; lexical: number }> = Object.freeze({ dense: 1, lexical: 3 });

/** Convex-combination fallback defaults: lexical 0.7, dense 0.3 — used when the model's manifest ships no tuned fusion. */
export const DEFAULT_CONVEX_WEIGHTS: Readonly<{ dense: number; lexical: number }> = Object.freeze({ dense: 0.3, lexical: 0.7 });

/**
 * The lowest score each standard ranker can give: cosine similarity −1, BM25 0 (the Lucene idf is never negative).
 * Convex fusion normalises against these, so a list with another scorer must name its own minimum.
 */
export const THEORETICAL_MIN_SCORES: Readonly<{ dense: number; lexical: number }> = Object.freeze({ dense: -1, lexical: 0 });

export interface FusionOptions<Name extends ListName> {
  /** Rank offset; larger k flattens the advantage of the very top ranks. Default {@link RRF_K}. */
  k?: number;
  /** Weight per list; lists not named weigh 1. A weight of 0 keeps the list out of the score; its hits stay candidates
   * that rank after every scored document and break ties (see {@link reciprocalRankFusion}). */
  weights?: Partial<Record<Name, number>>;
  /** Keep only the best `limit` fused hits. */
  limit?: number;
}

export interface ConvexFusionOptions<Name extends ListName> {
  /**
   * Weight per list; lists not named weigh 1. A weight of 0 keeps the list out of the fused score, but its hits stay
   * candidates and break ties on it (by their normalised score): a lexical-only default still answers a query that
   * shares no word with any document, ranked by the dense list, and never reorders what the weighted lists separate.
   */
  weights?: Partial<Record<Name, number>>;
  /**
   * The theoretical minimum score per list. Defaults to {@link THEORETICAL_MIN_SCORES} for lists named "dense" and
   * "lexical"; any other list must be given one (guessing wrong would silently skew the fusion).
   */
  minScores?: Partial<Record<Name, number>>;
  /**
   * How many candidates each list was read at. A list shorter than this is complete, and a document missing from it
   * gets normalised 0 rather than the list's lowest observed score. Unknown (default): every list may have been cut.
   */
  depth?: number;
  /** Keep only the best `limit` fused hits. */
  limit?: number;
}

function checkWeight(name: string, weight: number): void {
  if (!(weight >= 0) || !Number.isFinite(weight)) throw new RangeError(`fusion weight for "${name}" must be finite and ≥ 0, got ${weight}`);
}

function byId<Id extends string | number>(a: Id, b: Id): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Fuses named ranked lists by a weighted sum of per-list normalised scores (TM2C2, see the module note), best first.
 * Ties on the fused score go to a document a weighted list returned, then to the higher normalised score in the
 * zero-weight lists, then to the smaller id, so the output is deterministic. Each hit reports the ranks and raw
 * scores of the lists that returned it; a filled-in score for an absent document is used, never reported.
 */
export function convexCombinationFusion<Id extends string | number, Name extends ListName>(
  lists: Readonly<Record<Name, readonly RankedHit<Id>[]>>,
  options: ConvexFusionOptions<Name> = {},
): FusedHit<Id, Name>[] {
  const fused = new Map<Id, FusedHit<Id, Name>>();
  /** Σ normalised scores from zero-weight lists: the tie-break, never part of the reported score. */
  const tieBreak = new Map<Id, number>();
  /** Per list: weight and the filled-in contribution of a document the list did not return. */
  const active: { name: Name; weight: number; fill: number }[] = [];

  for (const name of Object.keys(lists) as Name[]) {
    const weight = options.weights?.[name] ?? 1;
    checkWeight(name, weight);
    const min = options.minScores?.[name] ?? (THEORETICAL_MIN_SCORES as Partial<Record<string, number>>)[name];
    if (min === undefined || !Number.isFinite(min)) throw new RangeError(`convex fusion needs the theoretical minimum score of list "${name}"`);

    // A list should not name a document twice; if it does, its best entry counts once.
    const best = new Map<Id, RankedHit<Id>>();
    for (const hit of lists[name]) {
      const previous = best.get(hit.id);
      if (!previous || hit.score > previous.score) best.set(hit.id, hit);
    }
    let max = Number.NEGATIVE_INFINITY;
    for (const hit of best.values()) max = Math.max(max, hit.score);
    const range = max - min;
    // A list whose best score is the floor (or below it, by rounding) carries no signal: everything normalises to 0.
    // Scores a hair under the floor (float rounding of a cosine) clamp to 0 rather than going negative.
    const normalise = (score: number) => (range > 0 ? Math.max(0, (score - min) / range) : 0);

    let lowest = Number.POSITIVE_INFINITY;
    for (const hit of best.values()) {
      if (weight === 0) {
        let entry = fused.get(hit.id);
        if (!entry) fused.set(hit.id, (entry = { id: hit.id, score: 0, ranks: {}, scores: {} }));
        entry.ranks[name] = hit.rank;
        entry.scores[name] = hit.score;
        tieBreak.set(hit.id, (tieBreak.get(hit.id) ?? 0) + normalise(hit.score));
        continue;
      }
      const contribution = weight * normalise(hit.score);
      lowest = Math.min(lowest, contribution);
      let entry = fused.get(hit.id);
      if (!entry) fused.set(hit.id, (entry = { id: hit.id, score: 0, ranks: {}, scores: {} }));
      entry.score += contribution;
      entry.ranks[name] = hit.rank;
      entry.scores[name] = hit.score;
    }
    // A complete list (shorter than its read depth) knows a missing document's score: the minimum. An empty list adds
    // the same (nothing) to every document, so its fill is 0 either way.
    const complete = options.depth !== undefined && best.size < options.depth;
    if (weight > 0) active.push({ name, weight, fill: complete || lowest === Number.POSITIVE_INFINITY ? 0 : lowest });
  }

  for (const entry of fused.values()) {
    for (const { name, fill } of active) if (entry.ranks[name] === undefined) entry.score += fill;
  }
  // A document only zero-weight lists returned gets the weighted lists' fills, which can equal the score of the last
  // document they did return: it must still follow that document, never overtake it.
  const scored = (hit: FusedHit<Id, Name>) => (active.some(({ name }) => hit.ranks[name] !== undefined) ? 1 : 0);
  const ordered = [...fused.values()].sort(
    (a, b) =>
      b.score - a.score || scored(b) - scored(a) || (tieBreak.get(b.id) ?? 0) - (tieBreak.get(a.id) ?? 0) || byId(a.id, b.id),
  );
  return options.limit === undefined ? ordered : ordered.slice(0, Math.max(0, options.limit));
}

/**
 * Fuses named ranked lists by weighted RRF, best first. Ties on the fused score go to the document with the better
 * best single-list rank, then to the smaller id, so the output is deterministic.
 */
export function reciprocalRankFusion<Id extends string | number, Name extends ListName>(
  lists: Readonly<Record<Name, readonly RankedHit<Id>[]>>,
  options: FusionOptions<Name> = {},
): FusedHit<Id, Name>[] {
  const k = options.k ?? RRF_K;
  if (!(k >= 0) || !Number.isFinite(k)) throw new RangeError(`RRF k must be a finite number ≥ 0, got ${k}`);
  const fused = new Map<Id, FusedHit<Id, Name> & { bestRank: number }>();

  for (const name of Object.keys(lists) as Name[]) {
    const weight = options.weights?.[name] ?? 1;
    checkWeight(name, weight);
    // A zero-weight list adds nothing to the score; its hits stay candidates and its ranks break ties (bestRank).
    for (const hit of lists[name]) {
      let entry = fused.get(hit.id);
      if (!entry) {
        entry = { id: hit.id, score: 0, ranks: {}, scores: {}, bestRank: Number.POSITIVE_INFINITY };
        fused.set(hit.id, entry);
      }
      // A list should not name a document twice; if it does, its best rank counts once.
      const previous = entry.ranks[name];
      if (previous !== undefined && previous <= hit.rank) continue;
      if (previous !== undefined) entry.score -= weight / (k + previous);
      entry.score += weight / (k + hit.rank);
      entry.ranks[name] = hit.rank;
      entry.scores[name] = hit.score;
      entry.bestRank = Math.min(entry.bestRank, hit.rank);
    }
  }

  const ordered = [...fused.values()].sort((a, b) => b.score - a.score || a.bestRank - b.bestRank || byId(a.id, b.id));
  const limited = options.limit === undefined ? ordered : ordered.slice(0, Math.max(0, options.limit));
  return limited.map(({ bestRank: _bestRank, ...hit }) => hit);
}

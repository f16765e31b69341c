/**
 * Weighted reciprocal rank fusion (Cormack et al., 2009): score(d) = Σ_l w_l / (k + rank_l(d)), ranks 1-based, k = 60.
 * RRF needs only ranks, so lists whose scores live on different scales (cosine, BM25) fuse without calibration.
 *
 * Default weights: lexical × 3, dense × 1. The reason is a guard against a weak dense side (a tiny edge model at a
 * shallow depth): with these weights a document found only by the dense list scores at most 1/61 ≈ 0.0164, less than
 * any lexical hit ranked 1..122 gets from lexical alone (3/(60+122) ≈ 0.0165), so dense can reorder lexical hits it
 * agrees with and fill in after them, but cannot push strong lexical matches out. Equal weights are the classic RRF;
 * callers pass their own per request once the dense model earns it.
 *
 * @module
 * @example
 *   const fused = reciprocalRankFusion({ dense: denseHits, lexical: bm25Hits }, { weights: { dense: 1, lexical: 3 } });
 */
import type { FusedHit, ListName, RankedHit } from "./types.js";

export const RRF_K = 60;

export const DEFAULT_FUSION_WEIGHTS: Readonly<{ dense: number; lexical: number }> = Object.freeze({ dense: 1, lexical: 3 });

export interface FusionOptions<Name extends ListName> {
  /** Rank offset; larger k flattens the advantage of the very top ranks. Default {@link RRF_K}. */
  k?: number;
  /** Weight per list; lists not named weigh 1. A weight of 0 leaves the list out entirely. */
  weights?: Partial<Record<Name, number>>;
  /** Keep only the best `limit` fused hits. */
  limit?: number;
}

/**
 * Fuses named ranked lists into one ranking, best first. Ties on the fused score go to the document with the better
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
    if (!(weight >= 0) || !Number.isFinite(weight)) throw new RangeError(`fusion weight for "${name}" must be finite and ≥ 0, got ${weight}`);
    if (weight === 0) continue;
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

  const ordered = [...fused.values()].sort(
    (a, b) => b.score - a.score || a.bestRank - b.bestRank || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  const limited = options.limit === undefined ? ordered : ordered.slice(0, Math.max(0, options.limit));
  return limited.map(({ bestRank: _bestRank, ...hit }) => hit);
}

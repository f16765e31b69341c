/**
 * Hybrid ranking policy: which lists a search mode uses, how deep each list is read, and how the lists become one
 * ranking. Storage reads the candidates; this module decides what to do with them, so every store ranks alike.
 *
 * @module
 * @example
 *   const depth = candidateDepth("hybrid", 10);                       // 50 candidates per list
 *   const ranked = combineRankings("hybrid", { dense, lexical }, { topK: 10 });
 */
import { DEFAULT_FUSION_WEIGHTS, RRF_K, reciprocalRankFusion } from "./fusion.js";
import type { FusedHit, RankedHit } from "./types.js";

export type SearchMode = "dense" | "lexical" | "hybrid";
export type HybridList = "dense" | "lexical";

export interface HybridOptions {
  topK: number;
  /** Overrides of {@link DEFAULT_FUSION_WEIGHTS}, per list. Only hybrid mode uses them. */
  weights?: Partial<Record<HybridList, number>>;
  /** RRF k, default 60. */
  k?: number;
}

/** Fusion rewards documents that several lists agree on, which needs lists deeper than topK. */
export const MIN_FUSION_CANDIDATES = 50;
export const MAX_FUSION_CANDIDATES = 500;

/** How many candidates to read from each list: topK for a single list; max(4·topK, 50) capped at 500 for fusion. */
export function candidateDepth(mode: SearchMode, topK: number, requested?: number): number {
  if (mode !== "hybrid") return topK;
  const depth = requested ?? Math.max(4 * topK, MIN_FUSION_CANDIDATES);
  return Math.min(Math.max(depth, topK), MAX_FUSION_CANDIDATES);
}

/** Which lists a mode needs. */
export function listsFor(mode: SearchMode): { dense: boolean; lexical: boolean } {
  return { dense: mode !== "lexical", lexical: mode !== "dense" };
}

/**
 * One ranking from the mode's lists, best first, at most topK long. Single-list modes keep the list's own score
 * (cosine or BM25: meaningful to a reader); hybrid mode scores by weighted RRF.
 */
export function combineRankings<Id extends string | number>(
  mode: SearchMode,
  lists: { dense?: readonly RankedHit<Id>[]; lexical?: readonly RankedHit<Id>[] },
  options: HybridOptions,
): FusedHit<Id, HybridList>[] {
  if (mode === "hybrid") {
    return reciprocalRankFusion<Id, HybridList>(
      { dense: lists.dense ?? [], lexical: lists.lexical ?? [] },
      { weights: { ...DEFAULT_FUSION_WEIGHTS, ...options.weights }, k: options.k ?? RRF_K, limit: options.topK },
    );
  }
  const list = lists[mode] ?? [];
  return list.slice(0, options.topK).map((hit) => ({
    id: hit.id,
    score: hit.score,
    ranks: { [mode]: hit.rank },
    scores: { [mode]: hit.score },
  }));
}

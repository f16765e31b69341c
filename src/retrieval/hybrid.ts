/**
 * Hybrid ranking policy: which lists a search mode uses, how deep each list is read, and how the lists become one
 * ranking. Storage reads the candidates; this module decides what to do with them, so every store ranks alike.
 *
 * Hybrid mode fuses by convex combination of normalised scores unless the caller asks for RRF (see fusion.ts for why
 * score-aware fusion is the default). Caller weights override the chosen fusion's defaults list by list.
 *
 * The defaults come in two layers. A model artifact may ship a tuned fusion (manifest `retrieval.fusion`, written by
 * `npm run eval -- --tune-fusion --save` from a validation split); callers pass it as `defaults` and it then decides
 * the method when the caller names none, and the weights of that method. Without one — or for the other method, which
 * was not what was tuned — the built-in constants apply ({@link DEFAULT_CONVEX_WEIGHTS}, {@link DEFAULT_RRF_WEIGHTS}).
 * An explicit `fusion` or `weights` always wins over both layers.
 *
 * A third list, "sparse" (learned sparse terms of a model with the SPLADE-style head, sparse.ts), joins hybrid mode
 * when the caller passes it; without it hybrid fuses dense and lexical exactly as it always has. Its default weight
 * ({@link sparseWeight}) is the tuned one when the model's fusion was tuned with the sparse list (`weights.sparse`,
 * from `npm run eval -- --tune-fusion` over all three lists); otherwise the chosen fusion's default lexical weight, so
 * that an untuned learned term list counts as much as BM25, the list a term-matching signal is known to help in,
 * instead of a ratio nobody measured. A caller's `weights.sparse` overrides both; "sparse" mode ranks by it alone.
 *
 * @module
 * @example
 *   const ranked = combineRankings("hybrid", { dense, lexical }, { topK: 10 });                   // convex 0.7 / 0.3
 *   const rrf = combineRankings("hybrid", { dense, lexical }, { topK: 10, fusion: "rrf" });       // RRF 3 / 1, k = 60
 *   const tuned = combineRankings("hybrid", { dense, lexical }, { topK: 10, defaults: manifest.retrieval?.fusion });
 */
import {
  DEFAULT_CONVEX_WEIGHTS,
  DEFAULT_RRF_WEIGHTS,
  RRF_K,
  THEORETICAL_MIN_SCORES,
  convexCombinationFusion,
  reciprocalRankFusion,
} from "./fusion.js";
import { SPARSE_MIN_SCORE } from "./sparse.js";
import type { FusedHit, RankedHit } from "./types.js";

export type SearchMode = "dense" | "lexical" | "sparse" | "hybrid";
/** The two lists every hybrid search fuses. */
export type HybridList = "dense" | "lexical";
/** Every list a search can rank by: the hybrid pair and the learned sparse list of a model with the sparse head. */
export type RankingList = HybridList | "sparse";
export type FusionMethod = "convex" | "rrf";

/** Score-aware fusion unless asked otherwise: it keeps a clear lexical winner on top where RRF can demote it. */
export const DEFAULT_FUSION: FusionMethod = "convex";

/**
 * A hybrid default other than the built-in one, e.g. the tuned fusion a model manifest ships. `sparse` is present
 * when the fusion was tuned with the learned sparse list (a model with the sparse head); `withoutSparse` is then the
 * two-list fusion tuned on the same split, for searches that do not read that list ({@link fusionDefaultFor}).
 */
export interface FusionDefault {
  method: FusionMethod;
  weights: { dense: number; lexical: number; sparse?: number };
  withoutSparse?: { method: FusionMethod; weights: { dense: number; lexical: number } };
}

/** The built-in hybrid default: {@link DEFAULT_FUSION} with its constant weights. */
export const BUILT_IN_FUSION_DEFAULT: Readonly<FusionDefault> = Object.freeze({ method: DEFAULT_FUSION, weights: DEFAULT_CONVEX_WEIGHTS });

export interface HybridOptions {
  topK: number;
  /** How hybrid mode fuses the lists; default `defaults.method`, else {@link DEFAULT_FUSION}. Single-list modes ignore it. */
  fusion?: FusionMethod;
  /**
   * Overrides of the chosen fusion's default weights, per list: `defaults.weights` when `defaults` is of the chosen
   * method, else {@link DEFAULT_CONVEX_WEIGHTS} (lexical 0.7, dense 0.3) or {@link DEFAULT_RRF_WEIGHTS} (lexical 3,
   * dense 1); `sparse` defaults to the lexical default ({@link sparseWeight}). Only hybrid mode uses them.
   */
  weights?: Partial<Record<RankingList, number>>;
  /** The model's tuned fusion default, if it ships one (see the module note); absent → the built-in constants. */
  defaults?: FusionDefault;
  /** RRF k, default 60; convex fusion has no such parameter. */
  k?: number;
  /**
   * How many candidates each list was read at (the index's fixed page depth). Convex fusion needs it to tell a list
   * that was cut (a missing document may score just below its last entry) from a complete one (a missing document
   * scores the minimum); unknown, every list counts as cut.
   */
  candidates?: number;
}

/** The lists a search reads; `sparse` is present (true) only when it reads the sparse list. */
export interface ListSelection {
  dense: boolean;
  lexical: boolean;
  sparse?: true;
}

/**
 * Which lists a mode needs. Hybrid reads the sparse list only when `sparse` says the model and index can make it
 * (a model with the sparse head, an index that stores its postings); "sparse" mode reads nothing else.
 */
export function listsFor(mode: SearchMode, options: { sparse?: boolean } = {}): ListSelection {
  const sparse = mode === "sparse" || (mode === "hybrid" && options.sparse === true);
  return { dense: mode === "dense" || mode === "hybrid", lexical: mode === "lexical" || mode === "hybrid", ...(sparse ? { sparse } : {}) };
}

/**
 * The weights hybrid mode fuses with: the fusion's defaults — the tuned `tuned.weights` if `tuned` is of this method,
 * else the built-in constants — overridden list by list (undefined keeps the default). Tuned weights of the other
 * method are ignored: RRF and convex weights live on different scales (3 : 1 ranks vs 0.7 : 0.3 normalised scores).
 */
export function hybridWeights(
  fusion: FusionMethod,
  overrides?: Partial<Record<RankingList, number>>,
  tuned?: FusionDefault,
): { dense: number; lexical: number } {
  const defaults = tuned?.method === fusion ? tuned.weights : fusion === "convex" ? DEFAULT_CONVEX_WEIGHTS : DEFAULT_RRF_WEIGHTS;
  return { dense: overrides?.dense ?? defaults.dense, lexical: overrides?.lexical ?? defaults.lexical };
}

/**
 * The sparse list's weight in hybrid mode: the caller's; else, when `tuned` is of this method, its tuned sparse
 * weight, or its lexical weight when it was tuned without the sparse list; else the built-in lexical constant (see
 * the module note). A caller's lexical override does not move it: turning BM25 down is not a statement about the
 * learned terms.
 */
export function sparseWeight(fusion: FusionMethod, overrides?: Partial<Record<RankingList, number>>, tuned?: FusionDefault): number {
  if (overrides?.sparse !== undefined) return overrides.sparse;
  if (tuned?.method === fusion) return tuned.weights.sparse ?? tuned.weights.lexical;
  return (fusion === "convex" ? DEFAULT_CONVEX_WEIGHTS : DEFAULT_RRF_WEIGHTS).lexical;
}

/**
 * The default a search fuses with, given whether it reads the learned sparse list: a three-list tuning's own weights
 * when it does, its two-list tuning (`withoutSparse`) when it does not — a backend without sparse postings, a request
 * with `weights.sparse` 0 — since the three-list weights without their third list are a ratio nobody tuned (for
 * taesr-edge-small@0.4.0, lexical 0.6 : dense 0.1 where the best two-list point is 0.4 : 0.6). A default without
 * `withoutSparse` is returned as it is.
 */
export function fusionDefaultFor<T extends FusionDefault>(tuned: T, readsSparse: boolean): T | NonNullable<FusionDefault["withoutSparse"]> {
  return !readsSparse && tuned.withoutSparse ? tuned.withoutSparse : tuned;
}

/** The fusion method and weights a hybrid search uses: explicit choices first, then the tuned default, then constants. */
export function resolveFusion(options: Pick<HybridOptions, "fusion" | "weights" | "defaults">): FusionDefault {
  const method = options.fusion ?? options.defaults?.method ?? DEFAULT_FUSION;
  return { method, weights: hybridWeights(method, options.weights, options.defaults) };
}

/**
 * One ranking from the mode's lists, best first, at most topK long. Single-list modes keep the list's own score
 * (cosine, BM25 or the sparse dot product: meaningful to a reader); hybrid mode scores by the fusion {@link resolveFusion} picks (convex:
 * Σ w·normalised score; RRF: Σ w/(k + rank)), and every fused hit still carries each list's rank and raw score.
 */
export function combineRankings<Id extends string | number>(
  mode: SearchMode,
  lists: { dense?: readonly RankedHit<Id>[]; lexical?: readonly RankedHit<Id>[]; sparse?: readonly RankedHit<Id>[] },
  options: HybridOptions,
): FusedHit<Id, RankingList>[] {
  if (mode === "hybrid") {
    const { method, weights } = resolveFusion(options);
    const fused: Partial<Record<RankingList, readonly RankedHit<Id>[]>> = { dense: lists.dense ?? [], lexical: lists.lexical ?? [] };
    const listWeights: Partial<Record<RankingList, number>> = { ...weights };
    // Only a sparse list the caller read takes part: without one, hybrid is the two-list fusion it always was.
    if (lists.sparse) {
      fused.sparse = lists.sparse;
      listWeights.sparse = sparseWeight(method, options.weights, options.defaults);
    }
    const named = fused as Record<RankingList, readonly RankedHit<Id>[]>;
    if (method === "rrf") {
      return reciprocalRankFusion<Id, RankingList>(named, { weights: listWeights, k: options.k ?? RRF_K, limit: options.topK });
    }
    return convexCombinationFusion<Id, RankingList>(named, {
      weights: listWeights,
      minScores: { ...THEORETICAL_MIN_SCORES, sparse: SPARSE_MIN_SCORE },
      depth: options.candidates,
      limit: options.topK,
    });
  }
  const list = lists[mode] ?? [];
  return list.slice(0, options.topK).map((hit) => ({
    id: hit.id,
    score: hit.score,
    ranks: { [mode]: hit.rank },
    scores: { [mode]: hit.score },
  }));
}

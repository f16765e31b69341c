/**
 * Tuning the hybrid fusion on a validation split, and shipping the choice with the model (`npm run eval -- --split
 * train --mode hybrid --tune-fusion [--save]`).
 *
 * The grid: convex combination at lexical weight 0, 0.05, …, 1 (dense = 1 − lexical), and separately weighted RRF over
 * the same lexical shares (λ : 1 − λ, so 0.75 is the 3 : 1 ratio). Both ends are in the grid — lexical 0 is the dense
 * list alone, lexical 1 BM25 alone — so the best point can never score below either component on the split it was
 * chosen on: "the default never ranks worse than its best component" holds by construction there, and the components'
 * own scores are reported beside it to show it. Every point re-fuses the candidate lists `evaluate` kept (1,000 deep,
 * the ranking the metrics are computed on), so the grid costs no embedding.
 *
 * With a third list (the learned sparse terms of an artifact with the sparse head, kept by `evaluate` when the corpus
 * was embedded with them) the grid is the simplex of (lexical, dense, sparse) weights summing to 1 in steps of 0.1
 * ({@link THREE_LIST_STEP}: 66 points per method, against 231 at 0.05, each a re-fusion of every query's three
 * 1,000-deep lists). Its corners are the three lists alone and its sparse-0 edge is the two-list grid at 0.1, so the
 * same guarantee holds against all three components, and a sparse list that does not help gets weight 0 (the Worker
 * then does not read it). The two-list grid is tuned beside it, by the same rule, and saved as `withoutSparse`: the
 * default of searches that cannot read the sparse list (a backend without its postings), for which the three-list
 * weights minus their third are a ratio nobody tuned.
 *
 * The choice: the best mean NDCG@10, where "ties go to the larger lexical share" (BM25 is the cheaper side and the
 * one the service can fall back on), then to convex (the score-aware default) — with a tie judged statistically, not
 * to the last digit: the one-standard-error rule. A point ties with the best when its shortfall is within one standard
 * error of the paired per-query differences (same queries, so the query-to-query spread cancels), and it is at least
 * each component alone on this split. Why not the plain argmax: with a weak dense side the curve is flat near BM25,
 * and its highest point is noise. On SciFact train it picked convex 0.8 / 0.2 for +0.0003 over BM25 alone (809 queries,
 * one standard error ≈ 0.001), which then scored below BM25 on test; the rule ships a mixture only when it beats the
 * more lexical choices by more than the noise of the split it was measured on. Identical rankings (RRF and convex at
 * lexical 1 are both BM25) differ by exactly 0 and tie either way.
 *
 * `--save` writes the choice into the artifact's manifest.json as `retrieval.fusion` (the manifest lists the sha256
 * of every other file and is itself not listed, so the graphs and tokenizer — the weights — stay byte for byte what was
 * exported) and appends a line to model-artifacts/CHANGELOG.md. It refuses the test split: the figures the project
 * reports are test figures, and weights chosen on them would overstate every one.
 *
 * @module
 */
import { keepHeldOut, MIN_HELD_OUT_QUERIES, recordedHeldOutQueries, trainedOnTheseQueries, type AdaptationFacts, type ArtifactVariant, type TunedFusion } from "../../src/model/index.js";
import { BUILT_IN_FUSION_DEFAULT, type FusionDefault, type FusionMethod } from "../../src/retrieval/index.js";
import type { EvalDataset } from "./dataset.js";
import { mean } from "../../src/eval/metrics.js";
import { editManifest, manifestTextWithRetrievalDefault } from "../../training/src/export/manifest-edit.js";
import { adaptGroup, isHeldOut } from "../../training/src/data/pairs.js";
import { keptNdcg10PerQuery, round4, type KeptLists } from "./evaluate.js";

/** Lexical shares the tuner tries, in hundredths so the steps do not accumulate float error: 0, 0.05, …, 1. */
export const TUNING_LEXICAL: readonly number[] = Array.from({ length: 21 }, (_, i) => (5 * i) / 100);
/** Convex first: on a tie between methods the score-aware default wins. */
export const TUNING_METHODS: readonly FusionMethod[] = ["convex", "rrf"];
/** Weight step of the three-list simplex (tenths): see the module note for why coarser than the two-list grid. */
export const THREE_LIST_STEP = 0.1;
/** How many standard errors of the paired difference a shortfall may be and still count as a tie with the best. */
export const TIE_STANDARD_ERRORS = 1;

export interface TuningPoint {
  method: FusionMethod;
  lexical: number;
  dense: number;
  /** The sparse list's weight; absent in a two-list grid. */
  sparse?: number;
  "ndcg@10": number;
  /** NDCG@10 of every query, in one order for all points; without it (hand-made grids) only exact ties count. */
  perQuery?: readonly number[];
}

export interface FusionTuningResult {
  grid: TuningPoint[];
  /** The point shipped (see the module note for the rule). */
  chosen: TuningPoint;
  /** The plain argmax of NDCG@10, for comparison. */
  best: TuningPoint;
  /** NDCG@10 of each list ranked alone, on the same kept candidates (`sparseOnly` when the lists had a sparse one). */
  components: { lexicalOnly: number; denseOnly: number; sparseOnly?: number };
  /** With a sparse list: the two-list grid's choice and best, for searches that do not read the sparse list. */
  withoutSparse?: { chosen: TuningPoint; best: TuningPoint };
  queries: number;
}

/** A point's weights as a fusion names them (`sparse` only in a three-list grid). */
function weightsOf(point: TuningPoint): FusionDefault["weights"] {
  return { lexical: point.lexical, dense: point.dense, ...(point.sparse !== undefined ? { sparse: point.sparse } : {}) };
}

/** Rounds to hundredths: the grid's resolution, so 1 − 0.85 is written 0.15 and not 0.15000000000000002. */
function hundredths(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Share of the lexical list in a point's weights (the ranking depends only on the ratios). */
function lexicalShare(point: Pick<TuningPoint, "lexical" | "dense" | "sparse">): number {
  return point.lexical / (point.lexical + point.dense + (point.sparse ?? 0));
}

/** Share of the sparse list in a point's weights (0 in a two-list grid). */
function sparseShare(point: Pick<TuningPoint, "lexical" | "dense" | "sparse">): number {
  return (point.sparse ?? 0) / (point.lexical + point.dense + (point.sparse ?? 0));
}

/**
 * Standard error of the mean of the paired differences a − b (0 with fewer than two queries or without per-query
 * figures: then only exact ties count).
 */
export function pairedStandardError(a: readonly number[] | undefined, b: readonly number[] | undefined): number {
  if (!a || !b || a.length !== b.length || a.length < 2) return 0;
  const diffs = a.map((value, i) => value - b[i]!);
  const m = mean(diffs);
  const variance = diffs.reduce((sum, d) => sum + (d - m) ** 2, 0) / (diffs.length - 1);
  return Math.sqrt(variance / diffs.length);
}

/**
 * The grid point to ship and the plain best (the highest NDCG@10; equal scores go to the method listed first in
 * {@link TUNING_METHODS}, convex). Ties are the points of the best point's method that fall short of it by at most
 * {@link TIE_STANDARD_ERRORS} paired standard errors and score at least `floor` (the better component alone); among
 * them, the largest lexical share, then the smallest sparse share (the list a search can skip reading), then the higher
 * NDCG@10. Only the best point's method, because a lexical share is a weight within one method — convex mixes
 * min-max-normalised scores, RRF reciprocal ranks — and says nothing across them: an RRF point with more lexical
 * weight is not the safer of two ties with a convex one. Pure, so the rule can be tested on a hand-made grid.
 */
export function chooseFusion(grid: readonly TuningPoint[], floor = Number.NEGATIVE_INFINITY): { chosen: TuningPoint; best: TuningPoint } {
  if (grid.length === 0) throw new Error("the fusion tuning grid is empty");
  const methodOrder = (method: FusionMethod) => TUNING_METHODS.indexOf(method);
  const best = grid.reduce((top, point) => {
    const gain = point["ndcg@10"] - top["ndcg@10"];
    return gain > 0 || (gain === 0 && methodOrder(point.method) < methodOrder(top.method)) ? point : top;
  });
  const ties = grid.filter((point) => {
    if (point.method !== best.method) return false;
    if (point["ndcg@10"] < floor && point !== best) return false;
    const shortfall = best["ndcg@10"] - point["ndcg@10"];
    return shortfall <= TIE_STANDARD_ERRORS * pairedStandardError(best.perQuery, point.perQuery);
  });
  const chosen = ties.reduce((pick, point) => {
    const share = lexicalShare(point) - lexicalShare(pick);
    if (share !== 0) return share > 0 ? point : pick;
    const sparse = sparseShare(point) - sparseShare(pick);
    if (sparse !== 0) return sparse < 0 ? point : pick;
    return point["ndcg@10"] > pick["ndcg@10"] ? point : pick;
  });
  return { chosen, best };
}

/** The (lexical, dense, sparse) weights of the three-list simplex at {@link THREE_LIST_STEP}, lexical-heavy first. */
export function threeListWeights(): { lexical: number; dense: number; sparse: number }[] {
  const steps = Math.round(1 / THREE_LIST_STEP);
  const points: { lexical: number; dense: number; sparse: number }[] = [];
  for (let l = steps; l >= 0; l--) {
    for (let s = 0; s <= steps - l; s++) points.push({ lexical: hundredths(l / steps), dense: hundredths((steps - l - s) / steps), sparse: hundredths(s / steps) });
  }
  return points;
}

/**
 * Every grid point's NDCG@10 on the kept lists, the choice, and each component alone: the two-list grid, or the
 * three-list simplex when every query kept a sparse list (see the module note).
 */
export function tuneFusion(kept: readonly KeptLists[], dataset: EvalDataset): FusionTuningResult {
  if (kept.some(({ lists }) => !lists.dense || !lists.lexical)) throw new Error("fusion tuning needs both candidate lists of every query (hybrid mode)");
  const withSparse = kept.length > 0 && kept.every(({ lists }) => lists.sparse !== undefined);
  const gridOver = (weightGrid: readonly { lexical: number; dense: number; sparse?: number }[]) =>
    TUNING_METHODS.flatMap((method) =>
      weightGrid.map((weights): TuningPoint => {
        const perQuery = keptNdcg10PerQuery(kept, dataset, "hybrid", { fusion: method, weights });
        return { method, ...weights, "ndcg@10": mean(perQuery), perQuery };
      }),
    );
  // No sparse weight: keptNdcg10PerQuery leaves a kept sparse list out.
  const twoLists = gridOver(TUNING_LEXICAL.map((lexical) => ({ lexical, dense: hundredths(1 - lexical) })));
  const grid = withSparse ? gridOver(threeListWeights()) : twoLists;
  const components = {
    lexicalOnly: mean(keptNdcg10PerQuery(kept, dataset, "lexical")),
    denseOnly: mean(keptNdcg10PerQuery(kept, dataset, "dense")),
    ...(withSparse ? { sparseOnly: mean(keptNdcg10PerQuery(kept, dataset, "sparse")) } : {}),
  };
  const { chosen, best } = chooseFusion(grid, bestComponent(components));
  const withoutSparse = withSparse ? chooseFusion(twoLists, Math.max(components.lexicalOnly, components.denseOnly)) : undefined;
  return { grid, chosen, best, components, queries: kept.length, ...(withoutSparse ? { withoutSparse } : {}) };
}

/** NDCG@10 of the best list alone. */
function bestComponent(components: FusionTuningResult["components"]): number {
  return Math.max(components.lexicalOnly, components.denseOnly, components.sparseOnly ?? Number.NEGATIVE_INFINITY);
}

/**
 * Whether the choice is at least each component alone on the tuning split. The grid's end points are the components,
 * so this fails only if fusing a single list reordered it (a float tie in the normalisation); --save refuses then.
 */
export function neverBelowComponents(result: FusionTuningResult): boolean {
  return result.chosen["ndcg@10"] >= bestComponent(result.components);
}

/** The fewest queries a fusion may be tuned on: below it one query moves the mean by more than any weight step. */
export const MIN_TUNING_QUERIES = MIN_HELD_OUT_QUERIES;

/**
 * The queries a fusion for this artifact may be tuned on. An artifact adapted with this dataset's own train qrels
 * (`--adapt`, manifest `adaptation.trainQrelsUsed`) has been trained on those queries: its dense side scores far
 * better on them than on unseen ones (taesr-edge-scifact@0.2.0: SciFact train dense 0.311, test 0.228), and weights
 * tuned there trust the dense list too much (train chose dense 0.75; test then scored below lexical-heavier weights).
 * - When the adaptation held train queries out by id (`holdoutQueries`, recorded as `adaptation.heldOutQueries`),
 *   those: the run never trained on them, but their documents got the same unsupervised pairs (title → text,
 *   sentence → rest) as every other — the position a new query against the adapted corpus is in, so neither the
 *   inflated train queries nor a set whose documents were never seen.
 * - Otherwise (artifacts adapted before the hold-out existed) the train queries whose every relevant document sat on
 *   the held-out side of the adaptation's document split (reproduced by isHeldOut): the run never saw those (query,
 *   document) pairs, but never saw their documents either, so their dense figures are pessimistic.
 * Anything else (no adaptation, another dataset, another split) keeps every query. The note says which set was used
 * (it goes into the eval JSON and the CHANGELOG line of a save).
 */
export function fairTuningQueries(
  kept: readonly KeptLists[],
  manifest: AdaptationFacts,
  dataset: { name: string; split: string },
): { kept: readonly KeptLists[]; note?: string } {
  const adaptation = trainedOnTheseQueries(manifest, dataset);
  if (!adaptation) return { kept };
  const recorded = recordedHeldOutQueries(adaptation);
  if (recorded) {
    if (kept.some((k) => k.queryId === undefined)) throw new Error("fairTuningQueries: the kept lists carry no query ids (evaluate sets them): cannot select the held-out train queries");
    const held = keepHeldOut(kept, (k) => k.queryId!, recorded.ids, dataset.name);
    const share = recorded.fraction !== undefined ? `, ${Math.round(recorded.fraction * 100)}% by a hash of the id` : "";
    return {
      kept: held,
      note: `${held.length} of ${kept.length} ${dataset.name} train queries: those held out of the adaptation's supervised pairs by query id (manifest adaptation.heldOutQueries${share}; their documents were trained on unsupervised)`,
    };
  }
  const config = manifest.training?.["config"] as { data?: { validationFraction?: unknown } } | undefined;
  const fraction = config?.data?.validationFraction;
  if (typeof fraction !== "number") {
    throw new Error(`the artifact was adapted with ${dataset.name}'s train qrels but its manifest has no training.config.data.validationFraction: cannot tell which train queries it never saw`);
  }
  const fair = kept.filter(({ judgements }) => {
    const relevant = [...judgements].filter(([, score]) => score > 0).map(([docId]) => docId);
    return relevant.length > 0 && relevant.every((docId) => isHeldOut(adaptGroup(docId), fraction));
  });
  if (fair.length < MIN_TUNING_QUERIES) {
    throw new Error(
      `the artifact was trained on ${dataset.name} train queries; only ${fair.length} of ${kept.length} have all their relevant documents held out of that training (need ${MIN_TUNING_QUERIES}): tune on another split`,
    );
  }
  return {
    kept: fair,
    note: `${fair.length} of ${kept.length} ${dataset.name} train queries: those whose relevant documents were all held out of the adaptation (it trained on the others; the artifact records no held-out query ids)`,
  };
}

/** --save is for validation splits only (see the module note). */
export function assertSplitTunable(split: string): void {
  if (split === "test") {
    throw new Error(
      "--save refuses --split test: fusion weights are tuned on a validation split (e.g. --split train) and reported on test; weights chosen on test would overstate every test figure",
    );
  }
}

export interface TuningContext {
  dataset: string;
  split: string;
  /** The dense setting tuned with. */
  dims: number;
  variant: ArtifactVariant;
  /** ISO date (YYYY-MM-DD); default today (UTC). */
  date?: string;
}

/** The manifest record of a tuning run (figures to four decimals, as every figure of the eval JSON). */
export function tunedFusionRecord(result: FusionTuningResult, context: TuningContext): TunedFusion {
  assertSplitTunable(context.split);
  const { chosen, components } = result;
  const twoLists = result.withoutSparse?.chosen;
  return {
    method: chosen.method,
    weights: { lexical: chosen.lexical, dense: chosen.dense, ...(chosen.sparse !== undefined ? { sparse: chosen.sparse } : {}) },
    ...(twoLists ? { withoutSparse: { method: twoLists.method, weights: { lexical: twoLists.lexical, dense: twoLists.dense }, ndcg10: round4(twoLists["ndcg@10"]) } } : {}),
    tunedOn: {
      dataset: context.dataset,
      split: context.split,
      queries: result.queries,
      ndcg10: round4(chosen["ndcg@10"]),
      lexicalOnly: round4(components.lexicalOnly),
      denseOnly: round4(components.denseOnly),
      ...(components.sparseOnly !== undefined ? { sparseOnly: round4(components.sparseOnly) } : {}),
      date: context.date ?? new Date().toISOString().slice(0, 10),
      dims: context.dims,
      variant: context.variant,
    },
  };
}

/**
 * manifest.json's text with `retrieval.fusion` set, changing only those lines (training/src/export/manifest-edit.ts
 * `manifestTextWithRetrievalDefault`): the exporter's own formatting is kept.
 */
export function manifestTextWithFusion(originalText: string, fusion: TunedFusion): string {
  return manifestTextWithRetrievalDefault(originalText, "fusion", fusion);
}

function describeFusion(fusion: FusionDefault): string {
  const sparse = fusion.weights.sparse !== undefined ? ` / sparse ${fusion.weights.sparse}` : "";
  return `${fusion.method} lexical ${fusion.weights.lexical} / dense ${fusion.weights.dense}${sparse}`;
}

export interface SaveNotes {
  /** The command that tuned (for the CHANGELOG). */
  command?: string;
  /** Why the choice is not the plain argmax, when it is not (see {@link tieNote}). */
  note?: string;
}

/** One sentence for the CHANGELOG when the tie rule chose another point than the plain argmax; undefined otherwise. */
export function tieNote(result: FusionTuningResult): string | undefined {
  const { best, chosen } = result;
  if (best === chosen) return undefined;
  const se = pairedStandardError(best.perQuery, chosen.perQuery);
  return (
    `the argmax, ${describeFusion({ method: best.method, weights: weightsOf(best) })} at ${best["ndcg@10"].toFixed(4)}, is within ` +
    `${TIE_STANDARD_ERRORS} paired standard error (${se.toFixed(4)}) of it: a tie, resolved towards lexical`
  );
}

/**
 * The CHANGELOG line of a save: what the artifact now fuses with, what it replaced, the figures behind it and the
 * command that produced them.
 */
export function changelogLine(label: string, fusion: TunedFusion, previous: FusionDefault | undefined, notes: SaveNotes = {}): string {
  const { command, note } = notes;
  const t = fusion.tunedOn;
  const was = previous ? `tuned ${describeFusion(previous)}` : `built-in ${describeFusion(BUILT_IN_FUSION_DEFAULT)}`;
  const setting = t.dims !== undefined && t.variant ? `, ${t.dims}-d ${t.variant}` : "";
  return (
    `- fusion retuned: ${label}, ${t.date} — hybrid default ${describeFusion(fusion)} (was ${was}); ` +
    `${t.dataset} ${t.split} (${t.queries} queries${setting}) NDCG@10 ${t.ndcg10.toFixed(4)} ` +
    `vs BM25 alone ${t.lexicalOnly.toFixed(4)}, dense alone ${t.denseOnly.toFixed(4)}` +
    (t.sparseOnly !== undefined ? `, sparse alone ${t.sparseOnly.toFixed(4)}` : "") +
    (fusion.withoutSparse
      ? `; without the sparse list ${describeFusion({ method: fusion.withoutSparse.method, weights: fusion.withoutSparse.weights })} ${fusion.withoutSparse.ndcg10.toFixed(4)}`
      : "") +
    (note ? `; ${note}` : "") +
    (command ? ` (\`${command}\`)` : "")
  );
}


export interface SavedTuning {
  manifest: string;
  /** The changelog appended to, or null when the artifact's folder has none beside it. */
  changelog: string | null;
  line: string;
}

/**
 * Writes `fusion` into `<artifactDir>/manifest.json` and appends the changelog line to CHANGELOG.md beside the artifact
 * folder (model-artifacts/CHANGELOG.md). The new manifest is validated before anything is written, and must list the
 * same files with the same sha256 as before.
 */
export async function saveTunedFusion(artifactDir: string, fusion: TunedFusion, notes: SaveNotes = {}): Promise<SavedTuning> {
  assertSplitTunable(fusion.tunedOn.split);
  return editManifest(
    artifactDir,
    "saving the fusion",
    (text) => manifestTextWithFusion(text, fusion),
    (before) => changelogLine(`${before.name}@${before.version}`, fusion, before.retrieval?.fusion, notes),
  );
}

/** The tuning as the eval JSON prints it (`tuning` key): figures to four decimals. */
export function tuningJson(result: FusionTuningResult, split: string): Record<string, unknown> {
  const point = ({ method, lexical, dense, sparse, ...p }: TuningPoint) => ({ method, lexical, dense, ...(sparse !== undefined ? { sparse } : {}), "ndcg@10": round4(p["ndcg@10"]) });
  const se = (p: TuningPoint) => round4(pairedStandardError(result.best.perQuery, p.perQuery));
  return {
    split,
    queries: result.queries,
    rule: `best NDCG@10; points within ${TIE_STANDARD_ERRORS} paired standard error of the best (and not below any component) tie; ties → larger lexical share, then smaller sparse share, then convex`,
    chosen: { method: result.chosen.method, weights: weightsOf(result.chosen), "ndcg@10": round4(result.chosen["ndcg@10"]) },
    best: { ...point(result.best), shortfall_of_chosen: round4(result.best["ndcg@10"] - result.chosen["ndcg@10"]), standard_error: se(result.chosen) },
    components: {
      lexical_only: round4(result.components.lexicalOnly),
      dense_only: round4(result.components.denseOnly),
      ...(result.components.sparseOnly !== undefined ? { sparse_only: round4(result.components.sparseOnly) } : {}),
    },
    never_below_components: neverBelowComponents(result),
    ...(result.withoutSparse
      ? { without_sparse: { chosen: { method: result.withoutSparse.chosen.method, weights: weightsOf(result.withoutSparse.chosen), "ndcg@10": round4(result.withoutSparse.chosen["ndcg@10"]) } } }
      : {}),
    grid: result.grid.map(point),
  };
}

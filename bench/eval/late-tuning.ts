/**
 * Tuning the late-interaction rerank on a validation split, and shipping it with the model (`npm run eval -- --split
 * train --mode hybrid+late --tune-fusion [--save]`): how many of the hybrid ranking's best documents to rerank (k) and
 * MaxSim's share of the fused score (src/retrieval/late.ts fuseLateInteraction — the function the Worker runs).
 *
 * The grid: k ∈ {10, 20, 50, 100} × late share 0, 0.05, …, 1 (first = 1 − late). Late 0 is the hybrid ranking itself,
 * so the choice can never score below the first stage on the split it was chosen on. Every point re-fuses what
 * `evaluate` kept per query (the hybrid ranking and the MaxSim of its top 100), so the grid scores nothing again.
 *
 * The choice follows the hybrid tuner's rule (fusion-tuning.ts): best mean NDCG@10, with every point within one paired
 * standard error of it (and not below the first stage alone) counted as a tie; ties go to the smaller late share (the
 * rerank costs a model call for the query's token vectors, a fetch of k token matrices and k MaxSims: it must earn
 * that by more than the noise), then to the smaller k. A tie with late 0 therefore ships late 0 — recorded, so the
 * artifact says it was measured, and the Worker then reranks only when a request asks.
 *
 * The queries: the same selection the hybrid tuning uses (fusion-tuning.ts fairTuningQueries): an artifact adapted on
 * this dataset's train qrels is tuned only on the train queries it did not train on.
 *
 * @module
 */
import type { ArtifactVariant, TunedLateFusion } from "../../src/model/index.js";
import { fuseLateInteraction, type FusionDefault, type LateFusionWeights } from "../../src/retrieval/index.js";
import { mean, ndcgAt } from "../../src/eval/metrics.js";
import { editManifest, manifestTextWithRetrievalDefault } from "../../training/src/export/manifest-edit.js";
import type { EvalDataset } from "./dataset.js";
import { round4, type KeptLists } from "./evaluate.js";
import { TIE_STANDARD_ERRORS, assertSplitTunable, pairedStandardError, type SaveNotes, type SavedTuning } from "./fusion-tuning.js";

export const LATE_TUNING_K: readonly number[] = [10, 20, 50, 100];
/** MaxSim's share, in hundredths so the steps do not accumulate float error: 0, 0.05, …, 1. */
export const LATE_TUNING_SHARES: readonly number[] = Array.from({ length: 21 }, (_, i) => (5 * i) / 100);

export interface LateTuningPoint {
  k: number;
  weights: LateFusionWeights;
  "ndcg@10": number;
  perQuery?: readonly number[];
}

export interface LateTuningResult {
  grid: LateTuningPoint[];
  chosen: LateTuningPoint;
  best: LateTuningPoint;
  /** NDCG@10 of the hybrid ranking alone, and of MaxSim alone reordering its top 100. */
  components: { firstStageOnly: number; lateOnly: number };
  queries: number;
}

function keptLate(kept: KeptLists): NonNullable<KeptLists["late"]> {
  if (!kept.late) throw new Error("late tuning needs the hybrid ranking and MaxSims of every query (--mode hybrid+late)");
  return kept.late;
}

/** NDCG@10 per query of the kept hybrid rankings reranked at this k and these weights. */
export function keptLateNdcg10PerQuery(kept: readonly KeptLists[], dataset: EvalDataset, k: number, weights: LateFusionWeights): number[] {
  return kept.map((entry) => {
    const { firstStage, maxSims, queryTokens } = keptLate(entry);
    const ranked = fuseLateInteraction(firstStage, maxSims, queryTokens, { k, weights });
    return ndcgAt(10, ranked.map((hit) => dataset.corpus[hit.id]!.id), entry.judgements);
  });
}

/**
 * The point to ship and the plain best: among points tying with the best (shortfall within {@link TIE_STANDARD_ERRORS}
 * paired standard errors) and scoring at least `floor`, the smallest late share, then the smallest k, then the higher
 * NDCG@10. Pure, so the rule can be tested on a hand-made grid.
 */
export function chooseLateFusion(grid: readonly LateTuningPoint[], floor = Number.NEGATIVE_INFINITY): { chosen: LateTuningPoint; best: LateTuningPoint } {
  if (grid.length === 0) throw new Error("the late tuning grid is empty");
  const share = (p: LateTuningPoint) => p.weights.late / (p.weights.first + p.weights.late);
  const best = grid.reduce((top, point) => (point["ndcg@10"] > top["ndcg@10"] ? point : top));
  const ties = grid.filter((point) => {
    if (point["ndcg@10"] < floor && point !== best) return false;
    return best["ndcg@10"] - point["ndcg@10"] <= TIE_STANDARD_ERRORS * pairedStandardError(best.perQuery, point.perQuery);
  });
  const chosen = ties.reduce((pick, point) => {
    const d = share(point) - share(pick);
    if (d !== 0) return d < 0 ? point : pick;
    if (point.k !== pick.k) return point.k < pick.k ? point : pick;
    return point["ndcg@10"] > pick["ndcg@10"] ? point : pick;
  });
  return { chosen, best };
}

export function tuneLateFusion(kept: readonly KeptLists[], dataset: EvalDataset): LateTuningResult {
  const grid = LATE_TUNING_K.flatMap((k) =>
    LATE_TUNING_SHARES.map((late): LateTuningPoint => {
      const weights = { first: Math.round((1 - late) * 100) / 100, late };
      const perQuery = keptLateNdcg10PerQuery(kept, dataset, k, weights);
      return { k, weights, "ndcg@10": mean(perQuery), perQuery };
    }),
  );
  const firstStageOnly = mean(
    kept.map((entry) => ndcgAt(10, keptLate(entry).firstStage.map((hit) => dataset.corpus[hit.id]!.id), entry.judgements)),
  );
  const lateOnly = mean(keptLateNdcg10PerQuery(kept, dataset, 100, { first: 0, late: 1 }));
  const { chosen, best } = chooseLateFusion(grid, firstStageOnly);
  return { grid, chosen, best, components: { firstStageOnly, lateOnly }, queries: kept.length };
}

export interface LateTuningContext {
  dataset: string;
  split: string;
  dims: number;
  variant: ArtifactVariant;
  /** The hybrid fusion the first stage ran with. */
  fusion: FusionDefault;
  date?: string;
}

export function tunedLateRecord(result: LateTuningResult, context: LateTuningContext): TunedLateFusion {
  assertSplitTunable(context.split);
  const { chosen, components } = result;
  return {
    k: chosen.k,
    weights: { ...chosen.weights },
    tunedOn: {
      dataset: context.dataset,
      split: context.split,
      queries: result.queries,
      ndcg10: round4(chosen["ndcg@10"]),
      firstStageOnly: round4(components.firstStageOnly),
      lateOnly: round4(components.lateOnly),
      fusion: {
        method: context.fusion.method,
        weights: {
          lexical: context.fusion.weights.lexical,
          dense: context.fusion.weights.dense,
          ...(context.fusion.weights.sparse !== undefined ? { sparse: context.fusion.weights.sparse } : {}),
        },
      },
      date: context.date ?? new Date().toISOString().slice(0, 10),
      dims: context.dims,
      variant: context.variant,
    },
  };
}

/** manifest.json's text with `retrieval.late` set (other `retrieval` keys kept), changing only those lines. */
export function manifestTextWithLateFusion(originalText: string, late: TunedLateFusion): string {
  return manifestTextWithRetrievalDefault(originalText, "late", late);
}

export function lateChangelogLine(label: string, late: TunedLateFusion, notes: SaveNotes = {}): string {
  const t = late.tunedOn;
  return (
    `- late rerank tuned: ${label}, ${t.date} — top ${late.k} reranked, first ${late.weights.first} / late ${late.weights.late}` +
    (late.weights.late === 0 ? " (no gain beyond the noise: searches rerank only when asked)" : "") +
    `; ${t.dataset} ${t.split} (${t.queries} queries, ${t.dims ?? "?"}-d ${t.variant ?? "?"}) NDCG@10 ${t.ndcg10.toFixed(4)} ` +
    `vs hybrid alone ${t.firstStageOnly.toFixed(4)}, MaxSim alone ${t.lateOnly.toFixed(4)}` +
    (notes.note ? `; ${notes.note}` : "") +
    (notes.command ? ` (\`${notes.command}\`)` : "")
  );
}

/** Writes `late` into `<artifactDir>/manifest.json` (validated, file list unchanged) and appends the CHANGELOG line. */
export async function saveTunedLateFusion(artifactDir: string, late: TunedLateFusion, notes: SaveNotes = {}): Promise<SavedTuning> {
  assertSplitTunable(late.tunedOn.split);
  return editManifest(
    artifactDir,
    "saving the late fusion",
    (text) => manifestTextWithLateFusion(text, late),
    (before) => lateChangelogLine(`${before.name}@${before.version}`, late, notes),
  );
}

/** The tuning as the eval JSON prints it (`late_tuning` key). */
export function lateTuningJson(result: LateTuningResult, split: string): Record<string, unknown> {
  const point = (p: LateTuningPoint) => ({ k: p.k, weights: p.weights, "ndcg@10": round4(p["ndcg@10"]) });
  return {
    split,
    queries: result.queries,
    rule: `best NDCG@10; points within ${TIE_STANDARD_ERRORS} paired standard error of the best (and not below the hybrid ranking alone) tie; ties → smaller late share, then smaller k`,
    chosen: point(result.chosen),
    best: { ...point(result.best), shortfall_of_chosen: round4(result.best["ndcg@10"] - result.chosen["ndcg@10"]), standard_error: round4(pairedStandardError(result.best.perQuery, result.chosen.perQuery)) },
    components: { first_stage_only: round4(result.components.firstStageOnly), late_only: round4(result.components.lateOnly) },
    grid: result.grid.map(point),
  };
}

/**
 * Drift detection on the query path: each search adds its query to an in-memory accumulator of this isolate (a few
 * hundred additions, no I/O), and every {@link FLUSH_EVERY} queries or {@link FLUSH_AFTER_MS} the accumulator goes to
 * the index's `DriftMonitor` (drift-monitor.ts) in the background (waitUntil), which merges it exactly and judges the
 * window. The flush that crosses the threshold logs one warning. GET /v1/admin/drift flushes this isolate's queries and
 * reports the verdict.
 *
 * Only queries embedded the way the model's baseline was (its dims, depth and ranking: by default every search that
 * does not name other dims, depth or a dense mode) are recorded; anything else would compare unlike vectors. Lexical
 * searches embed nothing and are not recorded. Queries still in an isolate that dies before flushing (at most
 * FLUSH_EVERY − 1, never older than FLUSH_AFTER_MS at the next query) are lost: a sample, not an audit.
 *
 * @module
 */
import { driftAccumulator, queryFeatures, type DriftAssessment, type DriftBaseline, type RunningStats } from "../../../src/model/index.js";
import type { AppDeps, Background, EdgeModel } from "./contracts.js";
import type { DriftMergeResult } from "./drift-api.js";
import { ApiError } from "./errors.js";
import type { SearchRequest } from "./schemas.js";

/** Queries an isolate keeps before sending them: one RPC per this many searches at most. */
export const FLUSH_EVERY = 16;
/** ...or when its oldest unsent query is this old (checked at the next search). */
export const FLUSH_AFTER_MS = 10_000;

interface Pending {
  stats: RunningStats;
  since: number;
}

/** This isolate's unsent statistics, by index (monitor) and model version. */
const pending = new Map<string, Pending>();

const pendingKey = (deps: AppDeps, model: EdgeModel) => `${deps.indexName}\u0000${model.info.version}`;

/** Whether a search embeds its query as the baseline's queries were embedded (encoder options, search-service.ts). */
export function matchesBaseline(baseline: DriftBaseline, request: Pick<SearchRequest, "dims" | "depth" | "mode">): boolean {
  const { dims, depth, ranking } = baseline.embedding;
  return request.mode !== "lexical" && request.dims === dims && request.depth === depth && (request.mode === "dense" ? "dense" : "hybrid") === ranking;
}

/**
 * Records one search's query (its word pieces, asked for only when the query is recorded, and the vector it was
 * searched with). Never throws and never waits for the monitor when `background` is given; without it (tests, Node) a
 * due flush is awaited, as cache writes are.
 */
export async function recordQuery(
  deps: AppDeps,
  model: EdgeModel,
  request: Pick<SearchRequest, "dims" | "depth" | "mode">,
  pieces: () => readonly string[],
  vector: Float32Array,
  background?: Background,
): Promise<void> {
  const baseline = model.drift;
  if (!baseline || !deps.driftMonitor || !matchesBaseline(baseline, request) || vector.length !== baseline.embedding.dims) return;
  try {
    const key = pendingKey(deps, model);
    const now = deps.now();
    let entry = pending.get(key);
    if (!entry) {
      entry = { stats: driftAccumulator(baseline.embedding.dims), since: now };
      pending.set(key, entry);
    }
    entry.stats.add(queryFeatures(vector, pieces()));
    if (entry.stats.count < FLUSH_EVERY && now - entry.since < FLUSH_AFTER_MS) return;
    const flushing = flush(deps, model, baseline).catch((error: unknown) => {
      console.error(`drift: could not send query statistics to the monitor (kept for the next flush): ${(error as Error).message}`);
    });
    if (background) background(flushing);
    else await flushing;
  } catch (error) {
    // Monitoring must never fail a search.
    console.error("drift: could not record a query:", error);
  }
}

/** Sends this isolate's unsent statistics (if any) and returns the monitor's verdict; logs a warning on a crossing. */
async function flush(deps: AppDeps, model: EdgeModel, baseline: DriftBaseline): Promise<DriftMergeResult> {
  const key = pendingKey(deps, model);
  const entry = pending.get(key);
  // Taken out before the RPC: queries recorded meanwhile start a new accumulator instead of being sent twice.
  pending.delete(key);
  try {
    const result = await deps.driftMonitor!(deps.indexName).merge({
      modelVersion: model.info.version,
      stats: entry ? entry.stats.toJSON() : null,
      baseline,
      now: deps.now(),
    });
    if (result.crossed) console.warn(warning(deps, model, result.assessment));
    return result;
  } catch (error) {
    // Merging is exact, so putting the statistics back loses nothing when the monitor is briefly unreachable.
    if (entry) {
      const current = pending.get(key);
      if (current) {
        entry.stats.merge(current.stats);
        entry.since = Math.min(entry.since, current.since);
      }
      pending.set(key, entry);
    }
    throw error;
  }
}

function warning(deps: AppDeps, model: EdgeModel, assessment: DriftAssessment): string {
  if (assessment.status !== "ok") return `drift: ${model.info.name}@${model.info.version} crossed its threshold`;
  const { embedding, coverage, logLength } = assessment.components;
  return (
    `drift: queries to index "${deps.indexName}" no longer look like ${model.info.name}@${model.info.version}'s baseline: ` +
    `score ${assessment.score.toFixed(3)} > threshold ${assessment.threshold} over the last ${assessment.count} queries ` +
    `(embedding shift ${embedding.toFixed(3)}, coverage ${coverage.live.toFixed(3)} vs ${coverage.baseline.toFixed(3)}, ` +
    `length shift ${logLength.shift.toFixed(2)} sd); GET /v1/admin/drift has the details`
  );
}

/** The body of GET /v1/admin/drift. */
export type DriftReport =
  | { status: "no_baseline"; model: { name: string; version: string }; message: string }
  | (DriftAssessment & {
      model: { name: string; version: string; variant: string };
      window: DriftMergeResult["window"];
      baseline: Pick<DriftBaseline, "count" | "source" | "embedding" | "falseAlarmRate" | "date">;
    });

/** Flushes this isolate's statistics and reports the verdict over the index's window (other isolates' unsent queries wait). */
export async function driftReport(deps: AppDeps, model: EdgeModel): Promise<DriftReport> {
  const { name, version, variant } = model.info;
  const baseline = model.drift;
  if (!baseline) {
    return {
      status: "no_baseline",
      model: { name, version },
      message: `${name}@${version} has no drift baseline in its manifest; compute one with \`npm run drift:baseline -- --model model-artifacts/${name}@${version} --queries <queries.jsonl> --write\``,
    };
  }
  if (!deps.driftMonitor) throw new ApiError(503, "not_configured", "drift monitoring is disabled: this worker has no DRIFT Durable Object binding");
  const { assessment, window } = await flush(deps, model, baseline);
  const { count, source, embedding, falseAlarmRate, date } = baseline;
  return { ...assessment, model: { name, version, variant }, window, baseline: { count, source, embedding, falseAlarmRate, date } };
}

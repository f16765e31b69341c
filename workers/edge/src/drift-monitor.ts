/**
 * `DriftMonitor`: the merged query statistics of one index (SQLite-backed Durable Object, called over RPC), per model
 * version, and the drift verdict on them (src/model/drift.ts).
 *
 * Isolates accumulate their queries in memory and send the accumulators here (drift-recorder.ts); merging is exact, so
 * the result equals one pass over every recorded query. Statistics are kept in time buckets of an hour, so old traffic
 * ages out: the window a verdict is taken on is the newest buckets, newest first, until they hold at least
 * {@link WINDOW_QUERIES} queries (the baseline's minimumCount, if larger), and never anything older than
 * {@link MAX_AGE_MS}, which is deleted. A busy index is judged on roughly its last 2,000 queries; a quiet one on
 * up to a week of them, and gives no verdict until it has minimumCount. Why buckets, not a ring of the last N queries:
 * a bucket is one fixed-size row whatever the traffic, and per-query rows would cost a write each.
 *
 * The alert state lives here too, so the warning is logged once per crossing however many isolates flush: `merge`
 * answers `crossed: true` only to the flush that moves the verdict from not drifted to drifted.
 *
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import { RunningStats, SCALAR_FEATURES, assessDrift, type RunningStatsJSON } from "../../../src/model/index.js";
import type { DriftMergeRequest, DriftMergeResult, DriftMonitorApi } from "./drift-api.js";
import type { Env } from "./env.js";

/** Bucket width: an hour. */
export const BUCKET_MS = 3_600_000;
/** Queries a verdict looks back over, at least (whole buckets, so a little more). */
export const WINDOW_QUERIES = 2_000;
/** Buckets older than this (a week) are never used, and deleted. */
export const MAX_AGE_MS = 7 * 24 * BUCKET_MS;

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS drift_buckets (
     model_version TEXT NOT NULL,
     bucket_start INTEGER NOT NULL,
     stats TEXT NOT NULL,
     PRIMARY KEY (model_version, bucket_start)
   ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS drift_alerts (
     model_version TEXT PRIMARY KEY,
     drifted INTEGER NOT NULL,
     changed_at INTEGER NOT NULL
   )`,
];

export class DriftMonitor extends DurableObject<Env> implements DriftMonitorApi {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    for (const statement of SCHEMA) this.sql.exec(statement);
  }

  merge({ modelVersion, stats, baseline, now }: DriftMergeRequest): DriftMergeResult {
    const features = baseline.embedding.dims + SCALAR_FEATURES.length;
    // Every statement is synchronous, so concurrent flushes cannot interleave between the read and the write.
    if (stats && stats.count > 0) {
      const incoming = RunningStats.fromJSON(stats, features);
      const bucket = Math.floor(now / BUCKET_MS) * BUCKET_MS;
      const row = this.sql
        .exec<{ stats: string }>("SELECT stats FROM drift_buckets WHERE model_version = ? AND bucket_start = ?", modelVersion, bucket)
        .toArray()[0];
      const merged = row ? RunningStats.fromJSON(JSON.parse(row.stats) as RunningStatsJSON, features) : new RunningStats(features);
      merged.merge(incoming);
      this.sql.exec(
        "INSERT OR REPLACE INTO drift_buckets (model_version, bucket_start, stats) VALUES (?, ?, ?)",
        modelVersion,
        bucket,
        JSON.stringify(merged.toJSON()),
      );
    }
    this.sql.exec("DELETE FROM drift_buckets WHERE bucket_start < ?", now - MAX_AGE_MS);

    const { window, buckets, since } = this.window(modelVersion, features, now, Math.max(WINDOW_QUERIES, baseline.minimumCount));
    const assessment = assessDrift(window, baseline);
    // No verdict (too few queries) leaves the alert state as it was.
    const crossed = assessment.status === "ok" && this.noteVerdict(modelVersion, assessment.drifted, now);
    return { assessment, crossed, window: { buckets, since } };
  }

  /** The newest buckets' merged statistics until they hold `wanted` queries (buckets from the future are ignored). */
  private window(modelVersion: string, features: number, now: number, wanted: number) {
    const window = new RunningStats(features);
    let buckets = 0;
    let since: number | null = null;
    const rows = this.sql.exec<{ bucket_start: number; stats: string }>(
      "SELECT bucket_start, stats FROM drift_buckets WHERE model_version = ? AND bucket_start >= ? AND bucket_start <= ? ORDER BY bucket_start DESC",
      modelVersion,
      now - MAX_AGE_MS,
      now,
    );
    for (const row of rows) {
      if (window.count >= wanted) break;
      const stats = JSON.parse(row.stats) as RunningStatsJSON;
      // A bucket of another width (a baseline re-computed at other dims under the same version) cannot be merged.
      if (stats.mean.length !== features) continue;
      window.merge(RunningStats.fromJSON(stats, features));
      buckets++;
      since = row.bucket_start;
    }
    return { window, buckets, since };
  }

  /** Records the verdict; true when it went from not drifted to drifted. */
  private noteVerdict(modelVersion: string, drifted: boolean, now: number): boolean {
    const previous = this.sql.exec<{ drifted: number }>("SELECT drifted FROM drift_alerts WHERE model_version = ?", modelVersion).toArray()[0];
    const was = previous?.drifted === 1;
    if (was !== drifted || !previous) {
      this.sql.exec("INSERT OR REPLACE INTO drift_alerts (model_version, drifted, changed_at) VALUES (?, ?, ?)", modelVersion, drifted ? 1 : 0, now);
    }
    return drifted && !was;
  }
}

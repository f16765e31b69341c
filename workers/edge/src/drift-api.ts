/**
 * The contract between the worker and its `DriftMonitor` Durable Object (drift-monitor.ts), kept apart from the class
 * so the app's dependencies (contracts.ts) name it without importing a platform.
 *
 * @module
 */
import type { DriftAssessment, DriftBaseline, RunningStatsJSON } from "../../../src/model/index.js";

export interface DriftMergeRequest {
  modelVersion: string;
  /** An isolate's accumulator (RunningStats.toJSON()), or null to only read the verdict. */
  stats: RunningStatsJSON | null;
  baseline: DriftBaseline;
  /** The caller's clock (ms), which places the stats in a bucket and ages the window. */
  now: number;
}

export interface DriftMergeResult {
  assessment: DriftAssessment;
  /** True for exactly the merge that turned the verdict into "drifted". */
  crossed: boolean;
  /** The window's extent: how many hourly buckets, and the start of the oldest (null when empty). */
  window: { buckets: number; since: number | null };
}

/** What the worker needs from the monitor (the RPC stub satisfies it). */
export interface DriftMonitorApi {
  merge(request: DriftMergeRequest): DriftMergeResult | Promise<DriftMergeResult>;
}

/**
 * Training throughput of the real trainer on this machine: real (unpadded) tokens per second of the edge-small
 * configuration (training/configs/edge-small.json: H 128, 4 heads, FFN 256, batches of 64 pairs), with one process and
 * with data-parallel processes (training/src/train/data-parallel.ts), and with the documents supervised at depth 1
 * only (`training.documentSteps: [1]`, the depth the index embeds them at; training/src/train/loss.ts) on both processes,
 * then with the subspace objectives added at documents up to 128 pieces (the general runs' shape), their probes reading
 * the lossSteps or only step 1 (`objectives.subspaces.steps`), and with the late-interaction head trained (the adapt
 * preset's shape: `objectives.late` with its distillation into the dense embedding), and that at micro-batches of 128
 * pairs through the gradient cache (`training.gradientCache`).
 *
 * Each setting runs a short training into a temporary directory; the first logged window (pair building, process
 * start-up, the backend's first kernels) is left out, so the figure is the steady state a long run sees.
 *
 * @module
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../workers/edge/dev/local-service.js";
import { train } from "../training/src/train/trainer.js";

export interface ThroughputFigure {
  /** Real tokens (queries + documents, no padding) per second over the timed updates. */
  tokens_per_s: number;
  /** Pairs per second (each update is workers × batchSize pairs). */
  pairs_per_s: number;
  seconds_per_update: number;
  timed_updates: number;
}

interface TrainLine {
  type: string;
  step: number;
  tokens: number;
  elapsedSec: number;
}

const LOG_EVERY = 2;

/** One measured setting: its key in the result, its process count, and overrides of the config's `arch` and `training`. */
export interface ThroughputSetting {
  key: string;
  workers: number;
  arch?: Record<string, unknown>;
  training?: Record<string, unknown>;
}

/** 1 and 2 processes as configured, then 2 with documents at depth 1 only: the figures `npm run bench` reports. */
export const THROUGHPUT_SETTINGS: readonly ThroughputSetting[] = [
  { key: "1", workers: 1 },
  { key: "2", workers: 2 },
  { key: "2_documents_depth1", workers: 2, training: { documentSteps: [1] } },
  // The general runs' shape (edge-small-v5.json): documents up to 128 pieces beside three-piece glosses, and the
  // subspace probes' 32 rows drawn from all of them each batch.
  { key: "2_subspaces", workers: 2, training: { documentSteps: [1], maxDocLength: 128, objectives: { subspaces: { weight: 0.1 } } } },
  { key: "2_subspaces_step1", workers: 2, training: { documentSteps: [1], maxDocLength: 128, objectives: { subspaces: { weight: 0.1, steps: [1] } } } },
  // The adapt preset's objectives (adapt-distill.json): MaxSim over every query token against every document token of
  // the batch at each loss step, and the dense embedding distilled from it.
  {
    key: "2_late",
    workers: 2,
    arch: { lateHead: { dim: 32 } },
    training: { documentSteps: [1], maxDocLength: 128, objectives: { late: { weight: 0.5, distill: { weight: 1 } } } },
  },
  // The same with micro-batches of 128 pairs through the gradient cache (training/src/train/gradient-cache.ts): twice
  // the in-batch negatives, one more forward pass of the encoder per pair, and the all-pairs MaxSim over twice the rows.
  {
    key: "2_late_cache128",
    workers: 2,
    arch: { lateHead: { dim: 32 } },
    training: {
      documentSteps: [1],
      maxDocLength: 128,
      batchSize: 128,
      gradientCache: { rows: 32 },
      objectives: { late: { weight: 0.5, distill: { weight: 1 } } },
    },
  },
];

/**
 * Trains `warmup + timed` updates (both multiples of {@link LOG_EVERY}) per setting and measures the timed ones.
 */
export async function measureTrainingThroughput(
  settings: readonly ThroughputSetting[],
  options: { warmup?: number; timed?: number; log?: (line: string) => void } = {},
): Promise<Record<string, ThroughputFigure>> {
  const warmup = options.warmup ?? 2;
  const timed = options.timed ?? 8;
  const log = options.log ?? (() => {});
  const configPath = path.join(repoRoot, "training", "configs", "edge-small.json");
  const base = JSON.parse(await readFile(configPath, "utf8")) as Record<string, Record<string, unknown>>;
  const tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-train-bench-"));
  const out: Record<string, ThroughputFigure> = {};
  try {
    for (const { key, workers, arch, training } of settings) {
      const config = {
        ...base,
        arch: { ...base["arch"], ...arch },
        name: `throughput-${key}`,
        tokenizer: path.resolve(path.dirname(configPath), base["tokenizer"] as unknown as string),
        training: { ...base["training"], ...training, workers, logEvery: LOG_EVERY, evalEvery: 1_000_000, checkpointEvery: 1_000_000 },
        export: { ...base["export"], outDir: path.join(tmp, "artifacts") },
      };
      const file = path.join(tmp, `throughput-${key}.json`);
      await writeFile(file, JSON.stringify(config));
      const runDir = path.join(tmp, `run-${key}`);
      const batchSize = ((training?.["batchSize"] ?? base["training"]?.["batchSize"]) as number | undefined) ?? 64;
      log(`training throughput (${key}): ${workers} process(es), ${warmup} + ${timed} updates of ${workers} × ${batchSize} pairs`);
      await train({ config: file, runDir, stopAfterSteps: warmup + timed, progress: false, log: () => {} });
      const lines = (await readFile(path.join(runDir, "metrics.jsonl"), "utf8"))
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as TrainLine)
        .filter((line) => line.type === "train");
      const first = lines.find((line) => line.step === warmup);
      const last = lines.find((line) => line.step === warmup + timed);
      if (!first || !last) throw new Error(`training throughput: metrics of steps ${warmup} and ${warmup + timed} missing in ${runDir}`);
      const seconds = last.elapsedSec - first.elapsedSec;
      out[key] = {
        tokens_per_s: Math.round((last.tokens - first.tokens) / seconds),
        pairs_per_s: Math.round(((timed * workers * batchSize) / seconds) * 10) / 10,
        seconds_per_update: Math.round((seconds / timed) * 100) / 100,
        timed_updates: timed,
      };
      log(`training throughput (${key}): ${JSON.stringify(out[key])}`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return out;
}

/**
 * Held-out validation: NDCG@10 from the rank of each query's one relevant document, and a validation record at each
 * epoch boundary (besides every evalEvery steps, never twice for one step), in metrics.jsonl and in W&B.
 * The training runs use a cut-down tiny config (a few hundred pairs) so an epoch is a handful of updates.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mean, ndcgAt } from "../../src/eval/metrics.js";
import { train } from "../src/train/trainer.js";
import { scoreRanks } from "../src/train/validate.js";
import { WANDB_TEST_KEY, expectNoClientProcess, fakeWandb, historyRows } from "./fake-wandb.js";

const here = path.dirname(fileURLToPath(import.meta.url));
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-validation-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** tiny.json with little data and small batches, so an epoch is a few updates; `training` overrides on top. */
async function smallConfig(name: string, training: Record<string, unknown>): Promise<string> {
  const tinyPath = path.join(here, "../configs/tiny.json");
  const raw = JSON.parse(await readFile(tinyPath, "utf8")) as Record<string, any>;
  raw["tokenizer"] = path.resolve(path.dirname(tinyPath), raw["tokenizer"] as string);
  raw["data"] = {
    ...raw["data"],
    sources: { debian: { maxPairs: 80 }, wordnet: { maxPairs: 80 }, scifact: { maxPairs: 20 } },
    validationFraction: 0.1,
  };
  raw["training"] = { ...raw["training"], batchSize: 16, warmupSteps: 1, logEvery: 1, evalEvery: 10_000, ...training };
  raw["export"] = { ...raw["export"], outDir: path.join(tmp, `${name}-artifacts`) };
  const file = path.join(tmp, `${name}.json`);
  await writeFile(file, JSON.stringify(raw));
  return file;
}

async function metrics(runDir: string): Promise<Record<string, any>[]> {
  return (await readFile(path.join(runDir, "metrics.jsonl"), "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, any>);
}

describe("validation metrics", () => {
  it("NDCG@10 is 1/log2(rank + 1) inside the top 10 and 0 below, averaged over queries", () => {
    const ranks = [1, 2, 3, 10, 11, 400];
    const scores = scoreRanks(Int32Array.from(ranks));
    const expected = (1 + 1 / Math.log2(3) + 1 / 2 + 1 / Math.log2(11) + 0 + 0) / 6;
    expect(scores.ndcg10).toBeCloseTo(expected, 12);
    expect(scores.acc1).toBeCloseTo(1 / 6, 12);
    expect(scores.mrr).toBeCloseTo((1 + 1 / 2 + 1 / 3 + 1 / 10 + 1 / 11 + 1 / 400) / 6, 12);
    // The same figure as the benchmark's trec_eval-style NDCG with one relevant document at that rank.
    const asBenchmark = ranks.map((rank) => {
      const ranked = Array.from({ length: rank }, (_, i) => (i === rank - 1 ? "relevant" : `other-${i}`));
      return ndcgAt(10, ranked, new Map([["relevant", 1]]));
    });
    expect(scores.ndcg10).toBeCloseTo(mean(asBenchmark), 12);
    expect(scoreRanks([])).toEqual({ acc1: 0, mrr: 0, ndcg10: 0 });
  });
});

describe("validation each epoch (tiny model, wasm)", () => {
  let crossing = 0;

  it("validates when an update crosses into a new epoch, as well as at the end", async () => {
    const lines: string[] = [];
    const runDir = path.join(tmp, "epochs");
    const result = await train({ config: await smallConfig("epochs", { steps: undefined, epochs: 2 }), runDir, progress: false, log: (l) => lines.push(l) });
    expect(result.stoppedBy).toBe("done");
    const records = await metrics(runDir);
    const trainLines = records.filter((m) => m.type === "train");
    // The first update whose cursor is in epoch 1 (logEvery 1: every update has a line).
    crossing = trainLines.find((m) => m.epoch === 1)?.step ?? 0;
    expect(crossing).toBeGreaterThan(1);
    expect(crossing).toBeLessThan(result.totalSteps);
    const evals = records.filter((m) => m.type === "eval");
    expect(evals.map((m) => [m.step, m.epoch])).toEqual([
      [crossing, 1],
      [result.totalSteps, 1],
    ]);
    for (const e of evals) {
      expect(Object.keys(e.byDepth)).toEqual(["1", "3", "6"]);
      for (const d of Object.values(e.byDepth) as { acc1: number; mrr: number; ndcg10: number }[]) {
        // Per query NDCG@10 is 1 where acc@1 is, and at most 1 anywhere.
        expect(d.ndcg10).toBeGreaterThanOrEqual(d.acc1);
        expect(d.ndcg10).toBeLessThanOrEqual(1);
      }
    }
    expect(lines.some((l) => new RegExp(`^step ${crossing} \\(epoch 1\\) validation .*ndcg@10 \\d\\.\\d{3}`).test(l))).toBe(true);
  });

  it("validates once when evalEvery and the epoch boundary coincide; the records reach W&B, closed on an early stop", async () => {
    expect(crossing).toBeGreaterThan(0);
    const server = await fakeWandb();
    const saved = { ...process.env };
    Object.assign(process.env, { WANDB_API_KEY: WANDB_TEST_KEY, WANDB_BASE_URL: server.url, WANDB_PROJECT: "taesr-test" });
    const runDir = path.join(tmp, "coincide");
    try {
      const config = await smallConfig("coincide", { steps: undefined, epochs: 2, evalEvery: crossing });
      const result = await train({ config, runDir, stopAfterSteps: crossing, progress: false, log: () => {} });
      expect(result.stoppedBy).toBe("stopAfterSteps");
    } finally {
      for (const key of ["WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_PROJECT"]) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
    const evals = (await metrics(runDir)).filter((m) => m.type === "eval");
    expect(evals.map((m) => m.step)).toEqual([crossing]);

    const upsert = server.requests.find((r) => String(r.body?.query).includes("mutation UpsertBucket"));
    expect(upsert?.body.variables).toMatchObject({ project: "taesr-test", displayName: "coincide" });
    const rows = historyRows(server);
    expect(rows.map((r) => r["_step"])).toEqual(Array.from({ length: crossing }, (_, i) => i + 1));
    const last = rows.at(-1)!;
    expect(last["train/loss"]).toBeCloseTo(trainLoss(await metrics(runDir), crossing), 10);
    expect(last["eval/byDepth.6.ndcg10"]).toBe(evals[0]!.byDepth["6"].ndcg10);
    expect(last["eval/epoch"]).toBe(1);
    const stream = server.requests.filter((r) => r.path.endsWith("/file_stream"));
    expect(stream.at(-1)?.body).toEqual({ complete: true, exitcode: 0 });
    await server.close();
    await expectNoClientProcess();
  });
});

function trainLoss(records: Record<string, any>[], step: number): number {
  return records.find((m) => m.type === "train" && m.step === step)!.loss as number;
}

/**
 * W&B logging with the real client (@wandb/sdk) against a loopback HTTP server that stands in for W&B: it answers the
 * GraphQL the client sends (Viewer, UpsertBucket) and records the file_stream posts that carry the history rows.
 * Also: no key → nothing started or sent; an unreachable, refusing or stalling server → one warning, calls resolve.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type TrainConfig } from "../src/train/config.js";
import { createMetricsSink, toWandbRow } from "../src/train/wandb-logger.js";
import { WANDB_TEST_KEY, expectNoClientProcess, fakeWandb, liveChildren, type FakeWandb } from "./fake-wandb.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const KEY = WANDB_TEST_KEY;
let config: TrainConfig;

const trainRecord = (step: number, loss: number) => ({
  type: "train",
  step,
  epoch: 0,
  loss,
  lossByStep: { "1": 2 * loss, "6": loss / 2 },
  lr: 0.002,
  gradNorm: 0.75,
  tokens: 1000 * step,
  tokensPerSec: 4321,
  elapsedSec: step / 10,
});

let server: FakeWandb | undefined;
beforeAll(async () => {
  if (process.platform !== "linux") throw new Error("these tests read /proc");
  ({ config } = await loadConfig(path.join(here, "../configs/tiny.json")));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe("W&B metrics sink", () => {
  it("creates the run and streams every train/eval record, one history row per step, then closes the run", async () => {
    server = await fakeWandb();
    const lines: string[] = [];
    const sink = createMetricsSink(config, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url, WANDB_PROJECT: "taesr-test" }, { name: "tiny-run", log: (l) => lines.push(l) });
    expect(sink.enabled).toBe(true);
    sink.log({ type: "start", step: 0, totalSteps: 20, time: "2025-01-01T00:00:00Z" });
    sink.log(trainRecord(10, 1.2345));
    sink.log({ type: "eval", step: 10, epoch: 1, pairs: 12, dim: 128, byDepth: { "6": { acc1: 0.5, mrr: 0.625, ndcg10: 0.7 } }, seconds: 0.4 });
    sink.log(trainRecord(20, 0.875));
    await sink.finish();

    const graphql = server.requests.filter((r) => r.path === "/graphql");
    expect(graphql.every((r) => r.authorization === `Basic ${Buffer.from(`api:${KEY}`).toString("base64")}`)).toBe(true);
    const upsert = graphql.find((r) => String(r.body.query).includes("mutation UpsertBucket"));
    expect(upsert?.body.variables).toMatchObject({ project: "taesr-test", entity: "taesr-ci", displayName: "tiny-run" });
    expect(JSON.parse(upsert!.body.variables.config)).toMatchObject({ name: "tiny", training: { batchSize: 32 } });

    const runId = upsert!.body.variables.name as string;
    const stream = server.requests.filter((r) => r.path === `/files/taesr-ci/taesr-test/${runId}/file_stream`);
    const rows = stream.flatMap((r) => (r.body.files?.["wandb-history.jsonl"]?.content ?? []) as string[]).map((l) => JSON.parse(l));
    expect(rows.map((r) => r._step)).toEqual([10, 20]);
    expect(rows[0]).toMatchObject({
      "train/loss": 1.2345,
      "train/lossByStep.6": 1.2345 / 2,
      "train/lr": 0.002,
      "train/gradNorm": 0.75,
      "train/tokensPerSec": 4321,
      "eval/byDepth.6.ndcg10": 0.7,
      "eval/byDepth.6.mrr": 0.625,
      "eval/epoch": 1,
    });
    expect(rows[1]).toMatchObject({ "train/loss": 0.875 });
    expect(stream.at(-1)?.body).toEqual({ complete: true, exitcode: 0 });
    expect(lines).toEqual([`W&B: logging to ${server.url}/taesr-ci/taesr-test/runs/${runId}`]);
    await expectNoClientProcess();
  });

  it("does nothing without WANDB_API_KEY (or with WANDB_MODE=disabled): no client, no request, no line", async () => {
    server = await fakeWandb();
    const lines: string[] = [];
    // A missing SDK module would produce a warning if anything tried to load it.
    const options = { sdk: "@wandb/not-a-package", log: (l: string) => lines.push(l) };
    for (const env of [{ WANDB_BASE_URL: server.url }, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url, WANDB_MODE: "disabled" }]) {
      const sink = createMetricsSink(config, env, options);
      expect(sink.enabled).toBe(false);
      sink.log(trainRecord(10, 1));
      await sink.finish();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(server.requests).toEqual([]);
    expect(lines).toEqual([]);
    expect(liveChildren()).toEqual([]);
  });

  it("survives an unreachable server: log and finish resolve, one warning", async () => {
    const closed = await fakeWandb();
    const url = closed.url;
    await closed.close();
    const lines: string[] = [];
    const sink = createMetricsSink(config, { WANDB_API_KEY: KEY, WANDB_BASE_URL: url }, { log: (l) => lines.push(l) });
    sink.log(trainRecord(10, 1.5));
    sink.log(trainRecord(20, 1.4));
    await sink.finish();
    sink.log(trainRecord(30, 1.3));
    await sink.finish();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^W&B: cannot start a run at ${url}: .*ECONNREFUSED.*training continues without W&B`));
    await expectNoClientProcess();
  });

  it("survives a server that refuses the run (the SDK throws asynchronously): one warning", async () => {
    server = await fakeWandb({ refuseUpsert: true });
    const lines: string[] = [];
    const sink = createMetricsSink(config, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url }, { log: (l) => lines.push(l) });
    sink.log(trainRecord(10, 1.5));
    // Give the client time to fail before finish (the failure is reported either way).
    await new Promise((r) => setTimeout(r, 3000));
    sink.log(trainRecord(20, 1.4));
    await sink.finish(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^W&B: cannot start a run at .*Failed to upsert run.*403.*training continues without W&B/);
    await expectNoClientProcess();
  });

  it("bounds finish when the server stops answering", async () => {
    server = await fakeWandb({ stallFileStream: true });
    const lines: string[] = [];
    const sink = createMetricsSink(config, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url }, { log: (l) => lines.push(l), finishTimeoutMs: 2000 });
    sink.log(trainRecord(10, 1.5));
    const t0 = Date.now();
    await sink.finish();
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(lines.filter((l) => !l.startsWith("W&B: logging to"))).toEqual([expect.stringMatching(/^W&B: the run was not closed within 2 s/)]);
    await expectNoClientProcess();
  });

  it("warns once when the SDK is not installed", async () => {
    server = await fakeWandb();
    const lines: string[] = [];
    const sink = createMetricsSink(config, { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url }, { sdk: "@wandb/not-a-package", log: (l) => lines.push(l) });
    sink.log(trainRecord(10, 1.5));
    await sink.finish();
    expect(lines).toEqual([expect.stringMatching(/^W&B: WANDB_API_KEY is set but @wandb\/not-a-package is not installed .*W&B logging is off/)]);
    expect(server.requests).toEqual([]);
    await expectNoClientProcess();
  });

  it("maps records to flat rows and skips the rest", () => {
    expect(toWandbRow({ type: "start", step: 0 })).toBeUndefined();
    expect(toWandbRow({ type: "train", step: 3, loss: Number.NaN, skipped: true, time: "x", lossByStep: { "1": 2 } })).toEqual({
      step: 3,
      data: { "train/skipped": 1, "train/lossByStep.1": 2 },
    });
  });
});

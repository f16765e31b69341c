/**
 * The trainer end to end on the tiny config (real data, real tokenizer, real forward, wasm backend):
 * loss goes down, checkpoint → resume reproduces the uninterrupted run bit for bit, bad configs fail clearly;
 * plus the data pipeline's invariants (dedup, stable held-out slice, no duplicate documents within a batch).
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PairBatcher } from "../src/data/batches.js";
import { buildPairs, normKey, type PairBuildOptions } from "../src/data/pairs.js";
import { loadCheckpoint, listCheckpoints } from "../src/train/checkpoint.js";
import { ConfigError, loadConfig, parseConfig } from "../src/train/config.js";
import { learningRate } from "../src/train/optimizer.js";
import { loadParams } from "../src/model/params.js";
import { train } from "../src/train/trainer.js";
import { writeTinyConfig } from "./support/tiny-config.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const tinyPath = path.join(here, "../configs/tiny.json");
let tmp: string;

/** The tiny config with overrides, written to the temp dir (absolute tokenizer path, exports into tmp). */
function tinyConfig(name: string, training: Record<string, unknown> = {}): Promise<string> {
  return writeTinyConfig(tmp, name, { training });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-trainer-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("config validation", () => {
  it("accepts the shipped configs", async () => {
    for (const f of ["tiny.json", "edge-small.json", "edge-small-crossdepth.json"]) {
      const { config } = await loadConfig(path.join(here, "../configs", f));
      expect(config.arch.outputDim).toBe(384);
    }
  });

  it("rejects a bad config with the offending fields named", async () => {
    const raw = JSON.parse(await readFile(tinyPath, "utf8")) as Record<string, any>;
    raw["arch"] = { ...raw["arch"], heads: 5 };
    raw["training"] = { ...raw["training"], lr: -1, maxDocLength: 999 };
    let error: unknown;
    try {
      parseConfig(raw, "bad.json");
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain("bad.json");
    expect(message).toMatch(/divisible by heads[\s\S]*arch\.heads/);
    expect(message).toContain("training.lr");
    expect(message).toMatch(/exceeds arch\.maxLength[\s\S]*training\.maxDocLength/);
  });

  it("rejects unknown keys, missing steps/epochs and unreadable files", async () => {
    const raw = JSON.parse(await readFile(tinyPath, "utf8")) as Record<string, any>;
    expect(() => parseConfig({ ...raw, lerning_rate: 1 })).toThrow(/lerning_rate/);
    const noSteps = { ...raw, training: { ...raw["training"], steps: undefined } };
    expect(() => parseConfig(noSteps)).toThrow(/exactly one of training.steps or training.epochs/);
    await expect(loadConfig(path.join(tmp, "missing.json"))).rejects.toThrow(/cannot read training config/);
  });
});

describe("data pipeline", () => {
  const records = {
    debian: [
      { id: "a", title: "Alpha tool", text: "Alpha does the first thing for everyone who asks." },
      { id: "a-doc", title: "Alpha tool", text: "Alpha does the first thing for everyone who asks." },
      { id: "b", title: "Beta tool", text: "Beta does the second thing for nobody in particular." },
    ],
    wordnet: [{ terms: ["dog", "domestic dog"], definition: "a member of the genus Canis", examples: ["the dog barked all night"] }],
    scifact: [
      {
        _id: "1",
        title: "A study of things",
        text: "We studied things. Things were found to vary. The variation was large. We conclude that things vary.",
      },
    ],
  };
  const opts: PairBuildOptions = {
    seed: 1,
    validationFraction: 0,
    maxValidationPairs: 10,
    minDocChars: 10,
    sources: { debian: {}, wordnet: {}, scifact: {} },
  };

  it("builds every pair kind, deduplicates, and declares sources", async () => {
    const set = await buildPairs(records, opts);
    const kinds = set.train.map((p) => `${p.source}:${p.kind}`);
    expect(new Set(kinds)).toEqual(
      new Set([
        "debian:title->text",
        "debian:name+title->text",
        "wordnet:terms->definition",
        "wordnet:example->definition",
        "scifact:title->abstract",
        "scifact:sentence->rest",
      ]),
    );
    // "Alpha tool" → same text appears twice (a and a-doc): one title->text pair survives.
    expect(set.stats.duplicatesDropped).toBe(1);
    const sentence = set.train.find((p) => p.kind === "sentence->rest");
    expect(sentence && !sentence.doc.includes(sentence.query)).toBe(true);
  });

  it("holds out by document hash, independent of the seed", async () => {
    const a = await buildPairs(records, { ...opts, validationFraction: 0.5 });
    const b = await buildPairs(records, { ...opts, seed: 99, validationFraction: 0.5 });
    const docs = (s: typeof a) => new Set(s.validation.map((p) => normKey(p.doc)));
    expect(docs(a)).toEqual(docs(b));
    for (const p of a.train) expect(docs(a).has(normKey(p.doc))).toBe(false);
  });

  it("never puts the same document (or query) twice in a batch, and the order is a function of the seed", async () => {
    const pairs = Array.from({ length: 400 }, (_, i) => ({
      query: `query ${i}`,
      doc: `document number ${i % 50}`, // 8 pairs per document: many conflicts to resolve
      source: "debian" as const,
      kind: "t",
    }));
    const tokenizer = { padId: 0, encode: (t: string) => t.split(" ").map((w) => w.length + 2) };
    const batcher = new PairBatcher(pairs, tokenizer, { batchSize: 16, maxQueryLength: 8, maxDocLength: 8, seed: 3 });
    const batches = batcher.epochBatches(0);
    expect(batches.length).toBeGreaterThan(15);
    for (const b of batches) {
      expect(b).toHaveLength(16);
      expect(new Set(b.map((i) => pairs[i]!.doc)).size).toBe(16);
    }
    const again = new PairBatcher(pairs, tokenizer, { batchSize: 16, maxQueryLength: 8, maxDocLength: 8, seed: 3 });
    expect(again.epochBatches(0)).toEqual(batches);
    expect(again.epochBatches(1)).not.toEqual(batches);
    const enc = batcher.encode(batches[0]!);
    expect(enc.docs.rows).toBe(16);
    expect(enc.docs.mask.reduce((a, b) => a + b, 0)).toBe(enc.docs.tokens);
  });

  it("warms up linearly, then cools down on a cosine to the floor", () => {
    const o = { lr: 1, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
    expect(learningRate(0, o)).toBeCloseTo(0.1);
    expect(learningRate(9, o)).toBeCloseTo(1);
    expect(learningRate(60, o)).toBeCloseTo(0.55);
    expect(learningRate(110, o)).toBeCloseTo(0.1);
  });
});

describe("training (tiny config, wasm)", () => {
  it("lowers the loss", async () => {
    const config = await tinyConfig("learn");
    const result = await train({ config, runDir: path.join(tmp, "learn"), stopAfterSteps: 30, progress: false, log: () => {} });
    expect(result.step).toBe(30);
    expect(result.stoppedBy).toBe("stopAfterSteps");
    const h = result.lossHistory;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(h.every(Number.isFinite)).toBe(true);
    expect(mean(h.slice(-5))).toBeLessThan(mean(h.slice(0, 5)) - 0.1);
    const metrics = (await readFile(path.join(tmp, "learn", "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    const trainLines = metrics.filter((m) => m.type === "train");
    expect(trainLines.map((m) => m.step)).toEqual([10, 20, 30]);
    expect(Object.keys(trainLines[0].lossByStep)).toEqual(["1", "3", "6"]);
    expect(trainLines[0].tokensPerSec).toBeGreaterThan(0);
  });

  it("trains to the end and exports an artifact whose manifest declares the data", async () => {
    const config = await tinyConfig("full", { steps: 12, warmupSteps: 2, logEvery: 4 });
    const result = await train({ config, runDir: path.join(tmp, "full"), progress: false, log: () => {} });
    expect(result.stoppedBy).toBe("done");
    expect(result.exportDir).toBe(path.join(tmp, "full-artifacts", "taesr-tiny@0.0.0-ci"));
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.architecture.hidden).toBe(64);
    const t = manifest.training;
    expect(t.steps).toBe(12);
    expect(t.scifactCorpusUnsupervisedInDomain).toBe(true);
    expect(t.dataSources.scifact.use).toMatch(/UNSUPERVISED IN-DOMAIN/);
    expect(t.dataSources.debian.trainPairs).toBeGreaterThan(0);
    expect(Object.keys(manifest.eval.heldOutValidation.byDepth)).toEqual(["1", "3", "6"]);
  });

  it("starts from given weights with initFrom, and refuses weights of another architecture", async () => {
    const quiet = { progress: false, log: () => {} };
    // Runs that finish (final.taesr is written at the end of a run, not when it is interrupted).
    const source = await train({ config: await tinyConfig("init-source", { steps: 3, warmupSteps: 1 }), runDir: path.join(tmp, "init-source"), ...quiet });
    // A learning rate too small to move any weight: the run's final weights must be the ones it started from.
    const config = await tinyConfig("init-from", { steps: 1, lr: 1e-12, warmupSteps: 0, crossStepLoss: true });
    const raw = JSON.parse(await readFile(config, "utf8")) as Record<string, any>;
    await writeFile(config, JSON.stringify({ ...raw, initFrom: source.finalParamsPath }));
    const started = await train({ config, runDir: path.join(tmp, "init-from"), ...quiet });
    const [before, after] = await Promise.all([loadParams(source.finalParamsPath!), loadParams(started.finalParamsPath!)]);
    for (const [name, weights] of Object.entries(before.weights)) {
      const moved = after.weights[name as keyof typeof after.weights];
      let largest = 0;
      weights.forEach((w, i) => (largest = Math.max(largest, Math.abs(w - moved[i]!))));
      expect(largest, name).toBeLessThan(1e-6);
    }

    const wider = JSON.parse(await readFile(config, "utf8")) as Record<string, any>;
    wider.arch = { ...wider.arch, hidden: 32, ffn: 64 };
    const widerConfig = path.join(tmp, "init-wider.json");
    await writeFile(widerConfig, JSON.stringify(wider));
    await expect(train({ config: widerConfig, runDir: path.join(tmp, "init-wider"), stopAfterSteps: 1, ...quiet })).rejects.toThrow(
      /initFrom: .* was trained with hidden 64, ffn 128, this config has hidden 32, ffn 64/,
    );
  });

  it("resumes from a checkpoint exactly where an uninterrupted run would be", async () => {
    const config = await tinyConfig("resume", { checkpointEvery: 3, keepCheckpoints: 2, logEvery: 3 });
    const quiet = { progress: false, log: () => {} };
    const straight = await train({ config, runDir: path.join(tmp, "straight"), stopAfterSteps: 6, ...quiet });
    const first = await train({ config, runDir: path.join(tmp, "split"), stopAfterSteps: 3, ...quiet });
    expect(first.step).toBe(3);
    await expect(train({ config, runDir: path.join(tmp, "split"), stopAfterSteps: 1, ...quiet })).rejects.toThrow(/--resume/);
    const second = await train({ config, runDir: path.join(tmp, "split"), resume: true, stopAfterSteps: 3, ...quiet });
    expect(second.step).toBe(6);
    expect(second.lossHistory).toEqual(straight.lossHistory.slice(3));
    expect(await listCheckpoints(path.join(tmp, "split"))).toEqual(["step-00000003", "step-00000006"]);
    const a = await loadCheckpoint(path.join(tmp, "straight", "checkpoints", "step-00000006"));
    const b = await loadCheckpoint(path.join(tmp, "split", "checkpoints", "step-00000006"));
    expect(b.state.cursor).toEqual(a.state.cursor);
    expect(b.state.adamT).toBe(6);
    // The last logged loss travels with the checkpoint, so an export after a resume records it.
    expect(Object.keys(a.state.lastLoss ?? {})).toEqual(["1", "3", "6"]);
    expect(b.state.lastLoss).toEqual(a.state.lastLoss);
    expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    for (const [name, t] of a.tensors) expect(bytes(b.tensors.get(name)!.data).equals(bytes(t.data)), name).toBe(true);
  });
});

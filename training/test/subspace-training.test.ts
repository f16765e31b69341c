/**
 * The subspace objectives in the real trainer (tiny config, real data, wasm): the probes learn (held-out contextual
 * accuracy above the majority rate), per-objective losses reach metrics.jsonl, the probes and their moments are
 * checkpointed so a resume is bit-exact, they never reach the exported weights, and data parallelism stays bit-identical
 * to accumulation with the probes' gradients travelling with the model's.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { loadParams } from "../src/model/params.js";
import { train } from "../src/train/trainer.js";
import { writeTinyConfig } from "./support/tiny-config.js";

let tmp: string;

function tinyConfig(name: string, training: Record<string, unknown>): Promise<string> {
  return writeTinyConfig(tmp, name, { training: { objectives: { subspaces: { weight: 0.5 } }, ...training } });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-subspaces-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const quiet = { progress: false, log: () => {} };
const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

describe("subspace objectives in training", () => {
  it("teaches the contextual subspace its label (held-out probe beats the majority rate) and logs every objective", async () => {
    const result = await train({ config: await tinyConfig("learn", { steps: 40, logEvery: 10 }), runDir: path.join(tmp, "learn"), ...quiet });
    const probes = result.validation?.subspaces;
    expect(probes).toBeDefined();
    // Held-out queries and documents of the validation pairs (128 pairs: 256 rows).
    expect(probes!.contextual.rows).toBe(256);
    expect(probes!.contextual.accuracy).toBeGreaterThan(probes!.contextual.chance + 0.05);
    expect(probes!.contextual.balancedAccuracy).toBeGreaterThan(1 / 3 + 0.1);
    for (const s of ["temporal", "procedural"] as const) expect(probes![s].balancedAccuracy, s).toBeGreaterThanOrEqual(0);

    const lines = (await readFile(path.join(tmp, "learn", "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    const trainLines = lines.filter((m) => m.type === "train");
    expect(Object.keys(trainLines[0].lossByObjective).sort()).toEqual(["contextual", "dense", "procedural", "subspaces", "temporal"]);
    // The logged total is the dense loss plus the weighted subspace terms.
    const first = trainLines[0];
    expect(first.loss).toBeCloseTo(first.lossByObjective.dense + first.lossByObjective.subspaces, 3);
    expect(lines.find((m) => m.type === "eval").subspaces.contextual.rows).toBe(256);

    // Training-only: the exported weights and final.taesr hold the model's weights alone.
    const final = await loadParams(result.finalParamsPath!);
    expect(Object.keys(final.weights).filter((n) => n.startsWith("aux"))).toEqual([]);
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.eval.heldOutValidation.subspaces.contextual.accuracy).toBe(probes!.contextual.accuracy);
    // About a minute on an idle 2-core machine; the margin is for a busy one.
  }, 1_500_000);

  it("checkpoints the probes with their moments: a resumed run is bit-identical", async () => {
    const config = await tinyConfig("resume", { checkpointEvery: 2, keepCheckpoints: 2 });
    const straight = await train({ config, runDir: path.join(tmp, "straight"), stopAfterSteps: 4, ...quiet });
    await train({ config, runDir: path.join(tmp, "split"), stopAfterSteps: 2, ...quiet });
    const second = await train({ config, runDir: path.join(tmp, "split"), resume: true, stopAfterSteps: 2, ...quiet });
    expect(second.lossHistory).toEqual(straight.lossHistory.slice(2));
    const a = await loadCheckpoint(path.join(tmp, "straight", "checkpoints", "step-00000004"));
    const b = await loadCheckpoint(path.join(tmp, "split", "checkpoints", "step-00000004"));
    const probeTensors = [...a.tensors.keys()].filter((n) => n.startsWith("probe."));
    expect(probeTensors.sort()).toEqual(
      ["temporal", "procedural", "contextual"].flatMap((s) => [`probe.adam.m.aux.${s}.w`, `probe.adam.v.aux.${s}.w`, `probe.aux.${s}.w`]).sort(),
    );
    expect(b.state.probeAdamT).toBe(4);
    expect([...b.tensors.keys()]).toEqual([...a.tensors.keys()]);
    for (const [name, t] of a.tensors) expect(bytes(b.tensors.get(name)!.data).equals(bytes(t.data)), name).toBe(true);
  });

  it("trains bit-identically with two processes as with one accumulating, probes included", async () => {
    const common = { checkpointEvery: 2, logEvery: 2, batchSize: 16 };
    const parallel = await train({ config: await tinyConfig("dp", { ...common, workers: 2 }), runDir: path.join(tmp, "dp"), stopAfterSteps: 2, ...quiet });
    const accumulated = await train({
      config: await tinyConfig("acc", { ...common, accumulationSteps: 2 }),
      runDir: path.join(tmp, "acc"),
      stopAfterSteps: 2,
      ...quiet,
    });
    expect(parallel.lossHistory).toEqual(accumulated.lossHistory);
    const a = await loadCheckpoint(path.join(tmp, "dp", "checkpoints", "step-00000002"));
    const b = await loadCheckpoint(path.join(tmp, "acc", "checkpoints", "step-00000002"));
    expect([...a.tensors.keys()].some((n) => n.startsWith("probe.aux."))).toBe(true);
    for (const [name, t] of a.tensors) expect(bytes(b.tensors.get(name)!.data).equals(bytes(t.data)), name).toBe(true);
  });
});

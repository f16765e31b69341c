/**
 * Data-parallel training with real child processes (tiny config, wasm): two processes computing one micro-batch each
 * must make exactly the update one process makes accumulating the same two micro-batches, and a run whose gradient
 * worker dies stops with a clear error and a checkpoint it can resume from.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listCheckpoints, loadCheckpoint } from "../src/train/checkpoint.js";
import { ConfigError, loadConfig } from "../src/train/config.js";
import { GradientWorkerPool } from "../src/train/data-parallel.js";
import { prepareSession, train } from "../src/train/trainer.js";
import { writeTinyConfig } from "./support/tiny-config.js";

let tmp: string;

function tinyConfig(name: string, training: Record<string, unknown>): Promise<string> {
  return writeTinyConfig(tmp, name, { training: { checkpointEvery: 2, logEvery: 2, batchSize: 16, ...training } });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-dp-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const quiet = { progress: false, log: () => {} };
const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);

describe("data-parallel training", () => {
  it("two processes × one micro-batch update exactly as one process accumulating two", async () => {
    const parallel = await train({
      config: await tinyConfig("dp", { workers: 2, accumulationSteps: 1 }),
      runDir: path.join(tmp, "dp"),
      stopAfterSteps: 2,
      ...quiet,
    });
    const accumulated = await train({
      config: await tinyConfig("acc", { workers: 1, accumulationSteps: 2 }),
      runDir: path.join(tmp, "acc"),
      stopAfterSteps: 2,
      ...quiet,
    });
    expect(parallel.step).toBe(2);
    // Both consumed four batches of 16 pairs: twice the tokens of a one-process, one-micro-batch run.
    expect(parallel.tokens).toBe(accumulated.tokens);
    expect(parallel.lossHistory).toEqual(accumulated.lossHistory);
    const a = await loadCheckpoint(path.join(tmp, "dp", "checkpoints", "step-00000002"));
    const b = await loadCheckpoint(path.join(tmp, "acc", "checkpoints", "step-00000002"));
    expect(a.state.cursor).toEqual({ epoch: 0, batch: 4 });
    expect(b.state.cursor).toEqual(a.state.cursor);
    for (const [name, t] of a.tensors) expect(bytes(b.tensors.get(name)!.data).equals(bytes(t.data)), name).toBe(true);

    // And not merely equal to each other: the update differs from one micro-batch per update.
    const single = await train({
      config: await tinyConfig("single", { workers: 1, accumulationSteps: 1 }),
      runDir: path.join(tmp, "single"),
      stopAfterSteps: 2,
      ...quiet,
    });
    expect(single.tokens).toBeLessThan(parallel.tokens);
    expect(single.lossHistory).not.toEqual(parallel.lossHistory);
  });

  it("stops with a clear error and a resumable checkpoint when a gradient worker dies", async () => {
    const config = await tinyConfig("crash", { workers: 2 });
    const runDir = path.join(tmp, "crash");
    // The worker kills itself on its third update (test hook read only by gradient-worker.ts).
    process.env["TAESR_GRADIENT_WORKER_EXIT_AT"] = "3";
    try {
      await expect(train({ config, runDir, stopAfterSteps: 5, ...quiet })).rejects.toThrow(/gradient worker 1 exited/);
    } finally {
      delete process.env["TAESR_GRADIENT_WORKER_EXIT_AT"];
    }
    // Updates 1 and 2 completed; the third was never applied.
    expect(await listCheckpoints(runDir)).toEqual(["step-00000002"]);
    const resumed = await train({ config, runDir, resume: true, stopAfterSteps: 1, ...quiet });
    expect(resumed.step).toBe(3);
  });

  describe("one GPU per rank (training.gpuDevices)", () => {
    let saved: string | undefined;
    beforeAll(() => {
      saved = process.env["CUDA_VISIBLE_DEVICES"];
    });
    afterAll(() => {
      if (saved === undefined) delete process.env["CUDA_VISIBLE_DEVICES"];
      else process.env["CUDA_VISIBLE_DEVICES"] = saved;
    });

    it("pins rank 0 to the first device and each worker to its own (checked when the workers start)", async () => {
      const result = await train({ config: await tinyConfig("gpu", { workers: 2, gpuDevices: ["3", "5"] }), runDir: path.join(tmp, "gpu"), stopAfterSteps: 1, ...quiet });
      expect(result.step).toBe(1);
      expect(process.env["CUDA_VISIBLE_DEVICES"]).toBe("3");
    });

    it("refuses workers that do not see the device their rank was given", async () => {
      const config = await tinyConfig("gpu-check", { workers: 2, gpuDevices: ["3", "5"] });
      const session = await prepareSession({ config, log: () => {} });
      // The worker pins itself to "5" from the config; a pool expecting "7" for rank 1 must not train with it.
      await expect(GradientWorkerPool.start(1, config, { fingerprint: session.fingerprint, backend: session.backend }, ["3", "7"])).rejects.toThrow(
        /gradient worker 1 should see GPU 7 but CUDA_VISIBLE_DEVICES is 5/,
      );
    });

    it("needs exactly one distinct device per process", async () => {
      await expect(loadConfig(await tinyConfig("gpu-short", { workers: 2, gpuDevices: ["0"] }))).rejects.toThrow(ConfigError);
      await expect(loadConfig(await tinyConfig("gpu-short", { workers: 2, gpuDevices: ["0"] }))).rejects.toThrow(/one device per worker process \(2\), got 1/);
      await expect(loadConfig(await tinyConfig("gpu-twice", { workers: 2, gpuDevices: ["1", "1"] }))).rejects.toThrow(/lists a device twice/);
    });
  });
});

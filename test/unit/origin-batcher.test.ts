/**
 * The origin's micro-batcher with a scripted runner: batches start on size (or after maxWait), texts that arrive while a
 * batch runs go together into the next, large requests are split, keys never mix, the queue bound refuses with
 * OverloadedError, a failed batch fails only its own requests, and drain() refuses new work but finishes accepted work.
 * Batches are held open with explicit gates, never by timing.
 */
import { describe, expect, it } from "vitest";
import { DrainingError, MicroBatcher, OverloadedError } from "../../workers/origin/src/batcher.js";
import { gate, type Gate } from "../support/gate.js";


/** A batcher whose runner records each batch, waits for `hold` when set, and echoes "<key>:<text>". */
function scripted(options: { maxBatch: number; maxWaitMs?: number; maxQueue?: number; failOn?: string }) {
  const batches: string[][] = [];
  let hold: Gate | null = null;
  const batcher = new MicroBatcher<string>({
    maxBatch: options.maxBatch,
    maxWaitMs: options.maxWaitMs ?? 60_000,
    maxQueue: options.maxQueue ?? 1_000,
    run: async (key, texts) => {
      batches.push(texts);
      if (hold) await hold.promise;
      if (options.failOn && texts.includes(options.failOn)) throw new Error(`cannot embed "${options.failOn}"`);
      return texts.map((text) => `${key}:${text}`);
    },
  });
  return {
    batcher,
    batches,
    holdNext() {
      hold = gate();
      return hold;
    },
  };
}

/** Lets the batcher's promise chains settle (no timers involved). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("MicroBatcher", () => {
  it("starts a batch as soon as maxBatch texts are waiting, one run for all of them", async () => {
    const { batcher, batches } = scripted({ maxBatch: 4 });
    const results = await Promise.all(["a", "b", "c", "d"].map((text) => batcher.submit([text], "k")));
    expect(results).toEqual([["k:a"], ["k:b"], ["k:c"], ["k:d"]]);
    expect(batches).toEqual([["a", "b", "c", "d"]]);
    expect(batcher.stats()).toMatchObject({ batchesRun: 1, textsRun: 4, largestBatch: 4, queuedTexts: 0 });
  });

  it("runs a lone text once maxWaitMs has passed", async () => {
    const { batcher, batches } = scripted({ maxBatch: 32, maxWaitMs: 5 });
    await expect(batcher.submit(["alone"], "k")).resolves.toEqual(["k:alone"]);
    expect(batches).toEqual([["alone"]]);
  });

  it("coalesces texts that arrive while a batch runs into the next batch", async () => {
    const { batcher, batches, holdNext } = scripted({ maxBatch: 8, maxWaitMs: 0 });
    const held = holdNext();
    const first = batcher.submit(["first"], "k");
    await settle();
    expect(batcher.stats().runningTexts).toBe(1);
    const later = ["x", "y", "z"].map((text) => batcher.submit([text], "k"));
    await settle();
    expect(batcher.stats()).toMatchObject({ queuedTexts: 3, queuedRequests: 3 });
    held.open();
    await Promise.all([first, ...later]);
    expect(batches).toEqual([["first"], ["x", "y", "z"]]);
  });

  it("splits a request larger than maxBatch and answers it in order", async () => {
    const { batcher, batches } = scripted({ maxBatch: 2, maxWaitMs: 0 });
    await expect(batcher.submit(["1", "2", "3", "4", "5"], "k")).resolves.toEqual(["k:1", "k:2", "k:3", "k:4", "k:5"]);
    expect(batches).toEqual([["1", "2"], ["3", "4"], ["5"]]);
  });

  it("never mixes keys in one batch", async () => {
    const { batcher, batches, holdNext } = scripted({ maxBatch: 8, maxWaitMs: 0 });
    const held = holdNext();
    const first = batcher.submit(["warm"], "a");
    await settle();
    const rest = [batcher.submit(["a1"], "a"), batcher.submit(["b1"], "b"), batcher.submit(["a2"], "a")];
    held.open();
    expect(await Promise.all(rest)).toEqual([["a:a1"], ["b:b1"], ["a:a2"]]);
    await first;
    expect(batches).toEqual([["warm"], ["a1", "a2"], ["b1"]]);
  });

  it("refuses with OverloadedError when the queue bound would be exceeded", async () => {
    const { batcher, holdNext } = scripted({ maxBatch: 1, maxWaitMs: 0, maxQueue: 3 });
    const held = holdNext();
    const running = batcher.submit(["running"], "k");
    await settle();
    const queued = batcher.submit(["q1", "q2"], "k");
    const refused = batcher.submit(["q3", "q4"], "k");
    await expect(refused).rejects.toBeInstanceOf(OverloadedError);
    await expect(refused).rejects.toMatchObject({ queued: 2, maxQueue: 3 });
    const fits = batcher.submit(["q3"], "k");
    held.open();
    await expect(Promise.all([running, queued, fits])).resolves.toEqual([["k:running"], ["k:q1", "k:q2"], ["k:q3"]]);
  });

  it("a failed batch rejects only the requests in it", async () => {
    const { batcher, holdNext } = scripted({ maxBatch: 2, maxWaitMs: 0, failOn: "bad" });
    const held = holdNext();
    const before = batcher.submit(["fine"], "k");
    await settle();
    const doomed = [batcher.submit(["bad"], "k"), batcher.submit(["unlucky"], "k")];
    const after = batcher.submit(["later"], "k");
    held.open();
    await expect(before).resolves.toEqual(["k:fine"]);
    for (const request of doomed) await expect(request).rejects.toThrow(/cannot embed "bad"/);
    await expect(after).resolves.toEqual(["k:later"]);
    expect(batcher.stats()).toMatchObject({ batchesRun: 2, batchesFailed: 1 });
  });

  it("drain() refuses new work, runs what was accepted without waiting for maxWait, then resolves", async () => {
    const { batcher, batches, holdNext } = scripted({ maxBatch: 2, maxWaitMs: 60_000 });
    const held = holdNext();
    const running = batcher.submit(["in", "flight"], "k");
    await settle();
    const queued = batcher.submit(["queued"], "k");
    let drained = false;
    const draining = batcher.drain().then(() => (drained = true));
    await expect(batcher.submit(["too late"], "k")).rejects.toBeInstanceOf(DrainingError);
    await settle();
    expect(drained).toBe(false);
    held.open();
    await draining;
    await expect(Promise.all([running, queued])).resolves.toEqual([["k:in", "k:flight"], ["k:queued"]]);
    expect(batches).toEqual([["in", "flight"], ["queued"]]);
  });
});

describe("the origin's batch key (workers/origin/src/app.ts)", () => {
  it("round-trips every option, the sparse cut and the passages included, and separates requests that must not share a pass", async () => {
    const { batchKey, parseBatchKey } = await import("../../workers/origin/src/app.js");
    const plain = { dims: 128, depth: 6, earlyExit: false, tokenVectors: true };
    const sparse = { ...plain, sparse: { threshold: 0.05, maxTerms: 256 } };
    expect(parseBatchKey(batchKey(plain))).toEqual(plain);
    expect(parseBatchKey(batchKey(sparse))).toEqual(sparse);
    const passages = { ...sparse, passages: { maxPieces: 120, maxPassages: 8 } };
    expect(parseBatchKey(batchKey(passages))).toEqual(passages);
    const keys = new Set(
      [
        plain,
        sparse,
        { ...sparse, sparse: { threshold: 0.05, maxTerms: 128 } },
        { ...sparse, sparse: { threshold: 0, maxTerms: 256 } },
        passages,
        { ...passages, passages: { maxPieces: 120, maxPassages: 4 } },
      ].map(batchKey),
    );
    expect(keys.size).toBe(6);
  });
});

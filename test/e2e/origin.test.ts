/**
 * End to end: the GPU origin (workers/origin) on a loopback port with the real bundled model's fp32 graphs on
 * onnxruntime-node (the CPU provider here: this machine has no GPU), driven over HTTP.
 *
 * Batches are held open by a gate around the real model (a test wrapper, not a production hook) and the tests wait
 * for the queue depth /health reports, so coalescing, the 429 bound, batch failure and draining are asserted on counts
 * and statuses, never on time. A last test runs `npm run origin`'s entry as a child process and sends it SIGTERM.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaesrEncoder } from "../../src/model/index.js";
import { defaultArtifactDir } from "../../workers/origin/src/artifact-files.js";
import { loadOriginModel, type OriginModel } from "../../workers/origin/src/origin-model.js";
import { startOrigin, type OriginServer } from "../../workers/origin/src/server.js";
import { fp32Encoder } from "../support/fp32-encoder.js";
import { gate, type Gate } from "../support/gate.js";

const SECRET = "origin-test-secret";
/** A text the gated model refuses, to make one batch fail. */
const POISON = "this text makes its batch fail";


let reference: TaesrEncoder;
let real: OriginModel;
let origin: OriginServer;
let modelGate: Gate;
/** When set, the next batch waits for it before running. */
let batchGate: Gate | null = null;

beforeAll(async () => {
  const dir = await defaultArtifactDir();
  reference = await fp32Encoder(dir);
  real = await loadOriginModel({ dir, provider: "auto", threads: 1, log: () => undefined });
  const gated: OriginModel = {
    ...real,
    async embed(texts, options) {
      const held = batchGate;
      batchGate = null;
      if (held) await held.promise;
      if (texts.includes(POISON)) throw new Error("the test's poison text");
      return real.embed(texts, options);
    },
  };
  modelGate = gate();
  origin = await startOrigin({
    secret: SECRET,
    maxBatch: 32,
    maxWaitMs: 1,
    maxQueue: 8,
    loadModel: async () => {
      await modelGate.promise;
      return gated;
    },
    log: () => undefined,
  });
});

afterAll(async () => {
  batchGate?.open();
  modelGate?.open();
  await origin?.shutdown();
  await reference?.release();
});

function embed(body: unknown, secret: string | null = SECRET): Promise<Response> {
  return fetch(`${origin.url}/v1/embed`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(secret === null ? {} : { authorization: `Bearer ${secret}` }) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

interface Health {
  status: string;
  provider: string | null;
  queue: { texts: number; requests: number; maxTexts: number };
  batches: { run: number; failed: number; texts: number; largest: number; runningTexts: number };
}

async function health(): Promise<Health> {
  return (await (await fetch(`${origin.url}/health`)).json()) as Health;
}

/** Polls /health until `check` holds (the test's own timeout bounds the wait). */
async function until(check: (h: Health) => boolean): Promise<Health> {
  for (;;) {
    const current = await health();
    if (check(current)) return current;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Holds the next batch: resolves once a request is running inside it. */
async function holdNextBatch(): Promise<{ release(): void; blocker: Promise<Response> }> {
  const held = gate();
  batchGate = held;
  const blocker = embed({ input: ["the request that holds the batch"] });
  await until((h) => h.batches.runningTexts === 1);
  return { release: held.open, blocker };
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  expect(response.headers.get("content-type")).toContain("application/json");
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

describe("GPU origin over HTTP", () => {
  it("answers /health at once, /ready 503 and embeds 503 until the model is loaded, then 200", async () => {
    const loading = await health();
    expect(loading).toMatchObject({ status: "loading", provider: null });
    const notReady = await fetch(`${origin.url}/ready`);
    expect(notReady.status).toBe(503);
    expect((await errorOf(notReady)).code).toBe("model_unavailable");
    expect((await embed({ input: ["too early"] })).status).toBe(503);

    modelGate.open();
    await origin.loaded;
    const ready = await fetch(`${origin.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, provider: "cpu", model: { variant: "fp32" } });
    expect(await health()).toMatchObject({ status: "ready", provider: "cpu" });
  });

  it("refuses a missing or wrong secret with 401 JSON", async () => {
    const missing = await embed({ input: ["hello"] }, null);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect((await errorOf(missing)).code).toBe("unauthorized");
    const wrong = await embed({ input: ["hello"] }, "not-the-secret");
    expect(wrong.status).toBe(401);
    expect(await errorOf(wrong)).toMatchObject({ code: "unauthorized", message: "invalid origin secret" });
  });

  it("answers bad input with 400 JSON naming the problem, unknown routes with 404, wrong methods with 405", async () => {
    const cases: [unknown, string, RegExp][] = [
      ["{not json", "invalid_json", /not valid JSON/],
      [{ input: [] }, "invalid_request", /input/],
      [{ input: "a string, not an array" }, "invalid_request", /input/],
      [{ input: Array.from({ length: 65 }, () => "x") }, "invalid_request", /input/],
      [{ input: ["x".repeat(8001)] }, "invalid_request", /at most 8000 characters/],
      [{ input: ["x"], dims: 100 }, "invalid_request", /dims must be one of 64, 128, 256, 384/],
      [{ input: ["x"], depth: 7 }, "invalid_request", /depth must be from 1 to 6/],
      [{ input: ["x"], depth: 0 }, "invalid_request", /depth/],
      [{ input: ["x"], topK: 3 }, "invalid_request", /topK/],
      [{ input: ["x"], sparse: { threshold: 0, maxTerms: 5000 } }, "invalid_request", /maxTerms must be at most 1024/],
      [{ input: ["x"], sparse: { threshold: -1, maxTerms: 8 } }, "invalid_request", /sparse\.threshold/],
      [{ input: ["x"], sparse: true }, "invalid_request", /sparse/],
    ];
    for (const [body, code, message] of cases) {
      const response = await embed(body);
      expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      const error = await errorOf(response);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
    }
    const unknown = await fetch(`${origin.url}/v2/nothing`);
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe("not_found");
    const wrongMethod = await fetch(`${origin.url}/v1/embed`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });

  it("returns what an in-process TaesrEncoder gives at depth 6 (within 1e-5), at full width and a Matryoshka prefix", async () => {
    const texts = ["how do glaciers carve valleys", "espresso", "", "A satellite falls toward the Earth all the time but moves sideways fast enough."];
    for (const dims of [undefined, 128] as const) {
      const response = await embed({ input: texts, ...(dims ? { dims } : {}) });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { embeddings: number[][]; dims: number; depth: number; model: object; provider: string };
      expect(body).toMatchObject({ dims: dims ?? 384, depth: 6, provider: "cpu", model: { name: real.info.name, version: real.info.version, variant: "fp32" } });
      expect(body.embeddings).toHaveLength(texts.length);
      for (const [i, text] of texts.entries()) {
        const [expected] = (await reference.embed([text], { dims: dims ?? 384, depth: 6, earlyExit: false })).embeddings;
        const got = body.embeddings[i]!;
        expect(got).toHaveLength(expected!.length);
        const worst = got.reduce((max, value, j) => Math.max(max, Math.abs(value - expected![j]!)), 0);
        expect(worst, `text ${i} at dims ${dims ?? 384}`).toBeLessThan(1e-5);
      }
    }
  });

  it("returns the late head's token vectors from the same pass when asked, as the in-process encoder makes them", async () => {
    expect(real.hasLateHead, "the bundled model has the late-interaction head").toBe(true);
    const texts = ["how do glaciers carve valleys", "espresso"];
    const response = await embed({ input: texts, dims: 128, tokenVectors: true });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { embeddings: number[][]; tokenVectors: { count: number; dims: number; data: number[] }[] };
    expect(body.tokenVectors).toHaveLength(texts.length);
    const expected = (await reference.embed(texts, { dims: 128, depth: 6, earlyExit: false, tokenVectors: true })).tokenVectors!;
    for (const [i, matrix] of body.tokenVectors.entries()) {
      expect({ count: matrix.count, dims: matrix.dims }).toEqual({ count: expected[i]!.count, dims: expected[i]!.dims });
      expect(matrix.data).toHaveLength(matrix.count * matrix.dims);
      const worst = matrix.data.reduce((max, value, j) => Math.max(max, Math.abs(value - expected[i]!.data[j]!)), 0);
      expect(worst, `text ${i}`).toBeLessThan(1e-5);
    }
    // Not asked, not sent: document batches without rerank data stay as small as before.
    const plain = (await (await embed({ input: texts, dims: 128 })).json()) as Record<string, unknown>;
    expect(plain).not.toHaveProperty("tokenVectors");
  });

  it("coalesces concurrent requests into one batch", async () => {
    const { release, blocker } = await holdNextBatch();
    const before = await health();
    const texts = ["first query", "second query", "third query", "fourth query", "fifth query"];
    const requests = texts.map((text) => embed({ input: [text] }));
    await until((h) => h.queue.requests === texts.length);
    release();
    const responses = await Promise.all([blocker, ...requests]);
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    const after = await health();
    // The held batch, then every waiting request in a single one.
    expect(after.batches.run - before.batches.run).toBe(2);
    expect(after.batches.texts - before.batches.texts).toBe(1 + texts.length);
    expect(after.batches.largest).toBeGreaterThanOrEqual(texts.length);
  });

  it("answers 429 with Retry-After when the queue bound would be exceeded, and still serves what it accepted", async () => {
    const { release, blocker } = await holdNextBatch();
    const fill = embed({ input: Array.from({ length: 8 }, (_, i) => `queued text ${i}`) });
    await until((h) => h.queue.texts === 8);
    const refused = await embed({ input: ["one too many"] });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await errorOf(refused)).code).toBe("overloaded");
    release();
    expect((await blocker).status).toBe(200);
    const filled = await fill;
    expect(filled.status).toBe(200);
    expect(((await filled.json()) as { embeddings: unknown[] }).embeddings).toHaveLength(8);
  });

  it("a failed batch answers 500 JSON to its requests only; a request in another batch succeeds", async () => {
    const { release, blocker } = await holdNextBatch();
    const failing = embed({ input: [POISON] });
    // Another width is another batch (texts only batch with texts of the same options).
    const other = embed({ input: ["an innocent text"], dims: 128 });
    await until((h) => h.queue.requests === 2);
    const failedBefore = (await health()).batches.failed;
    release();
    const [blocked, failed, fine] = await Promise.all([blocker, failing, other]);
    expect(blocked.status).toBe(200);
    expect(failed.status).toBe(500);
    expect(await errorOf(failed)).toMatchObject({ code: "internal" });
    expect(fine.status).toBe(200);
    expect((await health()).batches.failed).toBe(failedBefore + 1);
  });

  it("shuts down gracefully: /ready and new embeds 503, the in-flight request is answered, then the server closes", async () => {
    const { release, blocker } = await holdNextBatch();
    const stopped = origin.shutdown();
    const ready = await fetch(`${origin.url}/ready`);
    expect(ready.status).toBe(503);
    expect((await errorOf(ready)).code).toBe("shutting_down");
    const late = await embed({ input: ["arrived during shutdown"] });
    expect(late.status).toBe(503);
    expect((await errorOf(late)).code).toBe("shutting_down");
    expect((await health()).status).toBe("draining");

    release();
    const inFlight = await blocker;
    expect(inFlight.status).toBe(200);
    expect(((await inFlight.json()) as { embeddings: unknown[] }).embeddings).toHaveLength(1);
    await stopped;
    await expect(fetch(`${origin.url}/health`)).rejects.toThrow();
  });
});

describe("npm run origin (the process)", () => {
  it("serves, and on SIGTERM answers the request it accepted and exits 0", async () => {
    const repoRoot = path.resolve(import.meta.dirname, "../..");
    const child = spawn(process.execPath, [path.join(repoRoot, "node_modules/tsx/dist/cli.mjs"), "workers/origin/src/main.ts", "--port", "0", "--threads", "1", "--provider", "cpu"], {
      cwd: repoRoot,
      env: { ...process.env, ORIGIN_SECRET: SECRET },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let output = "";
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString();
          const match = /listening on (http:\/\/\S+),/.exec(output);
          if (match) resolve(match[1]!);
        });
        child.once("exit", () => reject(new Error(`the origin exited before listening:\n${output}`)));
      });
      for (;;) {
        if ((await fetch(`${url}/ready`)).ok) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const accepted = fetch(`${url}/v1/embed`, {
        method: "POST",
        headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json" },
        body: JSON.stringify({ input: Array.from({ length: 64 }, (_, i) => `a longer sentence number ${i} about lighthouses, glaciers and espresso`) }),
      });
      // Signal once the request is accepted (queued or running); whether its batches are still running when the
      // signal lands is up to the scheduler — the in-process test above holds a batch to make that deterministic.
      for (;;) {
        const h = (await (await fetch(`${url}/health`)).json()) as Health;
        if (h.queue.texts > 0 || h.batches.runningTexts > 0 || h.batches.texts > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      child.kill("SIGTERM");
      const response = await accepted;
      expect(response.status).toBe(200);
      expect(((await response.json()) as { embeddings: unknown[] }).embeddings).toHaveLength(64);
      expect(await exited).toBe(0);
      expect(output).toMatch(/SIGTERM received/);
      expect(output).toMatch(/stopped after \d+ batches/);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

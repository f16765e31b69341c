/**
 * Data-parallel training across processes: the trainer (rank 0) keeps the only copy of the optimiser state and
 * `workers − 1` child processes compute gradients on their share of each update's micro-batches.
 *
 * One update:
 *   rank 0 sends every child the current weights and the pair indices of its micro-batches
 *   → all ranks run forward + backward on their micro-batches (the children in parallel with rank 0)
 *   → the children send back gradient sums → rank 0 averages over all micro-batches, clips, applies AdamW.
 * The children are stateless gradient calculators: a child that dies loses nothing, resume needs no per-rank state, and
 * the update is bit-identical however often the run is interrupted. Weights travel to each child every update
 * (4 bytes × parameters, 5 MB for the edge model: a few ms over the IPC channel against seconds of compute). The design
 * carries to one process per GPU with tfjs-node-gpu (`training.gpuDevices` pins rank r to one device through
 * CUDA_VISIBLE_DEVICES, checked at start-up), where an all-reduce would replace the star once parameter traffic matters.
 *
 * Each micro-batch keeps its own in-batch negatives (gradients are averaged, embeddings are not gathered across ranks),
 * as in plain DistributedDataParallel without an all-gather; more negatives per query come from a larger micro-batch
 * through the gradient cache (gradient-cache.ts), which needs no traffic between ranks.
 *
 * @module
 */
import { fork, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { WeightName } from "../../../src/model/spec.js";

/** rank 0 → child */
export type ToWorker =
  | { type: "init"; configPath: string }
  | {
      type: "work";
      id: number;
      weights: Record<WeightName, Float32Array>;
      batches: number[][];
      step?: number;
      /** The subspace probes' values (train/subspace-loss.ts), when the run trains them. */
      probes?: Record<string, Float32Array>;
    };

/** child → rank 0 */
export type FromWorker =
  | { type: "ready"; fingerprint: string; backend: string; device?: string | undefined }
  | {
      type: "result";
      id: number;
      gradSums: Record<WeightName, Float32Array>;
      losses: number[];
      perStep: number[][];
      /** Per micro-batch, each objective's value (micro-batch.ts MicroBatchResult.objectives). */
      objectives?: Record<string, number>[];
      /** Gradient sums of the subspace probes, when the work carried probes. */
      auxGradSums?: Record<string, Float32Array>;
      tokens: number;
      paddedTokens: number;
    }
  | { type: "error"; id?: number; message: string };

export type WorkerResult = Extract<FromWorker, { type: "result" }>;

/** A gradient worker failed or exited; the update in flight was not applied. */
export class GradientWorkerError extends Error {
  override name = "GradientWorkerError";
}

const WORKER_ENTRY = fileURLToPath(new URL("./gradient-worker.ts", import.meta.url));

/** The tsx loader, so a child runs the TypeScript entry exactly as `npm run train` runs the CLI. */
function tsxLoaderUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
}

/** What must match between ranks for averaged gradients to mean anything. */
export interface Identity {
  /** Hash of the training pairs (trainer.ts dataFingerprint). */
  fingerprint: string;
  /** The tfjs backend actually in use: ranks on different backends would not compute the same function. */
  backend: string;
  /** CUDA_VISIBLE_DEVICES as the process saw it after start-up (training.gpuDevices pins one GPU per rank). */
  device?: string | undefined;
}

interface Pending {
  resolve: (result: WorkerResult) => void;
  reject: (error: Error) => void;
}

class GradientWorker {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private readyWaiter: { resolve: (ready: Identity) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private closing = false;

  constructor(readonly rank: number) {
    this.child = fork(WORKER_ENTRY, [], {
      execArgv: ["--import", tsxLoaderUrl()],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, TAESR_GRADIENT_WORKER_RANK: String(rank) },
    });
    this.child.on("message", (message: FromWorker) => this.onMessage(message));
    this.child.on("error", (error) => this.fail(new GradientWorkerError(`gradient worker ${rank}: ${error.message}`)));
    this.child.on("exit", (code, signal) => {
      if (!this.closing) this.fail(new GradientWorkerError(`gradient worker ${rank} exited (code ${code}, signal ${signal})`));
    });
  }

  private onMessage(message: FromWorker): void {
    if (message.type === "ready") {
      this.readyWaiter?.resolve({ fingerprint: message.fingerprint, backend: message.backend, device: message.device });
      this.readyWaiter = undefined;
    } else if (message.type === "result") {
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      waiter?.resolve(message);
    } else {
      this.fail(new GradientWorkerError(`gradient worker ${this.rank}: ${message.message}`));
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.readyWaiter?.reject(error);
    this.readyWaiter = undefined;
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }

  /**
   * Resolves once the message is written to the channel. A 5 MB message goes out in pieces from the event loop, so a
   * caller that starts a long synchronous computation right after send() would hold the rest of it back until that
   * computation ends, and the child would wait instead of working alongside.
   */
  private send(message: ToWorker): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.child.send(message, (error) => (error ? reject(new GradientWorkerError(`gradient worker ${this.rank}: ${error.message}`)) : resolve()));
    });
  }

  init(configPath: string): Promise<Identity> {
    const ready = new Promise<Identity>((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.send({ type: "init", configPath }).catch((error: Error) => this.fail(error));
    return ready;
  }

  /** `sent` resolves when the work is on its way (see {@link send}); `result` when the gradients are back. */
  work(
    id: number,
    weights: Record<WeightName, Float32Array>,
    batches: number[][],
    step?: number,
    probes?: Record<string, Float32Array>,
  ): { sent: Promise<void>; result: Promise<WorkerResult> } {
    if (this.failure) return { sent: Promise.reject(this.failure), result: Promise.reject(this.failure) };
    const result = new Promise<WorkerResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    const sent = this.send({ type: "work", id, weights, batches, ...(step === undefined ? {} : { step }), ...(probes ? { probes } : {}) });
    sent.catch((error: Error) => this.fail(error));
    return { sent, result };
  }

  close(): Promise<void> {
    this.closing = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.kill("SIGTERM");
    });
  }
}

/** The child processes of a data-parallel run (ranks 1 … workers − 1). */
export class GradientWorkerPool {
  private nextId = 0;

  private constructor(private readonly workers: GradientWorker[]) {}

  /**
   * Starts `count` children, each loading the same config and data; refuses to train if any child's training pairs or
   * backend differ from rank 0's, since averaged gradients over different data would be silently wrong.
   */
  static async start(count: number, configPath: string, expected: Identity, devices?: readonly string[]): Promise<GradientWorkerPool> {
    const workers = Array.from({ length: count }, (_, i) => new GradientWorker(i + 1));
    const pool = new GradientWorkerPool(workers);
    try {
      const identities = await Promise.all(workers.map((w) => w.init(configPath)));
      identities.forEach((id, i) => {
        if (id.fingerprint !== expected.fingerprint) {
          throw new GradientWorkerError(`gradient worker ${i + 1} built different training pairs (${id.fingerprint} ≠ ${expected.fingerprint})`);
        }
        if (id.backend !== expected.backend) {
          throw new GradientWorkerError(`gradient worker ${i + 1} runs on ${id.backend}, rank 0 on ${expected.backend}`);
        }
        const device = devices?.[i + 1];
        if (device !== undefined && id.device !== device) {
          throw new GradientWorkerError(`gradient worker ${i + 1} should see GPU ${device} but CUDA_VISIBLE_DEVICES is ${id.device ?? "unset"}`);
        }
      });
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Sends each child its micro-batches (by pair index) with the current weights. Resolves once every message is
   * written (so rank 0 can start its own share without starving the children) with the promise of every result.
   * `step` (the 0-based update) drives step-dependent loss weights such as the sparse objective's λ warm-up.
   */
  async dispatch(
    weights: Record<WeightName, Float32Array>,
    shares: number[][][],
    step?: number,
    probes?: Record<string, Float32Array>,
  ): Promise<{ results: Promise<WorkerResult[]> }> {
    if (shares.length !== this.workers.length) throw new Error(`${shares.length} shares for ${this.workers.length} workers`);
    const id = this.nextId++;
    const jobs = this.workers.map((w, i) => w.work(id, weights, shares[i] as number[][], step, probes));
    const results = Promise.all(jobs.map((job) => job.result));
    // Nobody awaits `results` if a send fails: keep that rejection from going unhandled.
    results.catch(() => {});
    await Promise.all(jobs.map((job) => job.sent));
    return { results };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}

/**
 * Weights & Biases logging of the trainer's metrics records, off unless `WANDB_API_KEY` is set.
 *
 * metrics.jsonl stays the record of a run; W&B is a view of it and never a reason to lose or stall one. So:
 *   - without a key (or with WANDB_MODE=disabled/offline) the sink is a no-op and @wandb/sdk is never loaded;
 *   - with one, the official client (@wandb/sdk, an optional dependency) runs in a child process (wandb-worker.ts,
 *     which says why), fed over IPC: `log` never blocks or throws, `finish` always resolves within a bounded time;
 *   - any failure (SDK not installed, bad key, server down, client crash, timeout) prints one warning line, then the
 *     sink goes quiet and training carries on.
 *
 * Environment: WANDB_API_KEY, WANDB_PROJECT (default "taesr"), WANDB_ENTITY (default: the key's user),
 * WANDB_BASE_URL (default https://api.wandb.ai, for a self-hosted server), WANDB_MODE.
 *
 * Each train/eval record becomes one W&B history row at the record's step, its numeric fields flattened under the
 * record type: `train/loss`, `train/lossByStep.6`, `train/lr`, `eval/byDepth.6.ndcg10`, ...
 *
 * @module
 */
import { fork, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { TrainConfig } from "./config.js";

export interface MetricsSink {
  /** False when W&B logging is off: `log` and `finish` do nothing. */
  readonly enabled: boolean;
  /** One metrics.jsonl record; fire and forget. */
  log(record: Record<string, unknown>): void;
  /** Closes the W&B run (exit code 0 = success); resolves, never rejects, at most `finishTimeoutMs` later. */
  finish(exitCode?: number): Promise<void>;
}

export interface MetricsSinkOptions {
  /** W&B run name (default: the config's name). */
  name?: string;
  /** Where the status and warning lines go (default: stderr, like the trainer's log). */
  log?: (line: string) => void;
  /** Give up on W&B when no run exists this long after the start (default 60 s); training never waits for it. */
  startTimeoutMs?: number;
  /** The longest `finish` waits for the client to flush and close the run (default 30 s). */
  finishTimeoutMs?: number;
  /** The module the client process imports (default "@wandb/sdk"; tests point it elsewhere). */
  sdk?: string;
}

/** trainer → client process: the first message. */
export interface WandbStart {
  type: "start";
  sdk: string;
  project: string;
  entity?: string;
  name: string;
  config: unknown;
  apiKey: string;
  baseUrl: string;
}
export type ToWandbWorker = WandbStart | { type: "log"; step: number; data: Record<string, number> } | { type: "finish"; code: number };
/** client process → trainer */
export type FromWandbWorker =
  | { type: "ready"; url: string }
  | { type: "failed"; reason: string; missing?: boolean }
  | { type: "sdk-error"; message: string }
  | { type: "finished" };

const DISABLED: MetricsSink = {
  enabled: false,
  log() {},
  finish: () => Promise.resolve(),
};

const WORKER_ENTRY = fileURLToPath(new URL("./wandb-worker.ts", import.meta.url));

/** The tsx loader, so the client process runs its TypeScript entry as the CLI runs the trainer (data-parallel.ts too). */
function tsxLoaderUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
}

/** A train or eval record as a W&B history row: numeric fields flattened under the record type; other records: none. */
export function toWandbRow(record: Record<string, unknown>): { step: number; data: Record<string, number> } | undefined {
  const { type, step } = record;
  if ((type !== "train" && type !== "eval") || typeof step !== "number") return undefined;
  const data: Record<string, number> = {};
  const add = (key: string, value: unknown): void => {
    // Non-finite numbers have no JSON form (a skipped update's NaN loss is in metrics.jsonl, flagged `skipped`).
    if (typeof value === "number") {
      if (Number.isFinite(value)) data[key] = value;
    } else if (typeof value === "boolean") {
      data[key] = value ? 1 : 0;
    } else if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) add(`${key}.${k}`, v);
    }
  };
  for (const [key, value] of Object.entries(record)) if (key !== "type" && key !== "step") add(`${type}/${key}`, value);
  return { step, data };
}

export function createMetricsSink(
  config: TrainConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
  options: MetricsSinkOptions = {},
): MetricsSink {
  const log = options.log ?? ((line: string) => process.stderr.write(`[taesr] ${line}\n`));
  const apiKey = env["WANDB_API_KEY"];
  if (!apiKey || env["WANDB_MODE"] === "disabled") return DISABLED;
  if (env["WANDB_MODE"] === "offline") {
    // The JS client has no offline store (it still contacts the server, then drops the records).
    log("W&B: WANDB_MODE=offline is not supported by the JS client; W&B logging is off (metrics.jsonl has every record)");
    return DISABLED;
  }
  return new WandbSink(
    {
      type: "start",
      sdk: options.sdk ?? "@wandb/sdk",
      project: env["WANDB_PROJECT"] || "taesr",
      ...(env["WANDB_ENTITY"] ? { entity: env["WANDB_ENTITY"] } : {}),
      name: options.name ?? config.name,
      config,
      apiKey,
      baseUrl: (env["WANDB_BASE_URL"] || "https://api.wandb.ai").replace(/\/+$/, ""),
    },
    log,
    options.startTimeoutMs ?? 60_000,
    options.finishTimeoutMs ?? 30_000,
  );
}

class WandbSink implements MetricsSink {
  readonly enabled = true;
  private child: ChildProcess | undefined;
  private state: "starting" | "ready" | "closed" = "starting";
  private warned = false;
  /** The SDK's first complaint before a run exists: the detail of the failure that usually follows. */
  private startError: string | undefined;
  private stderrTail = "";
  private startTimer: NodeJS.Timeout | undefined;
  private finishing: Promise<void> | undefined;
  private onFinished: (() => void) | undefined;

  constructor(
    private readonly start: WandbStart,
    private readonly print: (line: string) => void,
    startTimeoutMs: number,
    private readonly finishTimeoutMs: number,
  ) {
    try {
      const child = fork(WORKER_ENTRY, [], {
        execArgv: ["--import", tsxLoaderUrl()],
        // stdout is the CLI's JSON summary: the client gets none; stderr is kept for the warning if it dies early.
        stdio: ["ignore", "ignore", "pipe", "ipc"],
        serialization: "json",
      });
      this.child = child;
      child.on("message", (message: FromWandbWorker) => this.onMessage(message));
      child.on("error", (error) => this.fail(`the client process failed: ${error.message}`));
      child.on("exit", (code, signal) => this.onExit(code, signal));
      child.stderr?.on("data", (chunk: Buffer) => (this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000)));
      // Never what keeps the trainer's process alive: finish() holds a timer of its own while it waits.
      child.unref();
      child.channel?.unref();
      (child.stderr as Socket | null)?.unref();
      child.send(start, () => {});
    } catch (error) {
      this.fail(`cannot start the client process: ${(error as Error).message}`);
      return;
    }
    this.startTimer = setTimeout(
      () => this.fail(`no run after ${Math.round(startTimeoutMs / 1000)} s at ${start.baseUrl}`),
      startTimeoutMs,
    ).unref();
  }

  log(record: Record<string, unknown>): void {
    const child = this.child;
    if (this.state === "closed" || !child?.connected || this.finishing) return;
    const row = toWandbRow(record);
    if (!row || Object.keys(row.data).length === 0) return;
    // The callback swallows a send racing the client's exit (which onExit reports).
    child.send({ type: "log", step: row.step, data: row.data } satisfies ToWandbWorker, () => {});
  }

  finish(exitCode = 0): Promise<void> {
    this.finishing ??= (async () => {
      const child = this.child;
      if (this.state === "closed" || !child?.connected) return this.close();
      const finished = new Promise<"finished">((resolve) => (this.onFinished = () => resolve("finished")));
      let timer: NodeJS.Timeout | undefined;
      // A referenced timer: the process waits for the flush, but never longer than this.
      const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), this.finishTimeoutMs)));
      child.send({ type: "finish", code: exitCode } satisfies ToWandbWorker, () => {});
      const outcome = await Promise.race([finished, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        this.warn(`W&B: the run was not closed within ${Math.round(this.finishTimeoutMs / 1000)} s (${this.start.baseUrl}); gave up waiting, its last points may be missing`);
      }
      this.close();
    })();
    return this.finishing;
  }

  private onMessage(message: FromWandbWorker): void {
    if (message.type === "ready") {
      if (this.state !== "starting") return;
      this.state = "ready";
      clearTimeout(this.startTimer);
      this.print(`W&B: logging to ${message.url}`);
    } else if (message.type === "failed") {
      if (message.missing) {
        this.fail(`WANDB_API_KEY is set but ${this.start.sdk} is not installed (npm install -w training --include=optional)`, false);
      } else if (this.state === "starting") {
        const detail = this.startError && !message.reason.includes(this.startError) ? ` (${this.startError})` : "";
        const hint = /\(40[13]\)/.test(detail) ? "; check WANDB_API_KEY (and WANDB_ENTITY)" : "";
        this.fail(`cannot start a run at ${this.start.baseUrl}: ${message.reason}${detail}${hint}`);
      } else {
        this.fail(`the client failed: ${message.reason}`);
      }
    } else if (message.type === "sdk-error") {
      if (this.state === "starting") this.startError ??= message.message;
      // The client drops what it could not send and carries on: say so once.
      else this.warn(`W&B: sending failed (${message.message}); the W&B run may miss points, training continues (metrics.jsonl has every record)`);
    } else if (message.type === "finished") {
      this.onFinished?.();
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.state !== "closed" && !this.finishing) {
      const lastLine = this.stderrTail.trim().split("\n").filter(Boolean).pop();
      this.fail(`the client process exited (${signal ?? `code ${code}`})${lastLine ? `: ${lastLine.slice(0, 300)}` : ""}`);
    }
    // A client gone mid-finish has nothing more to flush.
    this.onFinished?.();
  }

  private warn(line: string): void {
    if (this.warned) return;
    this.warned = true;
    this.print(line);
  }

  private fail(reason: string, continuing = true): void {
    if (this.state === "closed") return;
    this.warn(`W&B: ${reason}; ${continuing ? "training continues without W&B" : "W&B logging is off"} (metrics.jsonl has every record)`);
    this.close();
  }

  private close(): void {
    this.state = "closed";
    clearTimeout(this.startTimer);
    const child = this.child;
    // SIGKILL: the SDK handles SIGTERM itself (by trying to flush, which can hang).
    if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    this.onFinished?.();
  }
}

/**
 * The process that runs the W&B client for wandb-logger.ts (forked with the tsx loader, like the gradient workers).
 *
 * @wandb/sdk 0.5 is kept out of the training process because of how it fails: a rejected run upsert is rethrown
 * inside a message listener (an uncaught exception, which would kill the trainer) and its run promise then never
 * settles; its retry timers and sockets are referenced, so a slow or dead server keeps a process alive; it installs
 * SIGINT/SIGTERM handlers; and it prints to stdout, where the CLI writes its JSON summary. Here all of that can only
 * end this process, which the trainer can always kill.
 *
 * Protocol (wandb-logger.ts): start → log* → finish, answered by ready | failed, sdk-error*, finished.
 *
 * @module
 */
import type { FromWandbWorker, ToWandbWorker, WandbStart } from "./wandb-logger.js";

/** The part of @wandb/sdk used here (typed locally: the package is an optional dependency). */
interface WandbRun {
  log(data: Record<string, unknown>, step?: number, commit?: boolean): void;
  finish(code?: number): Promise<void>;
  url(): string;
}
interface WandbSdk {
  init(opts: {
    project: string;
    entity?: string;
    name: string;
    config: unknown;
    settings: { apiKey: string; baseUrl: string; silent: boolean };
  }): Promise<WandbRun>;
}

function send(message: FromWandbWorker, then?: () => void): void {
  if (process.connected) process.send?.(message, undefined, {}, () => then?.());
  else then?.();
}

/** Reports the reason, then ends this process once the message is out. */
function exitWith(message: FromWandbWorker): void {
  send(message, () => process.exit(1));
}

function errorText(error: Error): string {
  // graphql-request appends the whole request and response as JSON: the status and server message come before it.
  const message = error.message.split(': {"response"')[0] ?? "";
  return error.name === "Error" ? message : `${error.name}: ${message}`;
}

function describe(args: readonly unknown[]): string {
  const text = args
    .map((a) => (a instanceof Error ? errorText(a) : typeof a === "string" ? a : String(a)))
    .join(" ");
  // One line: the trainer shows it inside its single warning.
  return text.replace(/\s+/g, " ").trim().slice(0, 300);
}

// The SDK reports with console: its errors go to the trainer (which decides what to show, once), the rest (retry
// notices, "View run at") is dropped.
console.error = console.warn = (...args: unknown[]) => send({ type: "sdk-error", message: describe(args) });
console.log = console.info = console.debug = () => {};
// Whatever the SDK throws asynchronously ends this process with a reason rather than a stack on the trainer's stderr.
process.on("uncaughtException", (error) => exitWith({ type: "failed", reason: describe([error]) }));
process.on("unhandledRejection", (error) => exitWith({ type: "failed", reason: describe([error]) }));

let run: WandbRun | undefined;
/** Messages that arrived before the run existed, replayed once it does. */
const early: ToWandbWorker[] = [];
/**
 * The history row being assembled: the trainer writes a train and an eval record at the same step, which W&B wants as
 * one row (the JS client's step counter only moves forward), so a row is sent when a later step starts or at finish.
 */
let row: { step: number; data: Record<string, number> } | undefined;
let finishing: Promise<void> | undefined;

function flushRow(): void {
  if (row && run) run.log(row.data, row.step);
  row = undefined;
}

function handle(message: ToWandbWorker): void {
  if (message.type === "start") {
    void start(message);
  } else if (!run) {
    early.push(message);
  } else if (message.type === "log") {
    if (row && row.step !== message.step) flushRow();
    row = { step: message.step, data: { ...row?.data, ...message.data } };
  } else if (message.type === "finish") {
    void finish(message.code);
  }
}

async function start(message: WandbStart): Promise<void> {
  let sdk: WandbSdk;
  try {
    const module = (await import(message.sdk)) as { default?: WandbSdk } & Partial<WandbSdk>;
    sdk = module.default ?? (module as WandbSdk);
  } catch (error) {
    const code = (error as { code?: string }).code;
    exitWith({ type: "failed", reason: describe([error]), missing: code === "ERR_MODULE_NOT_FOUND" });
    return;
  }
  let created: WandbRun;
  try {
    created = await sdk.init({
      project: message.project,
      ...(message.entity !== undefined ? { entity: message.entity } : {}),
      name: message.name,
      config: message.config,
      // silent: no "View run at" on stdout; the trainer logs the URL itself.
      settings: { apiKey: message.apiKey, baseUrl: message.baseUrl, silent: true },
    });
  } catch (error) {
    exitWith({ type: "failed", reason: describe([error]) });
    return;
  }
  run = created;
  send({ type: "ready", url: run.url() });
  for (const m of early.splice(0)) handle(m);
}

function finish(code: number): Promise<void> {
  finishing ??= (async () => {
    flushRow();
    await run?.finish(code);
    // Nothing else is owed: let the process end once the message is out (the trainer kills it otherwise).
    send({ type: "finished" }, () => {
      if (process.connected) process.disconnect();
    });
  })();
  return finishing;
}

process.on("message", (message: ToWandbWorker) => handle(message));
// The trainer went away without finishing (killed, crashed): close the run as failed, briefly, and leave.
process.on("disconnect", () => {
  if (finishing) return;
  setTimeout(() => process.exit(0), 10_000).unref();
  void (run ? finish(1) : Promise.resolve()).finally(() => process.exit(0));
});

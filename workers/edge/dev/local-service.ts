/**
 * Runs the edge worker locally under `wrangler dev` (workerd, embedded Durable Object store, local KV) and waits
 * until it answers `/v1/health`. Used by `npm start`, the end-to-end tests and the benchmarks, so all of them exercise
 * the same service.
 *
 * @example
 *   const service = await startLocalService({ port: 8787 });
 *   console.log(service.url);
 *   await service.stop();
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

export interface WranglerDevOptions {
  /** The wrangler config to run (default: the edge Worker's, wrangler.toml at the root). */
  configPath?: string;
  /** A GET path that answers 2xx once the Worker is ready (default /v1/health, which loads the model). */
  readyPath?: string;
  /** Port to listen on; a free one is picked when omitted. */
  port?: number;
  /** Where KV and Durable Object state persist; a fresh temporary directory when omitted. */
  persistTo?: string;
  /** `--var NAME:VALUE` bindings. */
  vars?: Record<string, string>;
  /** How long to wait for the first healthy answer (the model loads on the first request). */
  readyTimeoutMs?: number;
  /** Echo wrangler's output (useful for `npm start`, noisy in tests). */
  inheritOutput?: boolean;
}

export interface WranglerDev {
  url: string;
  persistTo: string;
  stop(): Promise<void>;
}

export interface LocalServiceOptions extends Omit<WranglerDevOptions, "configPath" | "readyPath"> {
  apiKey?: string;
  webhookSecret?: string;
}

export interface LocalService {
  url: string;
  apiKey: string;
  webhookSecret: string;
  persistTo: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The edge search service with fresh (or given) secrets; ready once `/v1/health` answers. */
export async function startLocalService(options: LocalServiceOptions = {}): Promise<LocalService> {
  const apiKey = options.apiKey ?? randomBytes(18).toString("base64url");
  const webhookSecret = options.webhookSecret ?? randomBytes(24).toString("base64url");
  const dev = await startWranglerDev({ ...options, vars: { ...options.vars, API_KEY: apiKey, WEBHOOK_SECRET: webhookSecret } });
  return { ...dev, apiKey, webhookSecret };
}

/** Attempts when the ports were picked here: another process may take a probed free port before wrangler binds it. */
const PORT_RACE_ATTEMPTS = 3;

/** Any Worker config under `wrangler dev --local`, offline, on loopback. */
export async function startWranglerDev(options: WranglerDevOptions = {}): Promise<WranglerDev> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startWranglerDevOnce(options);
    } catch (error) {
      const lostRace = options.port === undefined && /Address already in use/.test((error as Error).message);
      if (!lostRace || attempt >= PORT_RACE_ATTEMPTS) throw error;
    }
  }
}

async function startWranglerDevOnce(options: WranglerDevOptions): Promise<WranglerDev> {
  const port = options.port ?? (await freePort());
  const persistTo = options.persistTo ?? (await mkdtemp(path.join(tmpdir(), "taesr-edge-state-")));
  const vars = options.vars ?? {};

  const args = [
    path.join(repoRoot, "node_modules", "wrangler", "bin", "wrangler.js"),
    "dev",
    "--config", options.configPath ?? path.join(repoRoot, "wrangler.toml"),
    "--local",
    "--ip", "127.0.0.1",
    "--port", String(port),
    "--inspector-port", String(await freePort()),
    "--persist-to", persistTo,
    "--show-interactive-dev-session=false",
    "--log-level", options.inheritOutput ? "info" : "warn",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: process.env.CI ?? "" },
    stdio: ["ignore", options.inheritOutput ? "inherit" : "pipe", options.inheritOutput ? "inherit" : "pipe"],
    detached: false,
  });
  const output: string[] = [];
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));

  const url = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child);
  try {
    await waitUntilReady(`${url}${options.readyPath ?? "/v1/health"}`, child, options.readyTimeoutMs ?? 120_000);
  } catch (error) {
    await stop();
    const tail = output.join("").split("\n").slice(-40).join("\n");
    throw new Error(`${(error as Error).message}\n--- wrangler output (last lines) ---\n${tail}`);
  }
  return { url, persistTo, stop };
}

/** Polls `readyUrl` until it answers 2xx; fails early when `child` (named `what` in the error) exits first. */
export async function waitUntilReady(readyUrl: string, child: ChildProcess, timeoutMs: number, what = "wrangler dev"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProblem = "no answer yet";
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before the service was ready`);
    try {
      const response = await fetch(readyUrl, { signal: AbortSignal.timeout(30_000) });
      if (response.ok) return;
      lastProblem = `GET ${readyUrl} answered ${response.status}: ${(await response.text()).slice(0, 300)}`;
    } catch (error) {
      lastProblem = (error as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${readyUrl} was not ready within ${timeoutMs} ms (${lastProblem})`);
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the child has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Runs the GPU origin (workers/origin, `npm run origin`) as a child process on a free loopback port with a fresh
 * secret, and waits until its /ready answers. A separate process, not an import: the origin's native onnxruntime and
 * its CPU-heavy batches stay out of the process that drives wrangler, and a crash of one does not take the other down.
 *
 * @example
 *   const origin = await startLocalOrigin();
 *   await startLocalService({ vars: { ORIGIN_URL: origin.url, ORIGIN_SECRET: origin.secret } });
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { freePort, repoRoot, stopChild, waitUntilReady } from "./local-service.js";

export interface LocalOriginOptions {
  /** Port to listen on; a free one is picked when omitted. */
  port?: number;
  /** Bearer secret; a random one when omitted. */
  secret?: string;
  /** Extra `npm run origin` flags, e.g. ["--provider", "cpu"]. */
  args?: string[];
  readyTimeoutMs?: number;
}

export interface LocalOrigin {
  url: string;
  secret: string;
  /** The origin's /ready answer: model and execution provider. */
  ready: { model: { name: string; version: string; variant: string }; provider: string };
  stop(): Promise<void>;
}

export async function startLocalOrigin(options: LocalOriginOptions = {}): Promise<LocalOrigin> {
  const port = options.port ?? (await freePort());
  const secret = options.secret ?? randomBytes(24).toString("base64url");
  const child = spawn(
    process.execPath,
    [path.join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs"), path.join(repoRoot, "workers/origin/src/main.ts"), "--host", "127.0.0.1", "--port", String(port), ...(options.args ?? [])],
    // The secret goes by environment, not argv, so it does not show in `ps`.
    { cwd: repoRoot, env: { ...process.env, ORIGIN_SECRET: secret }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  child.stdout.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(`${url}/ready`, child, options.readyTimeoutMs ?? 60_000, "the origin");
  } catch (error) {
    await stopChild(child);
    const tail = output.join("").split("\n").slice(-20).join("\n");
    throw new Error(`${(error as Error).message}\n--- origin output (last lines) ---\n${tail}`);
  }
  const ready = (await (await fetch(`${url}/ready`)).json()) as LocalOrigin["ready"];
  return { url, secret, ready, stop: () => stopChild(child) };
}

/**
 * Runs one of the project's TypeScript CLIs (through tsx, as `npm run` does) to completion, for end-to-end tests of
 * their output and exit code.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { repoRoot } from "../../workers/edge/dev/local-service.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(script: string, args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs"), script, ...args], { cwd: repoRoot });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The JSON object a CLI prints as its last stdout line (the eval tools' result), or null when that line is not JSON. */
export function lastJsonLine(stdout: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(stdout.trim().split("\n").pop() ?? "");
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * `npm run train -- --config <file.json> [--resume] [--run-dir DIR] [--max-minutes N] [--export]`
 *
 * Relative --config / --run-dir paths are resolved against the directory npm was started from (INIT_CWD), so the
 * command behaves the same from the repository root (through a root script) and from training/.
 *
 * @module
 */
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { ConfigError } from "../train/config.js";
import { train } from "../train/trainer.js";

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

const program = new Command()
  .name("train")
  .description("Train a TAESR model (contrastive, deep-supervised, Matryoshka) and export its artifact")
  .requiredOption("-c, --config <file>", "training config JSON (see training/configs/)")
  .option("--resume", "continue from the newest checkpoint in the run dir", false)
  .option("--run-dir <dir>", "run directory (default training/runs/<config name>)")
  .option("--max-minutes <n>", "stop with a checkpoint after this much training time", positiveNumber)
  .option("--export", "export the newest checkpoint without training", false)
  .option("--no-progress", "no progress bar");

program.parse();
const opts = program.opts<{
  config: string;
  resume: boolean;
  runDir?: string;
  maxMinutes?: number;
  export: boolean;
  progress: boolean;
}>();

const base = process.env["INIT_CWD"] ?? process.cwd();
try {
  const result = await train({
    config: path.resolve(base, opts.config),
    ...(opts.runDir !== undefined ? { runDir: path.resolve(base, opts.runDir) } : {}),
    resume: opts.resume || opts.export,
    ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
    exportOnly: opts.export,
    progress: opts.progress,
  });
  process.stdout.write(
    JSON.stringify({
      runDir: result.runDir,
      step: result.step,
      totalSteps: result.totalSteps,
      stoppedBy: result.stoppedBy,
      tokens: result.tokens,
      trainSeconds: result.trainSeconds,
      lastLoss: result.lastLoss,
      validation: result.validation,
      exportDir: result.exportDir,
      finalParams: result.finalParamsPath,
    }) + "\n",
  );
} catch (err) {
  // Exit here rather than rethrow: the wasm backend's emscripten glue hooks uncaughtException and would print its
  // whole minified source around the error.
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`train failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

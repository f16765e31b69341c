/**
 * `npm run train -- --config <file.json> [--resume] [--run-dir DIR] [--max-minutes N] [--export]`
 * `npm run train -- --adapt <corpus dir> [--from model-artifacts/<name>@<version>] [--name NAME] [--steps N]
 *    [--hard-negatives bm25|dense] [--extend-vocab N] [--preset FILE] [--max-minutes N] [--run-dir DIR] [--resume]` — domain adaptation (train/adapt.ts): fine-tunes the base artifact
 *    (default: the bundled one) on a BEIR or JSONL corpus and exports <name>@<next minor> into model-artifacts/.
 *
 * Relative --config / --run-dir paths are resolved against the directory npm was started from (INIT_CWD), so the
 * command behaves the same from the repository root (through a root script) and from training/.
 *
 * @module
 */
import path from "node:path";
import { Command, Option } from "commander";
import { positiveInteger, positiveNumber } from "./options.js";
import { AdaptCorpusError } from "../data/adapt-corpus.js";
import { adapt, type AdaptResult } from "../train/adapt.js";
import { ConfigError } from "../train/config.js";
import { train, type TrainResult } from "../train/trainer.js";

const program = new Command()
  .name("train")
  .description("Train a TAESR model (contrastive, deep-supervised, Matryoshka) and export its artifact")
  .option("-c, --config <file>", "training config JSON (see training/configs/)")
  .option("--adapt <dir>", "domain adaptation: fine-tune the base artifact on this BEIR or JSONL corpus directory")
  .option("--from <artifact dir>", "--adapt: base artifact (default: the one model-artifacts/bundled.json names)")
  .option("--name <name>", "--adapt: artifact name (default: <base name without -small>-<corpus dir name>)")
  .option("--steps <n>", "--adapt: training steps (default: training/configs/adapt.json's)", positiveInteger)
  .addOption(
    new Option("--hard-negatives <ranker>", "--adapt: rank the corpus's hard negatives by BM25 or by the base artifact's dense embeddings (default: the preset's, bm25)").choices([
      "bm25",
      "dense",
    ]),
  )
  .option(
    "--max-length <pieces>",
    "--adapt: the adapted model's context in word pieces, documents read up to it (default: the base's; longer tiles the base's position table)",
    positiveInteger,
  )
  .option(
    "--extend-vocab <n>",
    "--adapt: append up to n of the corpus's frequent words the base vocabulary fragments, as whole-word pieces with rows started from GloVe",
    positiveInteger,
  )
  .option("--new-rows-first <n>", "--adapt with --extend-vocab: train only the added rows for the first n updates (then every weight)", positiveInteger)
  .option("--preset <file>", "--adapt: the preset the run's config is derived from (default: training/configs/adapt.json)")
  .option("--resume", "continue from the newest checkpoint in the run dir", false)
  .option("--run-dir <dir>", "run directory (default training/runs/<config name>)")
  .option("--max-minutes <n>", "stop with a checkpoint after this much training time", positiveNumber)
  .option("--export", "export the newest checkpoint without training", false)
  .option("--no-progress", "no progress bar");

program.parse();
const opts = program.opts<{
  config?: string;
  adapt?: string;
  from?: string;
  name?: string;
  steps?: number;
  hardNegatives?: "bm25" | "dense";
  maxLength?: number;
  extendVocab?: number;
  newRowsFirst?: number;
  preset?: string;
  resume: boolean;
  runDir?: string;
  maxMinutes?: number;
  export: boolean;
  progress: boolean;
}>();

const base = process.env["INIT_CWD"] ?? process.cwd();
if ((opts.config === undefined) === (opts.adapt === undefined)) program.error("error: pass exactly one of --config <file> or --adapt <dir>");
if (opts.adapt === undefined && (opts.from ?? opts.name ?? opts.steps ?? opts.hardNegatives ?? opts.maxLength ?? opts.extendVocab ?? opts.newRowsFirst ?? opts.preset) !== undefined) {
  program.error("error: --from, --name, --steps, --hard-negatives, --max-length, --extend-vocab, --new-rows-first and --preset go with --adapt");
}
if (opts.adapt !== undefined && opts.export) program.error("error: --export goes with --config (an adaptation exports when it finishes)");
/** The stdout summary of a run: the result without the per-update loss history (tests and curves read that). */
function runSummary(result: TrainResult & Partial<Pick<AdaptResult, "configPath" | "artifact">>): Record<string, unknown> {
  return {
    runDir: result.runDir,
    ...(result.configPath !== undefined ? { config: result.configPath } : {}),
    step: result.step,
    totalSteps: result.totalSteps,
    stoppedBy: result.stoppedBy,
    tokens: result.tokens,
    trainSeconds: result.trainSeconds,
    lastLoss: result.lastLoss,
    validation: result.validation,
    ...(result.artifact !== undefined ? { artifact: result.artifact } : {}),
    exportDir: result.exportDir,
    finalParams: result.finalParamsPath,
  };
}

try {
  // One summary JSON line on stdout either way (progress and logs go to stderr).
  const result =
    opts.adapt !== undefined
      ? await adapt({
          corpusDir: path.resolve(base, opts.adapt),
          ...(opts.from !== undefined ? { from: path.resolve(base, opts.from) } : {}),
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
          ...(opts.hardNegatives !== undefined ? { hardNegatives: opts.hardNegatives } : {}),
          ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}),
          ...(opts.extendVocab !== undefined ? { extendVocab: opts.extendVocab } : {}),
          ...(opts.newRowsFirst !== undefined ? { newRowsFirst: opts.newRowsFirst } : {}),
          ...(opts.preset !== undefined ? { preset: path.resolve(base, opts.preset) } : {}),
          ...(opts.runDir !== undefined ? { runDir: path.resolve(base, opts.runDir) } : {}),
          ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
          resume: opts.resume,
          progress: opts.progress,
        })
      : await train({
          config: path.resolve(base, opts.config!),
          ...(opts.runDir !== undefined ? { runDir: path.resolve(base, opts.runDir) } : {}),
          resume: opts.resume || opts.export,
          ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
          exportOnly: opts.export,
          progress: opts.progress,
        });
  process.stdout.write(JSON.stringify(runSummary(result)) + "\n");
} catch (err) {
  // Exit here rather than rethrow: the wasm backend's emscripten glue hooks uncaughtException and would print its
  // whole minified source around the error.
  if (err instanceof ConfigError || err instanceof AdaptCorpusError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`train failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

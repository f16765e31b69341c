/**
 * `npm run drift:baseline`: the drift baseline of a model artifact (src/model/drift.ts): the statistics of a reference
 * query set, embedded exactly as the edge Worker embeds a default search (the bundled variant, int8 unless the artifact
 * is bundled otherwise; normalised text, one query at a time, 128-d, depth auto routed for a hybrid search, early
 * exit on), and the score threshold calibrated on those queries.
 *
 *   npm run drift:baseline -- --model model-artifacts/<name>@<version> --queries ../shared/datasets/scifact/queries.jsonl
 *                             [--qrels ../shared/datasets/scifact/qrels/train.tsv] [--minimum 200] [--replicates 2000]
 *                             [--false-alarm-rate 0.01] [--seed 5] [--variant int8] [--dims 128]
 *                             [--compare <queries.jsonl> [--compare-qrels <tsv>]] [--write]
 *
 * --qrels keeps only the queries that file judges (a split), and names the split in the baseline; --write refuses the
 * test split (it stays unseen by anything shipped). --compare scores another query set, taken whole as one window,
 * against the new baseline: a check of what the threshold catches. --write stores the baseline in the manifest
 * (`drift`, outside the sha256 list) and adds a CHANGELOG line. Prints progress on stderr, one JSON object on stdout.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseQrels, parseQueries, type BeirQuery } from "../src/eval/beir.js";
import { assessDrift, baselineFromFeatures, driftAccumulator, edgeVariantFor, MODEL_VARIANTS, parseManifest, queryFeatures, type ModelVariant, type TaesrEncoder } from "../src/model/index.js";
import { normalize } from "../src/tokenizer/normalize.js";
import type { WordPieceTokenizer } from "../src/tokenizer/index.js";
import { editManifest, manifestTextWithMember } from "../training/src/export/manifest-edit.js";
import { positiveInteger } from "./cli-options.js";
import { defaultArtifactDir } from "./default-artifact.js";
import { assertSplitTunable } from "./eval/fusion-tuning.js";
import { openModel } from "./eval/model.js";
import { progressBar } from "./progress.js";

/** How the Worker embeds a search that names no dims, depth or mode (workers/edge/src/schemas.ts defaults). */
const SEARCH_DEFAULTS = { depth: "auto", ranking: "hybrid" } as const;

function rate(value: string): number {
  const parsed = Number(value);
  if (!(parsed > 0 && parsed < 1)) throw new InvalidArgumentError(`expected a number between 0 and 1, got "${value}"`);
  return parsed;
}

const program = new Command()
  .name("npm run drift:baseline --")
  .description("Compute a model artifact's drift baseline from a reference query set (and optionally store it in its manifest).")
  .option("--model <dir>", "artifact directory (default: the bundled one, model-artifacts/bundled.json)")
  .requiredOption("--queries <file>", "queries in BEIR layout: JSON lines {_id, text}")
  .option("--qrels <file>", "keep only the queries this qrels file judges (e.g. qrels/train.tsv)")
  .option("--minimum <n>", "minimum window before a verdict; the threshold is calibrated at this sample size", positiveInteger, 200)
  .option("--replicates <n>", "random no-drift splits the threshold is calibrated on", positiveInteger, 2000)
  .option("--false-alarm-rate <p>", "share of no-drift samples of --minimum queries allowed above the threshold", rate, 0.01)
  .option("--seed <n>", "seed of the calibration's splits", positiveInteger, 5)
  .addOption(new Option("--variant <variant>", "graphs to embed with (default: the ones the Worker runs the artifact in: int8w where it has them, else int8)").choices([...MODEL_VARIANTS]))
  .option("--dims <n>", "embedding width the Worker searches with (its default: 128)", positiveInteger, 128)
  .option("--compare <file>", "another query set to score against the baseline, as one window")
  .option("--compare-qrels <file>", "with --compare: keep only the queries this qrels file judges")
  .option("--write", "store the baseline in the artifact's manifest (drift) and add a CHANGELOG line")
  .parse();

interface Options {
  model?: string;
  queries: string;
  qrels?: string;
  minimum: number;
  replicates: number;
  falseAlarmRate: number;
  seed: number;
  variant?: ModelVariant;
  dims: number;
  compare?: string;
  compareQrels?: string;
  write?: boolean;
}

async function loadQueries(file: string, qrelsFile: string | undefined): Promise<{ queries: BeirQuery[]; split?: string }> {
  const read = (f: string) => readFile(f, "utf8").catch(() => Promise.reject(new Error(`cannot read ${f}`)));
  let queries = parseQueries(await read(file));
  if (!qrelsFile) return { queries };
  const judged = parseQrels(await read(qrelsFile));
  queries = queries.filter((query) => judged.has(query.id));
  if (queries.length === 0) throw new Error(`no query in ${file} is judged in ${qrelsFile}`);
  return { queries, split: path.basename(qrelsFile).replace(/\.tsv$/, "") };
}

/** Each query's features, embedded as the Worker embeds a default search. */
async function featuresOf(encoder: TaesrEncoder, tokenizer: WordPieceTokenizer, queries: readonly BeirQuery[], dims: number, label: string): Promise<Float64Array[]> {
  const bar = progressBar(label, queries.length, "queries");
  const features: Float64Array[] = [];
  for (const query of queries) {
    // The Worker embeds (and tokenises) the normalised text; one at a time, since a batch runs at its deepest route.
    const text = normalize(query.text);
    const { embeddings } = await encoder.embed([text], { dims, ...SEARCH_DEFAULTS });
    features.push(queryFeatures(embeddings[0]!, tokenizer.tokenize(text)));
    bar.increment();
  }
  bar.stop();
  return features;
}

async function main(): Promise<void> {
  const options = program.opts<Options>();
  const modelDir = options.model ?? (await defaultArtifactDir());
  if (options.write && options.qrels) assertSplitTunable(path.basename(options.qrels).replace(/\.tsv$/, ""));
  const { queries, split } = await loadQueries(options.queries, options.qrels);
  const variant = options.variant ?? edgeVariantFor(parseManifest(await readFile(path.join(modelDir, "manifest.json"), "utf8")));
  const model = await openModel(modelDir, [variant]);
  try {
    if (!model.manifest.architecture.matryoshkaDims.includes(options.dims)) {
      throw new Error(`--dims ${options.dims}: ${model.label} produces ${model.manifest.architecture.matryoshkaDims.join(", ")}`);
    }
    const encoder = await model.encoder(variant);
    const features = await featuresOf(encoder, model.tokenizer, queries, options.dims, "embedding baseline queries");
    console.error(`calibrating: ${options.replicates} splits of ${queries.length} queries into ${options.minimum} live + the rest …`);
    const baseline = baselineFromFeatures(features, {
      embedding: { variant, dims: options.dims, ...SEARCH_DEFAULTS },
      source: {
        dataset: path.basename(path.dirname(path.resolve(options.queries))),
        file: path.basename(options.queries),
        ...(split ? { split } : {}),
        queries: queries.length,
      },
      date: new Date().toISOString().slice(0, 10),
      calibration: { sampleSize: options.minimum, replicates: options.replicates, falseAlarmRate: options.falseAlarmRate, seed: options.seed },
    });

    let compared: Record<string, unknown> | undefined;
    if (options.compare) {
      const other = await loadQueries(options.compare, options.compareQrels);
      const window = driftAccumulator(options.dims);
      for (const f of await featuresOf(encoder, model.tokenizer, other.queries, options.dims, "embedding compared queries")) window.add(f);
      compared = { file: options.compare, ...(other.split ? { split: other.split } : {}), ...assessDrift(window, baseline) };
    }

    const { mean: _mean, std: _std, ...summary } = baseline;
    let written: Record<string, unknown> | undefined;
    if (options.write) {
      const edit = await editManifest(
        modelDir,
        "storing the drift baseline",
        (text) => manifestTextWithMember(text, "drift", baseline),
        (before) =>
          `- drift baseline: ${before.name}@${before.version}, ${baseline.date} — ${baseline.count} ${baseline.source.dataset}` +
          `${baseline.source.split ? ` ${baseline.source.split}` : ""} queries (${baseline.embedding.variant}, ${baseline.embedding.dims}-d, depth auto ` +
          `routed for hybrid search); score threshold ${baseline.threshold} at ≥ ${baseline.minimumCount} queries, exceeded by ` +
          `${baseline.falseAlarmRate * 100} % of ${options.replicates} no-drift samples (\`npm run drift:baseline -- ${process.argv.slice(2).join(" ")}\`)`,
      );
      written = { manifest: path.relative(process.cwd(), edit.manifest), changelog: edit.changelog && path.relative(process.cwd(), edit.changelog) };
    }
    console.log(JSON.stringify({ model: model.label, baseline: summary, ...(compared ? { compared } : {}), ...(written ? { written } : {}) }, null, 2));
  } finally {
    await model.release();
  }
}

main().catch((error: unknown) => {
  console.error(`drift:baseline failed: ${(error as Error).message}`);
  process.exit(1);
});

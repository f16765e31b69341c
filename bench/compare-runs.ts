/**
 * `npm run eval:compare`: is run B better than run A by more than the noise? Query by query over one dataset split.
 *
 *   npm run eval:compare -- --dataset ../shared/datasets/scifact [--split test] [--held-out-of <model dir> …]
 *                           [--by-fragmentation <model dir | tokenizer.json> [--groups 3]] [--out <file>] <runA> <runB>
 *
 * The runs are TREC run files of the same queries (`npm run eval -- … --run-file <file>`, or any trec_eval input).
 * Prints NDCG@10, MRR@10 and recall@100 of each, the mean per-query difference B − A with its paired standard error,
 * and how many queries NDCG@10 moved up and down, as one JSON object last on stdout (and in --out); a line per metric
 * goes to stderr. A judged query a run does not rank scores 0 for it (counted in `missing`).
 *
 * --held-out-of: on the train split of the dataset a model was adapted to with its train qrels, compare only the train
 * queries that model held out of training (manifest adaptation.heldOutQueries) — the set its tuning tools choose on,
 * where it has not memorised the answers. Give it once per adapted model compared; on any other split or dataset it
 * changes nothing.
 *
 * --by-fragmentation: the comparison again within groups of queries (terciles by default) ordered by how fragmented
 * their content words are under that model's tokenizer (bench/eval/run-comparison.ts fragmentedShare: the share of
 * words of ≥ 4 characters cut into ≥ 3 pieces) — where a dense list loses to BM25, and whether a larger vocabulary
 * closes that gap. Give both runs' comparison one fixed tokenizer, so the groups hold the same queries.
 */
import { Command } from "commander";
import { stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BeirQuery } from "../src/eval/beir.js";
import { untrainedQueries, type AdaptationFacts } from "../src/model/index.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../src/tokenizer/index.js";
import { positiveInteger } from "./cli-options.js";
import { loadBeirDataset, readText } from "./eval/dataset.js";
import { COMPARED_METRICS, compareRuns, fragmentedShare, groupByQuantile, parseRunFile, type MetricComparison, type Run, type RunComparison } from "./eval/run-comparison.js";

const program = new Command()
  .name("npm run eval:compare --")
  .description("Compare two TREC runs of the same queries: per-metric mean difference (B − A) with its paired standard error.")
  .argument("<runA>", "the baseline run (TREC format: qid Q0 docid rank score tag)")
  .argument("<runB>", "the run compared against it")
  .requiredOption("--dataset <dir>", "the BEIR folder the runs rank (its qrels/<split>.tsv judges them)")
  .option("--split <name>", "qrels split", "test")
  .option("--held-out-of <dir>", "an adapted model's artifact: keep only the train queries it held out (repeat for each model)", (value: string, previous: string[] = []) => [...previous, value])
  .option("--by-fragmentation <model dir | tokenizer.json>", "also compare within groups of queries ordered by how fragmented their words are under this tokenizer")
  .option("--groups <n>", "how many groups --by-fragmentation makes", positiveInteger, 3)
  .option("--out <file>", "also write the JSON result here")
  .parse();

const options = program.opts<{ dataset: string; split: string; heldOutOf?: string[]; byFragmentation?: string; groups: number; out?: string }>();
const [runAFile, runBFile] = program.args as [string, string];

async function readRun(file: string): Promise<Run> {
  return parseRunFile(await readText(file, "the run"), file);
}

async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readText(file, what);
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON`);
  }
}

/** An artifact's manifest.json as a plain object: the adaptation record and the tokenizer's file name are read from it. */
async function manifestOf(dir: string): Promise<AdaptationFacts & { tokenizer?: unknown }> {
  const file = path.join(dir, "manifest.json");
  const manifest = await readJson(file, "the model's manifest");
  if (typeof manifest !== "object" || manifest === null) throw new Error(`${file} is not a manifest object`);
  return manifest as AdaptationFacts & { tokenizer?: unknown };
}

/** A tokenizer from its JSON file, or from the file an artifact directory's manifest names. */
async function loadTokenizer(where: string): Promise<WordPieceTokenizer> {
  let file = where;
  if ((await stat(where).catch(() => undefined))?.isDirectory()) {
    const { tokenizer } = await manifestOf(where);
    if (typeof tokenizer !== "string") throw new Error(`${path.join(where, "manifest.json")} names no tokenizer file`);
    file = path.join(where, tokenizer);
  }
  return WordPieceTokenizer.fromJSON((await readJson(file, "the tokenizer")) as TokenizerJSON);
}

/** "A 0.5154  B 0.5077  B − A -0.0078 (paired SE 0.0076)": one metric of a comparison, for the stderr lines. */
function sideBySide(m: MetricComparison): string {
  return `A ${m.a.toFixed(4)}  B ${m.b.toFixed(4)}  B − A ${m.diff >= 0 ? "+" : ""}${m.diff.toFixed(4)} (paired SE ${m.paired_se.toFixed(4)})`;
}

async function main(): Promise<void> {
  const dataset = await loadBeirDataset(options.dataset, options.split);
  let queries: readonly BeirQuery[] = dataset.queries;
  const notes: string[] = [];
  for (const dir of options.heldOutOf ?? []) {
    const kept = untrainedQueries(queries, await manifestOf(dir), dataset);
    queries = kept.queries;
    if (kept.note) notes.push(`${path.basename(path.resolve(dir))}: ${kept.note}`);
  }
  const [runA, runB] = [await readRun(runAFile), await readRun(runBFile)];
  const names = { a: runAFile, b: runBFile };
  const comparison = compareRuns(runA, runB, queries.map((q) => q.id), dataset.qrels, names);
  let byFragmentation: { tokenizer: string; groups: Array<{ fragmented_share: string } & RunComparison> } | undefined;
  if (options.byFragmentation !== undefined) {
    const tokenizer = await loadTokenizer(options.byFragmentation);
    const shares = new Map(queries.map((q) => [q.id, fragmentedShare(q.text, tokenizer)]));
    byFragmentation = {
      tokenizer: options.byFragmentation,
      groups: groupByQuantile(shares, options.groups).map((group) => ({ fragmented_share: group.range, ...compareRuns(runA, runB, group.ids, dataset.qrels, names) })),
    };
  }
  const result = {
    dataset: dataset.name,
    split: dataset.split,
    a: runAFile,
    b: runBFile,
    ...(notes.length ? { query_set: notes } : {}),
    ...comparison,
    ...(byFragmentation ? { by_fragmentation: byFragmentation } : {}),
  };

  for (const note of notes) console.error(`queries: ${note}`);
  for (const metric of COMPARED_METRICS) {
    console.error(`${metric.padEnd(10)} ${sideBySide(comparison.metrics[metric])}`);
  }
  console.error(`${comparison.queries} queries: NDCG@10 higher in B for ${comparison.better}, lower for ${comparison.worse}`);
  for (const group of byFragmentation?.groups ?? []) {
    console.error(`fragmented share ${group.fragmented_share} (${group.queries} queries): NDCG@10 ${sideBySide(group.metrics["ndcg@10"])}`);
  }
  if (options.out) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval:compare failed: ${(error as Error).message}`);
  process.exit(1);
});

/**
 * `npm run eval:compare`: is run B better than run A by more than the noise? Query by query over one dataset split.
 *
 *   npm run eval:compare -- --dataset ../shared/datasets/scifact [--split test] [--held-out-of <model dir> …]
 *                           [--out <file>] <runA> <runB>
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
 */
import { Command } from "commander";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { untrainedQueries, type AdaptationFacts } from "../src/model/index.js";
import { loadBeirDataset } from "./eval/dataset.js";
import { COMPARED_METRICS, compareRuns, parseRunFile, type Run } from "./eval/run-comparison.js";

const program = new Command()
  .name("npm run eval:compare --")
  .description("Compare two TREC runs of the same queries: per-metric mean difference (B − A) with its paired standard error.")
  .argument("<runA>", "the baseline run (TREC format: qid Q0 docid rank score tag)")
  .argument("<runB>", "the run compared against it")
  .requiredOption("--dataset <dir>", "the BEIR folder the runs rank (its qrels/<split>.tsv judges them)")
  .option("--split <name>", "qrels split", "test")
  .option("--held-out-of <dir>", "an adapted model's artifact: keep only the train queries it held out (repeat for each model)", (value: string, previous: string[] = []) => [...previous, value])
  .option("--out <file>", "also write the JSON result here")
  .parse();

const options = program.opts<{ dataset: string; split: string; heldOutOf?: string[]; out?: string }>();
const [runAFile, runBFile] = program.args as [string, string];

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch {
    throw new Error(`cannot read ${what} at ${file}`);
  }
}

async function readRun(file: string): Promise<Run> {
  return parseRunFile(await readText(file, "the run"), file);
}

async function adaptationFacts(dir: string): Promise<AdaptationFacts> {
  const file = path.join(dir, "manifest.json");
  let manifest: unknown;
  try {
    manifest = JSON.parse(await readText(file, "the model's manifest"));
  } catch (error) {
    throw error instanceof SyntaxError ? new Error(`${file} is not valid JSON`) : error;
  }
  if (typeof manifest !== "object" || manifest === null) throw new Error(`${file} is not a manifest object`);
  return manifest as AdaptationFacts;
}

async function main(): Promise<void> {
  const dataset = await loadBeirDataset(options.dataset, options.split);
  let queries: readonly { id: string }[] = dataset.queries;
  const notes: string[] = [];
  for (const dir of options.heldOutOf ?? []) {
    const kept = untrainedQueries(queries, await adaptationFacts(dir), dataset);
    queries = kept.queries;
    if (kept.note) notes.push(`${path.basename(path.resolve(dir))}: ${kept.note}`);
  }
  const comparison = compareRuns(await readRun(runAFile), await readRun(runBFile), queries.map((q) => q.id), dataset.qrels, { a: runAFile, b: runBFile });
  const result = { dataset: dataset.name, split: dataset.split, a: runAFile, b: runBFile, ...(notes.length ? { query_set: notes } : {}), ...comparison };

  for (const note of notes) console.error(`queries: ${note}`);
  for (const metric of COMPARED_METRICS) {
    const m = comparison.metrics[metric];
    console.error(`${metric.padEnd(10)} A ${m.a.toFixed(4)}  B ${m.b.toFixed(4)}  B − A ${m.diff >= 0 ? "+" : ""}${m.diff.toFixed(4)} (paired SE ${m.paired_se.toFixed(4)})`);
  }
  console.error(`${comparison.queries} queries: NDCG@10 higher in B for ${comparison.better}, lower for ${comparison.worse}`);
  if (options.out) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval:compare failed: ${(error as Error).message}`);
  process.exit(1);
});

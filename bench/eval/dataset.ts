/**
 * A BEIR dataset as the evaluation uses it: the corpus, the judged queries of one split (those with at least one
 * relevant document — trec_eval skips the others, and so do we), and their judgements. Node-side file reading over the
 * platform-neutral parsers of src/eval/beir.ts, with errors that name the file that is missing.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseCorpus, parseQrels, parseQueries, type BeirDocument, type BeirQuery } from "../../src/eval/beir.js";
import type { Judgements } from "../../src/eval/metrics.js";

export interface EvalDataset {
  /** The folder's name (e.g. "scifact"), as reports show it. */
  name: string;
  dir: string;
  split: string;
  corpus: BeirDocument[];
  /** Judged queries only, in queries.jsonl order, cut to `limitQueries` when asked. */
  queries: BeirQuery[];
  qrels: Map<string, Map<string, number>>;
}

/** A file's text, or an error that names what was missing and where. */
export async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch {
    throw new Error(`cannot read ${what} at ${file}`);
  }
}

export async function loadBeirDataset(dir: string, split: string, options: { limitQueries?: number } = {}): Promise<EvalDataset> {
  const corpus = parseCorpus(await readText(path.join(dir, "corpus.jsonl"), "the corpus"));
  const queries = parseQueries(await readText(path.join(dir, "queries.jsonl"), "the queries"));
  const qrels = parseQrels(await readText(path.join(dir, "qrels", `${split}.tsv`), `the ${split} qrels`));
  if (corpus.length === 0) throw new Error(`${path.join(dir, "corpus.jsonl")} holds no documents`);
  let judged = queries.filter((query) => [...(qrels.get(query.id)?.values() ?? [])].some((gain) => gain > 0));
  if (options.limitQueries !== undefined) judged = judged.slice(0, options.limitQueries);
  if (judged.length === 0) throw new Error(`no query in queries.jsonl has a relevant document in qrels/${split}.tsv`);
  return { name: path.basename(path.resolve(dir)), dir, split, corpus, queries: judged, qrels };
}

/** The judgements of a judged query (present by construction of {@link EvalDataset.queries}). */
export function judgementsOf(dataset: EvalDataset, queryId: string): Judgements {
  return dataset.qrels.get(queryId) ?? new Map();
}

/**
 * A user's corpus for domain adaptation (`npm run train -- --adapt <dir>`), read into {@link AdaptRecord}s for the
 * "adapt" pair source (pairs.ts adaptPairs: title → text, up to two sentence → rest, train query → text).
 *
 * Two layouts:
 * - BEIR: `corpus.jsonl` ({_id, title, text}), and optionally `queries.jsonl` ({_id, text}) with `qrels/train.tsv`.
 *   Only the TRAIN qrels are read, and only their pairs with score > 0: test and dev qrels are what a model is judged
 *   on, so this module never opens them (a model tuned on them would report inflated figures).
 * - A directory holding one JSONL file (any name but queries.jsonl) of {id or _id, title?, text}.
 *
 * Errors name the directory, the file and the line, so a user can fix their corpus without reading this code.
 *
 * @module
 */
import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { parseQrels } from "../../../src/eval/beir.js";
import type { AdaptQuery, AdaptRecord } from "./pairs.js";

/** The only qrels file domain adaptation may read (relative to the corpus directory). */
export const TRAIN_QRELS = "qrels/train.tsv";
const BEIR_CORPUS = "corpus.jsonl";
const BEIR_QUERIES = "queries.jsonl";

export interface TrainQrelsInfo {
  file: typeof TRAIN_QRELS;
  /** Distinct train queries with at least one positive (score > 0) judgement on a document of the corpus. */
  queries: number;
  /** (query, document) positives attached to documents. */
  pairs: number;
  /** Judgements with score ≤ 0 (not relevant: never used as positives). */
  nonPositive: number;
  /** Positive judgements whose query is not in queries.jsonl or whose document is not in the corpus (skipped). */
  unresolved: number;
}

export interface AdaptCorpusInfo {
  /** Absolute directory. */
  dir: string;
  /** The directory's base name (names the adapted artifact and is recorded in its manifest). */
  name: string;
  layout: "beir" | "jsonl";
  /** The corpus file, relative to `dir`. */
  corpusFile: string;
  documents: number;
  /** Records whose id repeats an earlier one (the first is kept: qrels could not tell them apart). */
  duplicateIds: number;
  /** Present when the corpus ships qrels/train.tsv. */
  trainQrels?: TrainQrelsInfo;
}

export interface AdaptCorpus {
  info: AdaptCorpusInfo;
  records: AdaptRecord[];
}

/** Thrown for a corpus that cannot be used; the message says which file and line, and what was expected. */
export class AdaptCorpusError extends Error {
  override name = "AdaptCorpusError";
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Non-blank lines of a text file with their 1-based line numbers, parsed as JSON objects. */
async function* jsonObjects(file: string, display: string): AsyncGenerator<{ record: Record<string, unknown>; line: number }> {
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      if (text.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new AdaptCorpusError(`${display}:${line}: invalid JSON (${(err as Error).message})`);
      }
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new AdaptCorpusError(`${display}:${line}: expected a JSON object, got ${Array.isArray(value) ? "an array" : typeof value}`);
      }
      yield { record: value as Record<string, unknown>, line };
    }
  } finally {
    lines.close();
  }
}

/** `_id` (BEIR) or `id`, as a string; numbers are accepted since many exports write numeric ids. */
function recordId(record: Record<string, unknown>, where: string): string {
  for (const key of ["_id", "id"]) {
    const v = record[key];
    if (typeof v === "string" && v !== "") return v;
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
  }
  throw new AdaptCorpusError(`${where}: no document id (a non-empty "_id" or "id" string)`);
}

function recordText(record: Record<string, unknown>, field: string, where: string, required: boolean): string {
  const v = record[field];
  if (typeof v === "string") return v;
  if (v === undefined || v === null) {
    if (!required) return "";
    throw new AdaptCorpusError(`${where}: no "${field}" field (a string is required)`);
  }
  throw new AdaptCorpusError(`${where}: "${field}" must be a string, got ${typeof v}`);
}

/** Which file holds the documents, and in which layout. */
export async function locateCorpus(dir: string): Promise<{ layout: "beir" | "jsonl"; corpusFile: string }> {
  let s;
  try {
    s = await stat(dir);
  } catch {
    throw new AdaptCorpusError(`adapt corpus directory not found: ${dir}`);
  }
  if (!s.isDirectory()) throw new AdaptCorpusError(`adapt corpus ${dir} is not a directory (pass the directory that holds the JSONL file)`);
  if (await isFile(path.join(dir, BEIR_CORPUS))) return { layout: "beir", corpusFile: BEIR_CORPUS };
  const candidates = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && e.name.endsWith(".jsonl") && e.name !== BEIR_QUERIES)
    .map((e) => e.name)
    .sort();
  if (candidates.length === 0) {
    throw new AdaptCorpusError(
      `no corpus file in ${dir}: expected ${BEIR_CORPUS} (BEIR layout: {_id, title, text}) or one *.jsonl file of {id, title?, text}`,
    );
  }
  if (candidates.length > 1) {
    throw new AdaptCorpusError(`${dir} holds several JSONL files (${candidates.join(", ")}): expected ${BEIR_CORPUS} or exactly one *.jsonl corpus file`);
  }
  return { layout: "jsonl", corpusFile: candidates[0] as string };
}

/** The train queries (id and text) with a positive judgement, grouped by document id. */
async function readTrainQueries(
  dir: string,
  docIds: ReadonlySet<string>,
): Promise<{ byDoc: Map<string, AdaptQuery[]>; info: TrainQrelsInfo } | undefined> {
  const qrelsFile = path.join(dir, ...TRAIN_QRELS.split("/"));
  if (!(await isFile(qrelsFile))) return undefined;
  const queriesFile = path.join(dir, BEIR_QUERIES);
  if (!(await isFile(queriesFile))) {
    throw new AdaptCorpusError(`${qrelsFile} exists but ${queriesFile} does not: the train qrels need the query texts`);
  }
  let qrels: Map<string, Map<string, number>>;
  try {
    qrels = parseQrels(await readFile(qrelsFile, "utf8"));
  } catch (err) {
    throw new AdaptCorpusError(`${qrelsFile}: ${(err as Error).message}`);
  }
  // Only the texts of queries the train qrels judge are kept: queries.jsonl also holds the test queries.
  const wanted = new Set(qrels.keys());
  const texts = new Map<string, string>();
  for await (const { record, line } of jsonObjects(queriesFile, queriesFile)) {
    const where = `${queriesFile}:${line}`;
    const id = recordId(record, where);
    if (wanted.has(id)) texts.set(id, recordText(record, "text", where, true));
  }
  const byDoc = new Map<string, AdaptQuery[]>();
  const info: TrainQrelsInfo = { file: TRAIN_QRELS, queries: 0, pairs: 0, nonPositive: 0, unresolved: 0 };
  for (const [queryId, judgements] of qrels) {
    let used = false;
    for (const [docId, score] of judgements) {
      if (!(score > 0)) {
        info.nonPositive++;
        continue;
      }
      const text = texts.get(queryId);
      if (text === undefined || !docIds.has(docId)) {
        info.unresolved++;
        continue;
      }
      let list = byDoc.get(docId);
      if (!list) byDoc.set(docId, (list = []));
      list.push({ id: queryId, text });
      info.pairs++;
      used = true;
    }
    if (used) info.queries++;
  }
  return { byDoc, info };
}

/**
 * Reads the corpus directory: documents in file order, each with the train queries judged relevant to it.
 * @throws AdaptCorpusError for a missing directory, no corpus file, malformed lines (file:line) or an empty corpus.
 */
export async function readAdaptCorpus(dirInput: string): Promise<AdaptCorpus> {
  const dir = path.resolve(dirInput);
  const { layout, corpusFile } = await locateCorpus(dir);
  const file = path.join(dir, corpusFile);
  const records: AdaptRecord[] = [];
  const seen = new Set<string>();
  let duplicateIds = 0;
  for await (const { record, line } of jsonObjects(file, file)) {
    const where = `${file}:${line}`;
    const id = recordId(record, where);
    const title = recordText(record, "title", where, false);
    const text = recordText(record, "text", where, true);
    if (seen.has(id)) {
      duplicateIds++;
      continue;
    }
    seen.add(id);
    records.push({ id, title, text, queries: [] });
  }
  if (records.length === 0) throw new AdaptCorpusError(`${file}: no documents`);
  const info: AdaptCorpusInfo = { dir, name: path.basename(dir), layout, corpusFile, documents: records.length, duplicateIds };
  // Queries come only with the BEIR layout, whose queries.jsonl + qrels/ the reader knows how to pair.
  const train = layout === "beir" ? await readTrainQueries(dir, seen) : undefined;
  if (train) {
    info.trainQrels = train.info;
    for (const r of records) r.queries = train.byDoc.get(r.id) ?? [];
  }
  return { info, records };
}

/** The corpus's records as an async source for buildPairs (trainer.ts openSources): read when first iterated. */
export async function* adaptRecords(dir: string): AsyncGenerator<AdaptRecord> {
  yield* (await readAdaptCorpus(dir)).records;
}

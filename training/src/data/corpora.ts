/**
 * Readers for the shared corpora in `<repo root>/../shared/datasets` (read-only, never copied into the project).
 *
 * Layers, so that other training code can build what it needs on top:
 *  - {@link readJsonl}: any JSONL file → parsed objects, streamed line by line (the files are tens of MB).
 *  - Typed record readers ({@link readDebianPackages}, {@link readWordNetSynsets}, {@link readSciFactCorpus}) that
 *    validate the fields they promise and yield the records as stored.
 *  - Document views ({@link debianDocuments}, {@link wordnetDocuments}, {@link scifactDocuments}) that yield
 *    `{ id, title, text }` for text-level uses (vocabulary training, title→text pairs).
 * Only the SciFact *corpus* is exposed here; SciFact queries and qrels are evaluation data and must not leak into
 * vocabulary or unsupervised training.
 *
 * @example
 *   for await (const doc of scifactDocuments({ limit: 10 })) console.log(doc.title);
 *
 * @module
 */
import { createReadStream, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BiomedRecord } from "./biomed-corpus.js";

export interface DebianPackageRecord {
  /** Package name. */
  id: string;
  /** Short description. */
  title: string;
  /** Long description. */
  text: string;
}

export interface WordNetSynsetRecord {
  id: string;
  pos: string;
  terms: string[];
  definition: string;
  examples: string[];
}

export interface SciFactDocumentRecord {
  _id: string;
  title: string;
  text: string;
}

/** A corpus record reduced to a title and a body. */
export interface TitledText {
  id: string;
  title: string;
  text: string;
}

export interface ReadOptions {
  /** Stop after this many records. */
  limit?: number;
}

export const CORPUS_FILES = {
  debian: "debian-packages/pairs.jsonl",
  wordnet: "wordnet/synsets.jsonl",
  scifact: "scifact/corpus.jsonl",
} as const;
export type CorpusName = keyof typeof CORPUS_FILES;

const ROOT_PACKAGE_NAME = "taesr-edge";

/**
 * `<repo root>/../shared/datasets`, where the repo root is the nearest ancestor of this file whose package.json is
 * named "taesr-edge". The environment variable TAESR_DATASETS overrides it (CI, other checkouts).
 */
export function sharedDatasetsDir(): string {
  const override = process.env.TAESR_DATASETS;
  if (override) return path.resolve(override);
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (true) {
    const pkg = path.join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { name?: unknown }).name === ROOT_PACKAGE_NAME) {
          return path.resolve(dir, "..", "shared", "datasets");
        }
      } catch {
        // An unreadable package.json is not the root we look for; keep walking up.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        `Cannot find the repository root (a package.json named "${ROOT_PACKAGE_NAME}") above ${fileURLToPath(import.meta.url)}; ` +
          "set TAESR_DATASETS to the shared datasets directory.",
      );
    }
    dir = parent;
  }
}

/** Absolute path of a corpus file, failing with instructions if it is absent. */
export function corpusPath(name: CorpusName): string {
  const file = path.join(sharedDatasetsDir(), CORPUS_FILES[name]);
  if (!existsSync(file)) {
    throw new Error(
      `Corpus "${name}" not found at ${file}. The shared datasets must sit at <repo root>/../shared/datasets ` +
        "(see ../shared/README.md); set TAESR_DATASETS to their directory if they live elsewhere.",
    );
  }
  return file;
}

/** Streams a JSONL file as parsed values, skipping blank lines. Parse errors name the file and line. */
export async function* readJsonl<T = unknown>(file: string, options: ReadOptions = {}): AsyncGenerator<T> {
  if (!existsSync(file)) throw new Error(`JSONL file not found: ${file}`);
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (limit <= 0) return;
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  let yielded = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === "") continue;
      let value: T;
      try {
        value = JSON.parse(line) as T;
      } catch (err) {
        throw new Error(`${file}:${lineNo}: invalid JSON (${(err as Error).message})`);
      }
      yield value;
      if (++yielded >= limit) return;
    }
  } finally {
    lines.close();
  }
}

function expectString(record: Record<string, unknown>, field: string, where: string): string {
  const v = record[field];
  if (typeof v !== "string") throw new Error(`${where}: field "${field}" must be a string`);
  return v;
}

function expectStringArray(record: Record<string, unknown>, field: string, where: string): string[] {
  const v = record[field];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new Error(`${where}: field "${field}" must be an array of strings`);
  }
  return v as string[];
}

/** Typed records of one corpus file: each JSONL object is checked by `parse` (which names the failing record). */
async function* readRecords<T>(
  file: string,
  options: ReadOptions,
  parse: (record: Record<string, unknown>, where: string) => T,
): AsyncGenerator<T> {
  let n = 0;
  for await (const value of readJsonl<unknown>(file, options)) {
    n++;
    const where = `${file} record ${n}`;
    if (typeof value !== "object" || value === null) throw new Error(`${where}: expected a JSON object`);
    yield parse(value as Record<string, unknown>, where);
  }
}

export async function* readDebianPackages(options: ReadOptions = {}): AsyncGenerator<DebianPackageRecord> {
  yield* readRecords(corpusPath("debian"), options, (r, where) => ({
    id: expectString(r, "id", where),
    title: expectString(r, "title", where),
    text: expectString(r, "text", where),
  }));
}

export async function* readWordNetSynsets(options: ReadOptions = {}): AsyncGenerator<WordNetSynsetRecord> {
  yield* readRecords(corpusPath("wordnet"), options, (r, where) => ({
    id: expectString(r, "id", where),
    pos: expectString(r, "pos", where),
    terms: expectStringArray(r, "terms", where),
    definition: expectString(r, "definition", where),
    examples: expectStringArray(r, "examples", where),
  }));
}

/** The SciFact corpus (abstracts) only — never the queries. */
export async function* readSciFactCorpus(options: ReadOptions = {}): AsyncGenerator<SciFactDocumentRecord> {
  yield* readRecords(corpusPath("scifact"), options, (r, where) => ({
    _id: expectString(r, "_id", where),
    title: expectString(r, "title", where),
    text: expectString(r, "text", where),
  }));
}

/** Where the biomed corpus and the Debian packages it is built from are kept: training/.cache/biomed (gitignored). */
export const BIOMED_CACHE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", ".cache", "biomed");

/** The biomed corpus file a config's `data.sources.biomed` reads when it names none. */
export function defaultBiomedFile(): string {
  return path.join(BIOMED_CACHE_DIR, "biomed.jsonl");
}

/** What the corpus was built from, written beside it (`<corpus>.provenance.json`) and copied into the manifest. */
export interface BiomedProvenance {
  packages: { package: string; version: string; sha256: string }[];
  records: { goTerms: number; genes: number };
  builtBy: string;
}

export function biomedProvenancePath(corpusFile: string): string {
  return corpusFile.replace(/\.jsonl$/, "") + ".provenance.json";
}

/** The provenance beside a biomed corpus file, or undefined when it is missing or unreadable. */
export function readBiomedProvenance(corpusFile: string): BiomedProvenance | undefined {
  try {
    return JSON.parse(readFileSync(biomedProvenancePath(corpusFile), "utf8")) as BiomedProvenance;
  } catch {
    return undefined;
  }
}

/**
 * The biomedical corpus file `npm run -w training corpus:biomed` writes (data/biomed-corpus.ts): Gene Ontology terms
 * and human genes. Not part of the shared datasets: it is built from two Debian packages on the machine that trains.
 */
export async function* readBiomedCorpus(file: string, options: ReadOptions = {}): AsyncGenerator<BiomedRecord> {
  if (!existsSync(file)) {
    throw new Error(`The biomed corpus ${file} does not exist: build it with \`npm run -w training corpus:biomed -- --out ${file}\` (needs apt-get, dpkg-deb and Debian's package index).`);
  }
  yield* readRecords(file, options, (r, where) => {
    const kind = expectString(r, "kind", where);
    if (kind !== "go-term" && kind !== "gene") throw new Error(`${where}: field "kind" must be "go-term" or "gene", got ${JSON.stringify(kind)}`);
    const name = r["name"] === undefined ? undefined : expectString(r, "name", where);
    return {
      id: expectString(r, "id", where),
      kind,
      title: expectString(r, "title", where),
      ...(name !== undefined ? { name } : {}),
      text: expectString(r, "text", where),
      synonyms: expectStringArray(r, "synonyms", where),
    };
  });
}

/** Debian packages: title = short description, text = long description. */
export async function* debianDocuments(options: ReadOptions = {}): AsyncGenerator<TitledText> {
  for await (const r of readDebianPackages(options)) yield { id: r.id, title: r.title, text: r.text };
}

/** WordNet synsets: title = the synset's terms joined by ", ", text = definition followed by its examples. */
export async function* wordnetDocuments(options: ReadOptions = {}): AsyncGenerator<TitledText> {
  for await (const r of readWordNetSynsets(options)) {
    yield { id: r.id, title: r.terms.join(", "), text: [r.definition, ...r.examples].join(" ") };
  }
}

/** SciFact abstracts: title and abstract text. */
export async function* scifactDocuments(options: ReadOptions = {}): AsyncGenerator<TitledText> {
  for await (const r of readSciFactCorpus(options)) yield { id: r._id, title: r.title, text: r.text };
}

export const CORPUS_DOCUMENTS: Record<CorpusName, (options?: ReadOptions) => AsyncGenerator<TitledText>> = {
  debian: debianDocuments,
  wordnet: wordnetDocuments,
  scifact: scifactDocuments,
};

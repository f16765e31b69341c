/**
 * (query, document) training pairs from the real corpora in shared/datasets.
 *
 * Sources and pair kinds:
 * - Debian packages: short description → long description; "package-name short description" → long description.
 * - WordNet synsets: the synset's terms → definition; each usage example (≤ 2) → definition.
 * - SciFact corpus (titles and abstracts only, never queries or qrels; unsupervised in-domain use, declared in the
 *   manifest): title → abstract; one sentence (chosen by hash) → the rest of the abstract.
 *
 * Pairs are deduplicated on normalised (query, doc) text, capped per source by a seeded sample, and split into train /
 * validation by a hash of the normalised *document*: every pair that shares a document lands on the same side, so
 * validation never scores a document the model was trained to retrieve. The split does not depend on the seed.
 *
 * @module
 */
import { createRng, deriveSeed, hashString, hashUnit, shuffleInPlace } from "./random.js";

export type PairSource = "debian" | "wordnet" | "scifact";

export interface TextPair {
  query: string;
  doc: string;
  source: PairSource;
  /** Which construction produced the pair (e.g. "title->text"); reported in the manifest. */
  kind: string;
}

export interface DebianRecord {
  id: string;
  title: string;
  text: string;
}
export interface WordnetRecord {
  terms: string[];
  definition: string;
  examples: string[];
}
export interface ScifactRecord {
  _id: string;
  title: string;
  text: string;
}

/** Whitespace-collapsed, trimmed text: the corpora contain stray newlines and double spaces. */
export function cleanText(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** The key two texts must share to count as duplicates (case-insensitive). */
export function normKey(text: string): string {
  return cleanText(text).toLowerCase();
}

export function* debianPairs(r: DebianRecord): Generator<TextPair> {
  const title = cleanText(r.title ?? "");
  const text = cleanText(r.text ?? "");
  if (!title || !text) return;
  yield { query: title, doc: text, source: "debian", kind: "title->text" };
  yield { query: `${r.id} ${title}`, doc: text, source: "debian", kind: "name+title->text" };
}

export function* wordnetPairs(r: WordnetRecord): Generator<TextPair> {
  const definition = cleanText(r.definition ?? "");
  if (!definition) return;
  const terms = (r.terms ?? []).map((t) => cleanText(t.replace(/_/g, " "))).filter(Boolean);
  if (terms.length > 0) yield { query: terms.join(", "), doc: definition, source: "wordnet", kind: "terms->definition" };
  for (const ex of (r.examples ?? []).slice(0, 2)) {
    const example = cleanText(ex).replace(/^"|"$/g, "");
    if (example.length >= 8) yield { query: example, doc: definition, source: "wordnet", kind: "example->definition" };
  }
}

/** Sentence split good enough for abstracts: end punctuation followed by space and an upper-case letter, digit or '('. */
export function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+(?=[A-Z0-9(])/).map((s) => s.trim()).filter(Boolean);
}

export function* scifactPairs(r: ScifactRecord): Generator<TextPair> {
  const title = cleanText(r.title ?? "");
  const text = cleanText(r.text ?? "");
  if (!text) return;
  if (title) yield { query: title, doc: text, source: "scifact", kind: "title->abstract" };
  const sentences = splitSentences(text);
  if (sentences.length >= 3) {
    // The sentence is picked by a hash of the id, not by the run's seed: the pair set is a property of the data.
    const i = Math.floor(hashUnit(r._id, 7) * sentences.length);
    const query = sentences[i] ?? "";
    if (query.length >= 20) {
      const rest = sentences.filter((_, j) => j !== i).join(" ");
      yield { query, doc: rest, source: "scifact", kind: "sentence->rest" };
    }
  }
}

export interface PairSourceOptions {
  maxPairs?: number | undefined;
}

export interface PairBuildOptions {
  seed: number;
  validationFraction: number;
  maxValidationPairs: number;
  minDocChars: number;
  sources: Partial<Record<PairSource, PairSourceOptions>>;
}

export interface PairStats {
  /** Pairs kept per source and kind (train + validation). */
  bySource: Record<string, { train: number; validation: number; kinds: Record<string, number> }>;
  duplicatesDropped: number;
  shortDropped: number;
  train: number;
  validation: number;
}

export interface PairSet {
  train: TextPair[];
  validation: TextPair[];
  stats: PairStats;
}

/** The records of each enabled source; injected so tests (and other corpora) can supply their own. */
export type PairInputs = Partial<{
  debian: AsyncIterable<DebianRecord> | Iterable<DebianRecord>;
  wordnet: AsyncIterable<WordnetRecord> | Iterable<WordnetRecord>;
  scifact: AsyncIterable<ScifactRecord> | Iterable<ScifactRecord>;
}>;

const BUILDERS: { [S in PairSource]: (r: never) => Generator<TextPair> } = {
  debian: debianPairs as (r: never) => Generator<TextPair>,
  wordnet: wordnetPairs as (r: never) => Generator<TextPair>,
  scifact: scifactPairs as (r: never) => Generator<TextPair>,
};

/** Salt of the validation hash: fixed forever so the held-out slice never moves between runs. */
const VALIDATION_SALT = 0x5eed;

export async function buildPairs(inputs: PairInputs, opts: PairBuildOptions): Promise<PairSet> {
  const seen = new Set<number>();
  const stats: PairStats = { bySource: {}, duplicatesDropped: 0, shortDropped: 0, train: 0, validation: 0 };
  const train: TextPair[] = [];
  let validation: TextPair[] = [];
  for (const source of ["debian", "wordnet", "scifact"] as const) {
    const sourceOpts = opts.sources[source];
    const records = inputs[source];
    if (!sourceOpts || !records) continue;
    const pairs: TextPair[] = [];
    for await (const record of records) {
      for (const pair of BUILDERS[source](record as never)) {
        if (pair.doc.length < opts.minDocChars) {
          stats.shortDropped++;
          continue;
        }
        const key = hashString(`${normKey(pair.query)}\u0000${normKey(pair.doc)}`);
        if (seen.has(key)) {
          stats.duplicatesDropped++;
          continue;
        }
        seen.add(key);
        pairs.push(pair);
      }
    }
    // A seeded sample, not the first N: the files are sorted (Debian alphabetically, WordNet by offset).
    shuffleInPlace(pairs, createRng(deriveSeed(opts.seed, `sample:${source}`)));
    const kept = sourceOpts.maxPairs !== undefined ? pairs.slice(0, sourceOpts.maxPairs) : pairs;
    const s = (stats.bySource[source] = { train: 0, validation: 0, kinds: {} as Record<string, number> });
    for (const pair of kept) {
      s.kinds[pair.kind] = (s.kinds[pair.kind] ?? 0) + 1;
      if (hashUnit(normKey(pair.doc), VALIDATION_SALT) < opts.validationFraction) {
        validation.push(pair);
        s.validation++;
      } else {
        train.push(pair);
        s.train++;
      }
    }
  }
  shuffleInPlace(train, createRng(deriveSeed(opts.seed, "train-order")));
  // Validation order is seed-independent so eval numbers compare across runs.
  shuffleInPlace(validation, createRng(VALIDATION_SALT));
  validation = validation.slice(0, opts.maxValidationPairs);
  stats.train = train.length;
  stats.validation = validation.length;
  return { train, validation, stats };
}

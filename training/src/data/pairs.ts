/**
 * (query, document) training pairs from the real corpora in shared/datasets.
 *
 * Sources and pair kinds:
 * - Debian packages: short description → long description; "package-name short description" → long description.
 * - WordNet synsets: the synset's terms → definition; each usage example (≤ 2) → definition.
 * - SciFact corpus (titles and abstracts only, never queries or qrels; unsupervised in-domain use, declared in the
 *   manifest): title → abstract; one sentence (chosen by hash) → the rest of the abstract.
 * - Biomedical annotation data (data/biomed-corpus.ts; `npm run -w training corpus:biomed` writes it): Gene Ontology
 *   term → definition and one synonym → definition; human gene symbol → full name and GO annotations, one alias →
 *   the same, full name → annotations.
 * - A user's corpus for domain adaptation (adapt-corpus.ts, `--adapt`): title → text; up to two sentences (chosen by
 *   hash) → the rest of the text; and, when the corpus ships qrels/train.tsv, each judged train query → its document.
 *   With `holdoutQueries` a share of the train queries, chosen by a hash of the query id, gives no train-side pair
 *   (see {@link isQueryHeldOut}): fusion weights can then be tuned on train queries the model never trained on while
 *   their documents got the same unsupervised pairs as every other (bench/eval/fusion-tuning.ts fairTuningQueries).
 *
 * Pairs are deduplicated on normalised (query, doc) text, capped per source by a seeded sample, and split into train /
 * validation by a hash of the normalised *document* (or of the pair's `group`, the source document's id, when the
 * source sets one): every pair that shares a document lands on the same side, so validation never scores a document
 * the model was trained to retrieve. The split does not depend on the seed. A source may be oversampled (`repeat`):
 * its train pairs are copied into the stream that many times, its validation pairs are not.
 *
 * @module
 */
import type { BiomedRecord } from "./biomed-corpus.js";
import { createRng, deriveSeed, hashString, hashUnit, shuffleInPlace } from "./random.js";

export type PairSource = "debian" | "wordnet" | "scifact" | "adapt" | "biomed";

/** Every source, in the order buildPairs reads them (the order is part of the pair set: dedup keeps the first; a new
 * source goes last, so the pairs of every earlier configuration stay what they were). */
export const PAIR_SOURCES: readonly PairSource[] = ["debian", "wordnet", "scifact", "adapt", "biomed"];

export interface TextPair {
  query: string;
  doc: string;
  source: PairSource;
  /** Which construction produced the pair (e.g. "title->text"); reported in the manifest. */
  kind: string;
  /**
   * What the validation split hashes instead of the document text: pairs of one source document (title → text,
   * sentence → rest, query → text all have different `doc` strings) must land on the same side.
   */
  group?: string;
  /** A hard negative document for this query (data/hard-negatives.ts; train pairs only, set after buildPairs). */
  negative?: string;
  /** The judged train query's id (adapt train-query → text pairs only): what `holdoutQueries` hashes. */
  queryId?: string;
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
/** A train query of a user's corpus: its id in queries.jsonl / qrels and its text. */
export interface AdaptQuery {
  id: string;
  text: string;
}
/** A document of a user's corpus with the train queries judged relevant to it (adapt-corpus.ts). */
export interface AdaptRecord {
  id: string;
  title: string;
  text: string;
  /** The train-qrels queries with score > 0 for this document (never test or dev qrels). */
  queries: AdaptQuery[];
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

/**
 * Title → abstract, and `sentencesPerDoc` (default 1) distinct sentence → rest-of-abstract pairs. A single claim-like
 * sentence against the rest of its abstract is the unsupervised pair closest to SciFact's claim → abstract task, so a
 * run aimed at it can take several per abstract.
 */
export function* scifactPairs(r: ScifactRecord, sentencesPerDoc = 1): Generator<TextPair> {
  const title = cleanText(r.title ?? "");
  const text = cleanText(r.text ?? "");
  if (!text) return;
  if (title) yield { query: title, doc: text, source: "scifact", kind: "title->abstract" };
  const sentences = splitSentences(text);
  if (sentences.length < 3) return;
  // Sentences are picked by a hash of the id, not by the run's seed: the pair set is a property of the data. The first
  // pick is the one a single-sentence run makes, so raising sentencesPerDoc only adds pairs.
  const order = sentences.map((_, j) => j);
  const first = Math.floor(hashUnit(r._id, 7) * sentences.length);
  order.sort((a, b) => (a === first ? -1 : b === first ? 1 : hashUnit(`${r._id}:${a}`, 11) - hashUnit(`${r._id}:${b}`, 11)));
  let taken = 0;
  for (const i of order) {
    if (taken >= Math.min(sentencesPerDoc, sentences.length - 2)) break;
    const query = sentences[i] ?? "";
    if (query.length < 20) {
      if (i === first && sentencesPerDoc === 1) return;
      continue;
    }
    taken++;
    const rest = sentences.filter((_, j) => j !== i).join(" ");
    yield { query, doc: rest, source: "scifact", kind: "sentence->rest" };
  }
}

/**
 * Up to `count` sentences of `text` → the rest of it, each sentence chosen by a hash of `id` (the pair set is a property
 * of the data, not of the run's seed). Texts of fewer than three sentences give none: the rest would be too thin.
 */
export function* sentencePairs(id: string, text: string, count: number): Generator<{ query: string; rest: string }> {
  const sentences = splitSentences(text);
  if (sentences.length < 3) return;
  const left = sentences.map((_, i) => i);
  for (let k = 0; k < count && left.length > 0; k++) {
    const i = left.splice(Math.floor(hashUnit(id, 7 + k) * left.length), 1)[0] as number;
    const query = sentences[i] ?? "";
    if (query.length < 20) continue;
    yield { query, rest: sentences.filter((_, j) => j !== i).join(" ") };
  }
}

/** Every pair of one document; train-query pairs carry their query id (buildPairs applies `holdoutQueries` by it). */
export function* adaptPairs(r: AdaptRecord): Generator<TextPair> {
  const title = cleanText(r.title ?? "");
  const text = cleanText(r.text ?? "");
  if (!text) return;
  const group = adaptGroup(r.id);
  if (title) yield { query: title, doc: text, source: "adapt", kind: "title->text", group };
  for (const { query, rest } of sentencePairs(r.id, text, 2)) yield { query, doc: rest, source: "adapt", kind: "sentence->rest", group };
  // The document side is the text alone, as for title → text: the batcher then keeps the two pairs out of one batch
  // (same document), where one would be the other's near-duplicate false negative.
  for (const q of r.queries ?? []) {
    const query = cleanText(q.text);
    if (query) yield { query, doc: text, source: "adapt", kind: "train-query->text", group, queryId: q.id };
  }
}

/** One synonym of a record, chosen by a hash of its id (a property of the data), that is not its title again. */
function pickSynonym(id: string, title: string, synonyms: readonly string[]): string | undefined {
  const candidates = synonyms.map(cleanText).filter((s) => s.length >= 2 && normKey(s) !== normKey(title));
  if (candidates.length === 0) return undefined;
  return candidates[Math.floor(hashUnit(id, 13) * candidates.length)];
}

/**
 * A GO term: its name → its definition, and one synonym → the definition. A gene: its symbol → its full name and
 * annotations, one alias symbol → the same, and its full name → the annotations alone (the name is not in that
 * document, so the pair asks what the gene does, not how it is spelt). All pairs of a record share its group.
 */
export function* biomedPairs(r: BiomedRecord): Generator<TextPair> {
  const group = `biomed:${r.id}`;
  const title = cleanText(r.title ?? "");
  const text = cleanText(r.text ?? "");
  if (!title) return;
  const synonym = pickSynonym(r.id, title, r.synonyms ?? []);
  if (r.kind === "go-term") {
    if (!text) return;
    yield { query: title, doc: text, source: "biomed", kind: "term->definition", group };
    if (synonym) yield { query: synonym, doc: text, source: "biomed", kind: "synonym->definition", group };
    return;
  }
  const name = cleanText(r.name ?? "");
  if (!name) return;
  const doc = text ? `${name}. ${text}` : name;
  yield { query: title, doc, source: "biomed", kind: "symbol->gene", group };
  if (synonym) yield { query: synonym, doc, source: "biomed", kind: "alias->gene", group };
  if (text) yield { query: name, doc: text, source: "biomed", kind: "name->annotations", group };
}

export interface PairSourceOptions {
  maxPairs?: number | undefined;
  /** Copies of each train pair in the stream (default 1): oversamples a small source. Validation keeps one copy. */
  repeat?: number | undefined;
  /** SciFact: sentence → rest pairs per abstract (default 1). */
  sentencesPerDoc?: number | undefined;
  /** Extra copies per pair kind, multiplied with `repeat` (kinds not listed: 1). */
  kindRepeat?: Readonly<Record<string, number>> | undefined;
  /** Adapt: share of train queries, by {@link isQueryHeldOut}, whose pairs stay off the train side (default 0). */
  holdoutQueries?: number | undefined;
}

export interface PairBuildOptions {
  seed: number;
  validationFraction: number;
  maxValidationPairs: number;
  minDocChars: number;
  sources: Partial<Record<PairSource, PairSourceOptions>>;
}

export interface PairStats {
  /**
   * Pairs kept per source and kind (train + validation; kinds count unique pairs). With repeat > 1, `train` counts the
   * copies in the stream and `uniqueTrain` the distinct train pairs (both absent otherwise, so older stats stay as they
   * were: the stats are part of a run's data fingerprint).
   */
  bySource: Record<
    string,
    {
      train: number;
      validation: number;
      kinds: Record<string, number>;
      repeat?: number;
      uniqueTrain?: number;
      /** Set by the trainer when the source mines hard negatives (data/hard-negatives.ts). */
      hardNegatives?: { ranker?: string; mined: number; none: number; indexed: number; missingKinds?: string[]; copyNegatives?: number };
      /**
       * With `holdoutQueries` > 0 only: the query ids the hash held out (`queries`; ids sharing a held-out text are
       * withheld too but not counted), and the train-side query pairs withheld (`pairs`, before caps and repeats).
       */
      heldOutQueries?: { fraction: number; queries: number; pairs: number };
    }
  >;
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
  adapt: AsyncIterable<AdaptRecord> | Iterable<AdaptRecord>;
  biomed: AsyncIterable<BiomedRecord> | Iterable<BiomedRecord>;
}>;

const BUILDERS: { [S in PairSource]: (r: never, o: PairSourceOptions) => Generator<TextPair> } = {
  debian: debianPairs as (r: never) => Generator<TextPair>,
  wordnet: wordnetPairs as (r: never) => Generator<TextPair>,
  scifact: ((r: ScifactRecord, o: PairSourceOptions) => scifactPairs(r, o.sentencesPerDoc)) as (r: never, o: PairSourceOptions) => Generator<TextPair>,
  adapt: adaptPairs as (r: never) => Generator<TextPair>,
  biomed: biomedPairs as (r: never) => Generator<TextPair>,
};

/** Salt of the validation hash: fixed forever so the held-out slice never moves between runs. */
const VALIDATION_SALT = 0x5eed;

/** The pair group of an adapted corpus's document (adaptPairs): what the validation split hashes for its pairs. */
export function adaptGroup(documentId: string): string {
  return `adapt:${documentId}`;
}

/**
 * Whether pairs of this group (or, without a group, this normalised document) land on the validation side: the
 * split buildPairs makes, exposed so an evaluation can tell which documents a run never trained on.
 */
export function isHeldOut(groupOrDocKey: string, validationFraction: number): boolean {
  return hashUnit(groupOrDocKey, VALIDATION_SALT) < validationFraction;
}

/** Salt of the train-query hold-out hash: fixed forever, and apart from the document split's, so the two are independent. */
export const QUERY_HOLDOUT_SALT = 0x9e7d;

/** The rule {@link isQueryHeldOut} applies, as the manifest records it beside the ids. */
export const QUERY_HOLDOUT_RULE = `hashUnit("query:" + query id, ${QUERY_HOLDOUT_SALT}) < fraction (training/src/data/pairs.ts isQueryHeldOut)`;

/**
 * Whether a train query is held out of the supervised pairs (`holdoutQueries`): a hash of its id alone, so the set
 * depends neither on the seed nor on the other queries, and a larger fraction only adds queries.
 */
export function isQueryHeldOut(queryId: string, fraction: number): boolean {
  return hashUnit(`query:${queryId}`, QUERY_HOLDOUT_SALT) < fraction;
}

/**
 * The train query ids of these records whose pairs buildPairs keeps off the train side at this fraction, sorted: the
 * ids {@link isQueryHeldOut} picks, and any other id with the same normalised text (training on its twin would train
 * on the held-out query).
 */
export function heldOutQueryIds(records: Iterable<AdaptRecord>, fraction: number): string[] {
  const textOf = new Map<string, string>();
  for (const r of records) for (const q of r.queries ?? []) textOf.set(q.id, normKey(q.text));
  const heldTexts = new Set([...textOf].filter(([id]) => isQueryHeldOut(id, fraction)).map(([, text]) => text));
  return [...textOf].filter(([, text]) => heldTexts.has(text)).map(([id]) => id).sort();
}

export async function buildPairs(inputs: PairInputs, opts: PairBuildOptions): Promise<PairSet> {
  const seen = new Set<number>();
  const stats: PairStats = { bySource: {}, duplicatesDropped: 0, shortDropped: 0, train: 0, validation: 0 };
  const train: TextPair[] = [];
  let validation: TextPair[] = [];
  for (const source of PAIR_SOURCES) {
    const sourceOpts = opts.sources[source];
    const records = inputs[source];
    if (!sourceOpts || !records) continue;
    const holdout = sourceOpts.holdoutQueries ?? 0;
    if (!(holdout >= 0 && holdout < 1)) throw new Error(`buildPairs: ${source}.holdoutQueries must be in [0, 1), got ${holdout}`);
    const heldOutIds = new Set<string>();
    const heldOutTexts = new Set<string>();
    let pairs: TextPair[] = [];
    for await (const record of records) {
      for (const pair of BUILDERS[source](record as never, sourceOpts)) {
        // Noted before the length and duplicate checks: a twin query of another id may be the copy dedup keeps.
        if (holdout > 0 && pair.queryId !== undefined && isQueryHeldOut(pair.queryId, holdout)) {
          heldOutIds.add(pair.queryId);
          heldOutTexts.add(normKey(pair.query));
        }
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
    // A held-out query's pairs leave the train side only: one whose document is held out stays a validation pair,
    // so (uncapped) the validation set is the same with or without the hold-out.
    let withheld = 0;
    if (heldOutTexts.size > 0) {
      pairs = pairs.filter((p) => {
        const drop = p.queryId !== undefined && heldOutTexts.has(normKey(p.query)) && !isHeldOut(p.group ?? normKey(p.doc), opts.validationFraction);
        if (drop) withheld++;
        return !drop;
      });
    }
    // A seeded sample, not the first N: the files are sorted (Debian alphabetically, WordNet by offset).
    shuffleInPlace(pairs, createRng(deriveSeed(opts.seed, `sample:${source}`)));
    const kept = sourceOpts.maxPairs !== undefined ? pairs.slice(0, sourceOpts.maxPairs) : pairs;
    const repeat = sourceOpts.repeat ?? 1;
    if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`buildPairs: ${source}.repeat must be an integer ≥ 1, got ${repeat}`);
    for (const [kind, copies] of Object.entries(sourceOpts.kindRepeat ?? {})) {
      if (!Number.isInteger(copies) || copies < 1) throw new Error(`buildPairs: ${source}.kindRepeat["${kind}"] must be an integer ≥ 1, got ${copies}`);
    }
    const s: PairStats["bySource"][string] = (stats.bySource[source] = { train: 0, validation: 0, kinds: {} });
    for (const pair of kept) {
      s.kinds[pair.kind] = (s.kinds[pair.kind] ?? 0) + 1;
      if (isHeldOut(pair.group ?? normKey(pair.doc), opts.validationFraction)) {
        validation.push(pair);
        s.validation++;
      } else {
        // Copies only on the train side: a repeated validation pair would count the same question several times.
        const copies = repeat * (sourceOpts.kindRepeat?.[pair.kind] ?? 1);
        for (let r = 0; r < copies; r++) train.push(pair);
        s.train += copies;
      }
    }
    if (repeat > 1 || sourceOpts.kindRepeat) {
      s.repeat = repeat;
      s.uniqueTrain = kept.length - s.validation;
    }
    if (holdout > 0) s.heldOutQueries = { fraction: holdout, queries: heldOutIds.size, pairs: withheld };
  }
  shuffleInPlace(train, createRng(deriveSeed(opts.seed, "train-order")));
  // Validation order is seed-independent so eval numbers compare across runs.
  shuffleInPlace(validation, createRng(VALIDATION_SALT));
  validation = validation.slice(0, opts.maxValidationPairs);
  stats.train = train.length;
  stats.validation = validation.length;
  return { train, validation, stats };
}

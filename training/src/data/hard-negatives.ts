/**
 * BM25-mined hard negatives: for a train pair (query → document), a document of the same source that BM25 ranks high
 * for the query but that is not one of the query's positives. In-batch negatives are random documents, which a model
 * tells apart by topic alone long before it learns what makes the right abstract right; a lexically close wrong one
 * is the signal the issue's reference run lacked ("new signal does: hard negatives").
 *
 * - Index: the distinct documents of the source's TRAIN pairs of the configured kinds, so a validation document is never
 *   trained against (it would leak the held-out side into training).
 * - Positives: every document group (pair.group, else the document text) that any train pair of the same query text
 *   points at; these and the pair's own group are never its negative.
 * - Queries: train pairs only, so a train query held out by `holdoutQueries` (pairs.ts isQueryHeldOut) is never mined
 *   for and never shapes the positives; its documents stay in the index through their unsupervised pairs.
 * - Choice: among the `depth` best-ranked remaining documents, one picked by a seeded hash of the query. The top hit is
 *   too often an unjudged positive (SciFact judges one or two abstracts per query); a pool trades a little hardness for
 *   far fewer false negatives. Deterministic in (seed, pairs), so every data-parallel worker mines the same ones.
 * - Terms: the same word pieces BM25 uses at serving time (lexicalTerms of the model's tokenizer), passed in.
 *
 * A pair keeps no negative when BM25 finds nothing outside its positives (no shared term); the stats count those.
 *
 * @module
 * @example
 *   const stats = mineHardNegatives(pairs.train, "adapt", { kinds: ["train-query->text"], depth: 10 }, terms, 42);
 */
import { bm25Search, buildBm25Postings } from "../../../src/retrieval/index.js";
import { normKey, type PairSource, type TextPair } from "./pairs.js";
import { deriveSeed, hashString } from "./random.js";

export interface HardNegativeOptions {
  kinds: readonly string[];
  depth: number;
}

export interface HardNegativeStats {
  /** Distinct train pairs of the configured kinds that got a negative. */
  mined: number;
  /** Distinct train pairs of those kinds for which BM25 found no non-positive document. */
  none: number;
  /** Documents in the mining index. */
  indexed: number;
  /** Listed kinds the source has no train pairs of (a corpus without train qrels has no "train-query->text"). */
  missingKinds?: string[];
}

interface IndexedDoc {
  text: string;
  group: string;
}

function groupOf(pair: TextPair): string {
  return pair.group ?? normKey(pair.doc);
}

/**
 * Sets `negative` on the distinct train pairs of `source` whose kind is listed (repeated copies share the object, so
 * they share the negative). A listed kind the source lacks is reported in the stats (one preset serves corpora with
 * and without train qrels); when it lacks every listed kind the call throws, since a typo would otherwise train
 * without the negatives the config asks for.
 */
export function mineHardNegatives(
  train: readonly TextPair[],
  source: PairSource,
  options: HardNegativeOptions,
  terms: (text: string) => string[],
  seed: number,
): HardNegativeStats {
  const kinds = new Set(options.kinds);
  const unique = [...new Set(train.filter((p) => p.source === source))];
  const present = new Set(unique.map((p) => p.kind));
  const missingKinds = [...kinds].filter((k) => !present.has(k));
  if (missingKinds.length === kinds.size) {
    throw new Error(
      `hardNegatives for source "${source}": no train pairs of kind ${missingKinds.map((k) => `"${k}"`).join(", ")} ` +
        `(its kinds: ${[...present].sort().join(", ") || "none"})`,
    );
  }
  const selected = unique.filter((p) => kinds.has(p.kind));

  const docs: IndexedDoc[] = [];
  const docIndex = new Map<string, number>();
  for (const pair of selected) {
    const key = normKey(pair.doc);
    if (docIndex.has(key)) continue;
    docIndex.set(key, docs.length);
    docs.push({ text: pair.doc, group: groupOf(pair) });
  }
  const { postings, stats: corpus } = buildBm25Postings(docs.map((doc) => terms(doc.text)));

  const positivesOf = new Map<string, Set<string>>();
  for (const pair of unique) {
    const key = normKey(pair.query);
    let set = positivesOf.get(key);
    if (!set) positivesOf.set(key, (set = new Set()));
    set.add(groupOf(pair));
  }

  const stats: HardNegativeStats = { mined: 0, none: 0, indexed: docs.length, ...(missingKinds.length > 0 ? { missingKinds } : {}) };
  for (const pair of selected) {
    const queryKey = normKey(pair.query);
    const positives = positivesOf.get(queryKey) ?? new Set<string>();
    // Enough hits that `depth` remain after dropping every positive.
    const hits = bm25Search(terms(pair.query), corpus, postings, options.depth + positives.size + 1);
    const pool = hits.map((h) => docs[h.id] as IndexedDoc).filter((d) => !positives.has(d.group) && d.group !== groupOf(pair));
    const candidates = pool.slice(0, options.depth);
    if (candidates.length === 0) {
      delete pair.negative;
      stats.none++;
      continue;
    }
    const pick = hashString(`${queryKey}\u0000${groupOf(pair)}`, deriveSeed(seed, "hard-negative")) % candidates.length;
    pair.negative = (candidates[pick] as IndexedDoc).text;
    stats.mined++;
  }
  return stats;
}

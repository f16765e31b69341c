/**
 * Mined hard negatives: for a train pair (query → document), a document of the same source that a ranker puts high for
 * the query but that is not one of the query's positives. In-batch negatives are random documents, which a model
 * tells apart by topic alone long before it learns what makes the right abstract right; a close wrong one is the
 * signal the issue's reference run lacked ("new signal does: hard negatives").
 *
 * - Rankers: BM25 over the serving-time word pieces ({@link bm25Ranker}: lexically close documents), or the dense
 *   embeddings of the model a run starts from (data/dense-negatives.ts: documents the model itself confuses with the
 *   right one, ANCE-style — what a model that already knows the lexical cues still gets wrong).
 * - Index: the distinct documents of the source's TRAIN pairs of the configured kinds, so a validation document is never
 *   trained against (it would leak the held-out side into training).
 * - Positives: every document group (pair.group, else the document text) that any train pair of the same query text
 *   points at; these and the pair's own group are never its negative.
 * - Queries: train pairs only, so a train query held out by `holdoutQueries` (pairs.ts isQueryHeldOut) is never mined
 *   for and never shapes the positives; its documents stay in the index through their unsupervised pairs.
 * - Choice: among the `depth` best-ranked remaining documents, one picked by a seeded hash of the query. The top hit is
 *   too often an unjudged positive (SciFact judges one or two abstracts per query); a pool trades a little hardness for
 *   far fewer false negatives. Deterministic in (seed, pairs, ranker), so every data-parallel worker mines the same
 *   ones (and the data fingerprint, which includes the negatives, refuses a worker that did not).
 *
 * A pair keeps no negative when the ranker finds nothing outside its positives (BM25: no shared term); the stats count
 * those.
 *
 * @module
 * @example
 *   const options = { kinds: ["train-query->text"], depth: 10 };
 *   const stats = await mineHardNegatives(pairs.train, "adapt", options, bm25Ranker(terms), 42);
 */
import { bm25Search, buildBm25Postings } from "../../../src/retrieval/index.js";
import { normKey, type PairSource, type TextPair } from "./pairs.js";
import { createRng, deriveSeed, hashString, shuffleInPlace } from "./random.js";

export interface HardNegativeOptions {
  kinds: readonly string[];
  depth: number;
  /** Which ranker the trainer builds for this source (the caller passes it to {@link mineHardNegatives}); default bm25. */
  ranker?: "bm25" | "dense" | undefined;
  /** Each copy of a repeated pair gets its own negative (see {@link mineHardNegatives}); default: copies share one. */
  perCopy?: boolean | undefined;
}

/** Ranks a source's mining documents for its queries. */
export interface NegativeRanker {
  /** Recorded in the stats and logs ({@link BM25}, "dense <name>@<version>"). */
  readonly name: string;
  /**
   * For each query, indexes into `docs`, best first, at most `ks[i]` of them. Deterministic: every data-parallel
   * process ranks the same way.
   */
  rank(docs: readonly string[], queries: readonly string[], ks: readonly number[]): Promise<number[][]>;
}

export const BM25 = "BM25";

/** BM25 over `terms` (the word pieces BM25 uses at serving time: lexicalTerms of the model's tokenizer). */
export function bm25Ranker(terms: (text: string) => string[]): NegativeRanker {
  return {
    name: BM25,
    rank: async (docs, queries, ks) => {
      const { postings, stats: corpus } = buildBm25Postings(docs.map((doc) => terms(doc)));
      return queries.map((query, i) => bm25Search(terms(query), corpus, postings, ks[i]!).map((hit) => hit.id));
    },
  };
}

export interface HardNegativeStats {
  /** The ranker that mined them when not BM25 (absent for BM25, so runs from before the choice keep their data
   * fingerprints, which hash these stats). */
  ranker?: string;
  /** Distinct train pairs of the configured kinds that got a negative. */
  mined: number;
  /** Distinct train pairs of those kinds for which the ranker found no non-positive document. */
  none: number;
  /** Documents in the mining index. */
  indexed: number;
  /** Listed kinds the source has no train pairs of (a corpus without train qrels has no "train-query->text"). */
  missingKinds?: string[];
  /** With `perCopy`: negatives set over every copy of the mined pairs (absent otherwise, so fingerprints keep). */
  copyNegatives?: number;
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
 * they share the negative). With `perCopy`, each further copy in `train` is replaced, in place, by a clone with its
 * own negative: a seeded order of the pool, one document per copy, starting over only when the copies outnumber the
 * pool (copy 0 keeps the first, which is the shared mode's pick). A listed kind the source lacks is reported in the
 * stats (one preset serves corpora with and without train qrels); when it lacks every listed kind the call throws,
 * since a typo would otherwise train without the negatives the config asks for.
 */
export async function mineHardNegatives(
  train: TextPair[],
  source: PairSource,
  options: HardNegativeOptions,
  ranker: NegativeRanker,
  seed: number,
): Promise<HardNegativeStats> {
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

  const positivesOf = new Map<string, Set<string>>();
  for (const pair of unique) {
    const key = normKey(pair.query);
    let set = positivesOf.get(key);
    if (!set) positivesOf.set(key, (set = new Set()));
    set.add(groupOf(pair));
  }
  const positivesOfPair = (pair: TextPair) => positivesOf.get(normKey(pair.query)) ?? new Set<string>();
  // Enough hits that `depth` remain after dropping every positive.
  const ranked = await ranker.rank(
    docs.map((doc) => doc.text),
    selected.map((pair) => pair.query),
    selected.map((pair) => options.depth + positivesOfPair(pair).size + 1),
  );

  const stats: HardNegativeStats = {
    ...(ranker.name !== BM25 ? { ranker: ranker.name } : {}),
    mined: 0,
    none: 0,
    indexed: docs.length,
    ...(missingKinds.length > 0 ? { missingKinds } : {}),
  };
  const copiesOf = new Map<TextPair, number[]>();
  if (options.perCopy) {
    const wanted = new Set(selected);
    for (const [position, pair] of train.entries()) {
      if (!wanted.has(pair)) continue;
      const positions = copiesOf.get(pair);
      if (positions) positions.push(position);
      else copiesOf.set(pair, [position]);
    }
    stats.copyNegatives = 0;
  }
  for (const [index, pair] of selected.entries()) {
    const queryKey = normKey(pair.query);
    const positives = positivesOfPair(pair);
    const hits = ranked[index]!;
    const pool = hits.map((id) => docs[id] as IndexedDoc).filter((d) => !positives.has(d.group) && d.group !== groupOf(pair));
    const candidates = pool.slice(0, options.depth);
    if (candidates.length === 0) {
      delete pair.negative;
      stats.none++;
      continue;
    }
    const pairSeed = hashString(`${queryKey}\u0000${groupOf(pair)}`, deriveSeed(seed, "hard-negative"));
    const pick = pairSeed % candidates.length;
    pair.negative = (candidates[pick] as IndexedDoc).text;
    stats.mined++;
    if (!options.perCopy) continue;
    // The shared mode's pick first, the rest of the pool in a seeded order after it.
    const rest = candidates.filter((_, i) => i !== pick);
    shuffleInPlace(rest, createRng(pairSeed));
    const order = [candidates[pick] as IndexedDoc, ...rest];
    const positions = copiesOf.get(pair) ?? [];
    for (const [copy, position] of positions.entries()) {
      if (copy > 0) train[position] = { ...pair, negative: (order[copy % order.length] as IndexedDoc).text };
    }
    stats.copyNegatives! += Math.max(positions.length, 1);
  }
  return stats;
}

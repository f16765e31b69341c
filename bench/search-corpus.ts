/**
 * The documents and queries of the search benchmarks: 100,000 real documents from the shared datasets (every SciFact
 * abstract, every Debian package description, and WordNet synsets to fill up), shuffled with a fixed seed so that any
 * prefix — the 10k index is the first 10,000 — mixes all three sources the way one index of mixed content would.
 * Queries are the SciFact claims: real questions, each used once per pass so the embedding cache cannot flatter them.
 */
import {
  debianDocuments,
  readJsonl,
  scifactDocuments,
  sharedDatasetsDir,
  wordnetDocuments,
  type TitledText,
} from "../training/src/data/corpora.js";
import { createRng } from "../training/src/data/random.js";
import path from "node:path";

export interface BenchDocument {
  id: string;
  title: string;
  text: string;
  metadata: { source: string };
}

const SHUFFLE_SEED = 20261126;

async function collect(source: string, documents: AsyncGenerator<TitledText>, into: BenchDocument[], limit: number): Promise<void> {
  for await (const { id, title, text } of documents) {
    if (into.length >= limit) return;
    // Some records have an empty body (a Debian package with only a short description); the API rightly refuses them.
    if (text.trim().length === 0) continue;
    into.push({ id: `${source}:${id}`, title, text, metadata: { source } });
  }
}

/**
 * `count` documents with distinct ids (at most ~180k exist), deterministically shuffled; the same call always returns
 * the same list. The Debian file lists a few packages more than once (51 repeats: one per architecture variant); after
 * the shuffle only each id's first occurrence is kept and further WordNet synsets fill the list up, so an index of
 * `count` documents really holds `count` (a repeat would silently replace its earlier copy).
 */
export async function loadBenchDocuments(count: number): Promise<BenchDocument[]> {
  const pool: BenchDocument[] = [];
  await collect("scifact", scifactDocuments(), pool, count);
  await collect("debian", debianDocuments(), pool, count);
  await collect("wordnet", wordnetDocuments(), pool, count);
  const random = createRng(SHUFFLE_SEED);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  const seen = new Set<string>();
  const documents = pool.filter((document) => !seen.has(document.id) && seen.add(document.id));
  for await (const { id, title, text } of wordnetDocuments()) {
    if (documents.length >= count) break;
    const document = { id: `wordnet:${id}`, title, text, metadata: { source: "wordnet" } };
    if (text.trim().length === 0 || seen.has(document.id)) continue;
    seen.add(document.id);
    documents.push(document);
  }
  if (documents.length < count) throw new Error(`the shared datasets hold only ${documents.length} usable documents, ${count} asked for`);
  return documents;
}

/** The first `count` SciFact abstracts in corpus order: long documents (≈ 200–300 word pieces) for indexing throughput. */
export async function loadLongDocuments(count: number): Promise<BenchDocument[]> {
  const documents: BenchDocument[] = [];
  await collect("scifact", scifactDocuments(), documents, count);
  return documents;
}

/** Every SciFact claim (1,109), in file order. */
export async function loadBenchQueries(): Promise<string[]> {
  const queries: string[] = [];
  for await (const record of readJsonl<{ text: string }>(path.join(sharedDatasetsDir(), "scifact", "queries.jsonl"))) queries.push(record.text);
  return queries;
}

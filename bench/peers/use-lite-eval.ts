/**
 * USE-Lite's retrieval quality on a BEIR dataset, measured exactly as our own dense mode is: documents embedded as
 * title + "\n" + text (`documentText`), exact cosine over the whole corpus, a 1,000-deep ranking per judged query,
 * metrics with trec_eval's conventions. Self-contained so that the quality peer's figure does not depend on the
 * evaluation harness being refactored around it.
 *
 *   npx tsx bench/peers/use-lite-eval.ts [--dataset /work/shared/datasets/scifact] [--split test] [--workers 2]
 *                                        [--batch-size 8] [--no-cache] [--cache-dir bench/out/cache]
 *
 * Progress on stderr; one JSON line on stdout: ndcg@10, mrr@10, recall@100, queries, docs, docs_per_s (corpus
 * embedding throughput — on a cache hit, that of the run that filled the cache), corpus_cached, latency_ms {p50, p95}
 * per query (one query per embed call, encode + search, as the edge serves it), load_ms, model, workers.
 */
import { Command, InvalidArgumentError } from "commander";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseCorpus, parseQrels, parseQueries } from "../../src/eval/beir.js";
import { mean, mrrAt, ndcgAt, percentile, recallAt } from "../../src/eval/metrics.js";
import { denseSearch, documentText, packMatrix } from "../../src/retrieval/index.js";
import { DEFAULT_CACHE_DIR, cachedEmbed } from "./embedding-cache.js";
import type { PeerTextEncoder } from "./types.js";
import { createUseLitePeer, defaultUseLiteWorkers } from "./use-lite.js";

/** Ranking depth, as in bench/eval.ts: the metrics are computed on the top 1,000 per query. */
const CANDIDATES = 1000;

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError("expected a positive integer");
  return number;
}

const program = new Command()
  .name("tsx bench/peers/use-lite-eval.ts")
  .description("Evaluate USE-Lite (dense, cosine) on a BEIR dataset: NDCG@10, MRR@10, Recall@100, throughput, latency.")
  .option("--dataset <dir>", "BEIR folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv", "/work/shared/datasets/scifact")
  .option("--split <name>", "qrels split", "test")
  .option("--workers <n>", "model worker threads (default: min(2, cores))", positiveInteger)
  .option("--batch-size <n>", "texts per model call", positiveInteger)
  .option("--no-cache", "always re-embed the corpus (and do not write the cache)")
  .option("--cache-dir <dir>", "corpus embedding cache", DEFAULT_CACHE_DIR)
  .parse();

type Options = { dataset: string; split: string; workers?: number; batchSize?: number; cache: boolean; cacheDir: string };

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch {
    throw new Error(`cannot read ${what} at ${file}`);
  }
}

/** `peer.embed` in chunks with a progress line on stderr, for --no-cache. */
async function embedWithProgress(peer: PeerTextEncoder, texts: string[], onProgress: (done: number, total: number) => void) {
  const vectors: Float32Array[] = [];
  const started = performance.now();
  for (let start = 0; start < texts.length; start += 128) {
    vectors.push(...(await peer.embed(texts.slice(start, start + 128))));
    onProgress(vectors.length, texts.length);
  }
  return { vectors, embedSeconds: (performance.now() - started) / 1000, fromCache: false };
}

async function main(): Promise<void> {
  const options = program.opts<Options>();
  const corpus = parseCorpus(await readText(path.join(options.dataset, "corpus.jsonl"), "the corpus"));
  const queries = parseQueries(await readText(path.join(options.dataset, "queries.jsonl"), "the queries"));
  const qrels = parseQrels(await readText(path.join(options.dataset, "qrels", `${options.split}.tsv`), `the ${options.split} qrels`));
  const judged = queries.filter((query) => [...(qrels.get(query.id)?.values() ?? [])].some((gain) => gain > 0));
  if (judged.length === 0) throw new Error(`no query in queries.jsonl has a relevant document in qrels/${options.split}.tsv`);

  const loadStarted = performance.now();
  const peer = await createUseLitePeer({ workers: options.workers, batchSize: options.batchSize });
  const loadMs = performance.now() - loadStarted;
  try {
    console.error(`${peer.name}: loaded in ${Math.round(loadMs)} ms; ${corpus.length} docs, ${judged.length} judged queries`);
    const started = performance.now();
    const onProgress = (done: number, total: number) => {
      const rate = done / ((performance.now() - started) / 1000);
      console.error(`embedding corpus: ${done}/${total} docs, ${rate.toFixed(1)} docs/s, ~${Math.round((total - done) / rate)} s left`);
    };
    const texts = corpus.map(documentText);
    const embedded = options.cache
      ? await cachedEmbed(peer, texts, `${path.basename(path.resolve(options.dataset))}-corpus`, options.cacheDir, { onProgress })
      : await embedWithProgress(peer, texts, onProgress);
    if (embedded.fromCache) console.error("corpus embeddings read from the cache");
    const matrix = packMatrix(embedded.vectors, peer.dims);

    const perQuery = { ndcg10: [] as number[], mrr10: [] as number[], recall100: [] as number[] };
    const latencies: number[] = [];
    for (const query of judged) {
      const queryStarted = performance.now();
      const [vector] = await peer.embed([query.text]);
      const hits = denseSearch(matrix, peer.dims, vector!, CANDIDATES);
      latencies.push(performance.now() - queryStarted);
      const ranked = hits.map((hit) => corpus[hit.id]!.id);
      const judgements = qrels.get(query.id)!;
      perQuery.ndcg10.push(ndcgAt(10, ranked, judgements));
      perQuery.mrr10.push(mrrAt(10, ranked, judgements));
      perQuery.recall100.push(recallAt(100, ranked, judgements));
    }

    const round = (value: number) => Math.round(value * 10_000) / 10_000;
    const result = {
      model: peer.name,
      workers: options.workers ?? defaultUseLiteWorkers(),
      dataset: path.basename(path.resolve(options.dataset)),
      split: options.split,
      "ndcg@10": round(mean(perQuery.ndcg10)),
      "mrr@10": round(mean(perQuery.mrr10)),
      "recall@100": round(mean(perQuery.recall100)),
      queries: judged.length,
      docs: corpus.length,
      docs_per_s: Math.round((corpus.length / embedded.embedSeconds) * 10) / 10,
      corpus_cached: embedded.fromCache,
      latency_ms: { p50: Math.round(percentile(latencies, 50) * 10) / 10, p95: Math.round(percentile(latencies, 95) * 10) / 10 },
      load_ms: Math.round(loadMs),
    };
    console.log(JSON.stringify(result));
  } finally {
    await peer.release();
  }
}

main().catch((error: unknown) => {
  console.error(`use-lite eval failed: ${(error as Error).message}`);
  process.exit(1);
});

/**
 * `npm run eval`: retrieval quality of a TAESR artifact on a BEIR-layout dataset, in Node (onnxruntime-node).
 *
 *   npm run eval -- --dataset ../shared/datasets/scifact [--split test] [--mode dense|lexical|bm25|hybrid] [--dims 128]
 *                   [--depth auto|1|3|6] [--quant int8|fp32] [--model model-artifacts/<name>@<version>] [--out file.json]
 *                   [--fusion convex|rrf] [--weights <lexical>,<dense>] [--sweep]          (the last three: hybrid only)
 *                   [--run-file run.txt]   (TREC run format, top 1000 per query, for checking with trec_eval)
 *
 * Prints progress on stderr and one JSON object last on stdout: ndcg@10, mrr@10, recall@50, recall@100, map@100,
 * queries, docs, latency_ms {p50, p95} per query (encode + search), and the settings — in hybrid mode including the
 * fusion and the weights in effect (the fusion's defaults unless --weights). Documents are embedded the way the Worker
 * indexes them (title + "\n" + text, depth auto, batches of 16); queries one at a time, as the edge serves them.
 *
 * --sweep (hybrid) tunes the fusion weights without re-embedding: the candidate lists of every query are kept, then
 * re-fused with lexical weight 0.50, 0.55, …, 1.00 and dense = 1 − lexical under the chosen --fusion, and the JSON gains
 * `sweep: [{lexical, dense, "ndcg@10"}]`. Tune on a train split; report the chosen weights on test.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { Presets, SingleBar } from "cli-progress";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseCorpus, parseQrels, parseQueries } from "../src/eval/beir.js";
import { averagePrecisionAt, mean, mrrAt, ndcgAt, percentile, recallAt } from "../src/eval/metrics.js";
import { TaesrEncoder } from "../src/model/index.js";
import {
  bm25Search,
  combineRankings,
  denseSearch,
  documentText,
  hybridWeights,
  lexicalTerms,
  packMatrix,
  termFrequencies,
  type FusionMethod,
  type HybridList,
  type RankedHit,
  type SearchMode,
  type TermPostings,
} from "../src/retrieval/index.js";
import { WordPieceTokenizer } from "../src/tokenizer/index.js";
import { readArtifactDir } from "../workers/origin/src/artifact-files.js";
import { ortNode } from "../workers/origin/src/ort-node.js";
import { defaultArtifactDir } from "./default-artifact.js";

/** Depth of every ranking: the run file holds the top 1,000 per query as trec_eval expects, and the metrics are computed
 * on exactly that ranking, so `trec_eval` on the run file reproduces them. */
const CANDIDATES = 1000;

/** Lexical weights the sweep tries, in hundredths so the steps do not accumulate float error: 0.50, 0.55, …, 1.00. */
const SWEEP_LEXICAL = Array.from({ length: 11 }, (_, i) => (50 + 5 * i) / 100);

function choice<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!allowed.includes(value as T)) throw new InvalidArgumentError(`expected one of ${allowed.join(", ")}`);
    return value as T;
  };
}

/** "0.7,0.3" → {lexical: 0.7, dense: 0.3}: two finite numbers ≥ 0, lexical first, not both 0. */
function parseWeights(value: string): Record<HybridList, number> {
  const parts = value.split(",").map((part) => part.trim());
  const numbers = parts.map(Number);
  if (parts.length !== 2 || parts.some((part) => part === "") || numbers.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new InvalidArgumentError("expected <lexical>,<dense>: two numbers ≥ 0, e.g. 0.7,0.3");
  }
  if (numbers[0] === 0 && numbers[1] === 0) throw new InvalidArgumentError("at least one weight must be above 0");
  return { lexical: numbers[0]!, dense: numbers[1]! };
}

const program = new Command()
  .name("npm run eval --")
  .description("Evaluate a TAESR artifact on a BEIR dataset (NDCG@10, MRR@10, Recall@50/100, MAP@100, latency).")
  .requiredOption("--dataset <dir>", "BEIR folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
  .option("--split <name>", "qrels split", "test")
  .addOption(new Option("--mode <mode>", "retrieval mode").choices(["dense", "lexical", "bm25", "hybrid"]).default("dense"))
  .option("--dims <n>", "Matryoshka prefix", (v) => Number(choice(["64", "128", "256", "384"] as const)(v)), 128)
  .option("--depth <d>", "recursion depth: 1, 3, 6 or auto", choice(["1", "3", "6", "auto"] as const), "auto")
  .addOption(new Option("--quant <variant>", "model variant").choices(["int8", "fp32"]).default("int8"))
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .addOption(new Option("--fusion <method>", "hybrid fusion").choices(["convex", "rrf"]).default("convex"))
  .option("--weights <lexical,dense>", "hybrid fusion weights (default: the fusion's defaults)", parseWeights)
  .option("--sweep", "hybrid: also report NDCG@10 for lexical weights 0.50..1.00 (step 0.05), dense = 1 − lexical")
  .option("--limit-queries <n>", "evaluate only the first n judged queries (quick checks)", (v) => Number(v))
  .option("--out <file>", "also write the JSON result here")
  .option("--run-file <file>", "also write the ranking (top 1000 per query) in TREC run format: qid Q0 docid rank score tag")
  .parse();

type Options = {
  dataset: string;
  split: string;
  mode: SearchMode | "bm25";
  dims: number;
  depth: "1" | "3" | "6" | "auto";
  quant: "int8" | "fp32";
  fusion: FusionMethod;
  weights?: Record<HybridList, number>;
  sweep?: boolean;
  model?: string;
  limitQueries?: number;
  out?: string;
  runFile?: string;
};

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch {
    throw new Error(`cannot read ${what} at ${file}`);
  }
}

async function main(): Promise<void> {
  const parsed = program.opts<Options>();
  // "bm25" is the lexical mode by its usual name: BM25 over the tokenizer's word pieces.
  const options = { ...parsed, mode: (parsed.mode === "bm25" ? "lexical" : parsed.mode) as SearchMode };
  // Weights or a sweep outside hybrid mode would be silently ignored; say so instead of printing a misleading figure.
  if (options.mode !== "hybrid" && (options.weights || options.sweep)) throw new Error("--weights and --sweep need --mode hybrid");
  const modelDir = options.model ?? (await defaultArtifactDir());
  const depth = options.depth === "auto" ? ("auto" as const) : (Number(options.depth) as 1 | 3 | 6);

  const corpus = parseCorpus(await readText(path.join(options.dataset, "corpus.jsonl"), "the corpus"));
  const queries = parseQueries(await readText(path.join(options.dataset, "queries.jsonl"), "the queries"));
  const qrels = parseQrels(await readText(path.join(options.dataset, "qrels", `${options.split}.tsv`), `the ${options.split} qrels`));
  let judged = queries.filter((query) => [...(qrels.get(query.id)?.values() ?? [])].some((gain) => gain > 0));
  if (options.limitQueries) judged = judged.slice(0, options.limitQueries);
  if (judged.length === 0) throw new Error(`no query in queries.jsonl has a relevant document in qrels/${options.split}.tsv`);

  const artifact = await readArtifactDir(modelDir, [options.quant]);
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: artifact.manifest, files: artifact.files, variant: options.quant, tokenizer });
  const useDense = options.mode !== "lexical";
  const useLexical = options.mode !== "dense";

  let matrix = new Float32Array(0);
  if (useDense) {
    const bar = new SingleBar({ format: "embedding corpus [{bar}] {value}/{total} docs  {eta_formatted} left", stream: process.stderr }, Presets.shades_classic);
    bar.start(corpus.length, 0);
    const vectors: Float32Array[] = [];
    for (let start = 0; start < corpus.length; start += 16) {
      const batch = corpus.slice(start, start + 16).map(documentText);
      vectors.push(...(await encoder.embed(batch, { dims: options.dims as 64 | 128 | 256 | 384, depth })).embeddings);
      bar.update(Math.min(start + 16, corpus.length));
    }
    bar.stop();
    matrix = packMatrix(vectors, options.dims);
  }

  const postings = new Map<string, TermPostings<number>>();
  let totalLength = 0;
  if (useLexical) {
    corpus.forEach((document, docId) => {
      const terms = lexicalTerms(tokenizer.tokenize(documentText(document)));
      totalLength += terms.length;
      for (const [term, tf] of termFrequencies(terms)) {
        let entry = postings.get(term);
        if (!entry) postings.set(term, (entry = { df: 0, postings: [] }));
        entry.df++;
        entry.postings.push({ docId, tf, docLength: terms.length });
      }
    });
  }
  const stats = { docCount: corpus.length, avgDocLength: totalLength / Math.max(1, corpus.length) };

  const fusion = options.fusion;
  const weights = options.mode === "hybrid" ? hybridWeights(fusion, options.weights) : null;
  const perQuery = { ndcg10: [] as number[], mrr10: [] as number[], recall50: [] as number[], recall100: [] as number[], map100: [] as number[] };
  const latencies: number[] = [];
  const depths: number[] = [];
  /** Every query's candidate lists, kept only for --sweep (a few MB for SciFact train). */
  const runLines: string[] = [];
  const kept: { lists: { dense?: RankedHit<number>[]; lexical?: RankedHit<number>[] }; judgements: Map<string, number> }[] = [];
  for (const query of judged) {
    const started = performance.now();
    const lists: { dense?: RankedHit<number>[]; lexical?: RankedHit<number>[] } = {};
    if (useDense) {
      const embedded = await encoder.embed([query.text], { dims: options.dims as 64 | 128 | 256 | 384, depth });
      depths.push(embedded.depth);
      lists.dense = denseSearch(matrix, options.dims, embedded.embeddings[0]!, CANDIDATES);
    }
    if (useLexical) lists.lexical = bm25Search(lexicalTerms(tokenizer.tokenize(query.text)), stats, postings, CANDIDATES);
    const fused = combineRankings(options.mode, lists, { topK: CANDIDATES, fusion, weights: weights ?? undefined, candidates: CANDIDATES });
    const ranked = fused.map((hit) => corpus[hit.id]!.id);
    latencies.push(performance.now() - started);
    if (options.runFile) fused.forEach((hit, rank) => runLines.push(`${query.id} Q0 ${corpus[hit.id]!.id} ${rank + 1} ${hit.score} taesr-${options.mode}`));
    const judgements = qrels.get(query.id)!;
    if (options.sweep) kept.push({ lists, judgements });
    perQuery.ndcg10.push(ndcgAt(10, ranked, judgements));
    perQuery.mrr10.push(mrrAt(10, ranked, judgements));
    perQuery.recall50.push(recallAt(50, ranked, judgements));
    perQuery.recall100.push(recallAt(100, ranked, judgements));
    perQuery.map100.push(averagePrecisionAt(100, ranked, judgements));
  }

  const round = (value: number) => Math.round(value * 10_000) / 10_000;
  const sweep = options.sweep
    ? SWEEP_LEXICAL.map((lexical) => {
        const dense = Math.round((1 - lexical) * 100) / 100;
        const ndcg = kept.map(({ lists, judgements }) => {
          const ranked = combineRankings("hybrid", lists, { topK: CANDIDATES, fusion, weights: { lexical, dense }, candidates: CANDIDATES });
          return ndcgAt(10, ranked.map((hit) => corpus[hit.id]!.id), judgements);
        });
        return { lexical, dense, "ndcg@10": round(mean(ndcg)) };
      })
    : undefined;

  const result = {
    dataset: path.basename(path.resolve(options.dataset)),
    split: options.split,
    "ndcg@10": round(mean(perQuery.ndcg10)),
    "mrr@10": round(mean(perQuery.mrr10)),
    "recall@50": round(mean(perQuery.recall50)),
    "recall@100": round(mean(perQuery.recall100)),
    "map@100": round(mean(perQuery.map100)),
    queries: judged.length,
    docs: corpus.length,
    latency_ms: { p50: round(percentile(latencies, 50)), p95: round(percentile(latencies, 95)) },
    mode: options.mode,
    fusion: options.mode === "hybrid" ? fusion : null,
    weights,
    ...(sweep ? { sweep } : {}),
    dims: options.dims,
    depth: options.depth,
    mean_depth: depths.length ? round(mean(depths)) : null,
    quant: options.quant,
    model: `${artifact.manifest.name}@${artifact.manifest.version}`,
  };
  if (options.runFile) await writeFile(options.runFile, `${runLines.join("\n")}\n`);
  if (options.out) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval failed: ${(error as Error).message}`);
  process.exit(1);
});

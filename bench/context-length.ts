/**
 * `npm run eval:context-length -- --dataset ../shared/datasets/scifact [--split test] [--model <dir>] [--cuts 64,128,256,512]`
 *
 * How much of a corpus a model's context (architecture.maxLength) lets it read, and what the cut costs a ranker that
 * needs no training: BM25 over each document's first N word pieces (title + "\n" + text, the pieces the encoder reads,
 * with the artifact's tokenizer), against BM25 over the whole document. A large drop at the model's context says its
 * dense side is ranking abstracts it has read only the start of — the case for a longer context
 * (`npm run train -- --adapt … --max-length N`, training/src/model/context-length.ts).
 * Prints one JSON line: mean and median pieces per document, and per cut the share of documents it truncates and
 * BM25's NDCG@10 and Recall@100.
 */
import { Command, InvalidArgumentError } from "commander";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { mean, ndcgAt, percentile, recallAt } from "../src/eval/metrics.js";
import { parseManifest } from "../src/model/index.js";
import { bm25Search, buildBm25Postings, documentText, lexicalTerms } from "../src/retrieval/index.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../src/tokenizer/index.js";
import { defaultArtifactDir } from "./default-artifact.js";
import { judgementsOf, loadBeirDataset } from "./eval/dataset.js";

function cutList(value: string): number[] {
  const cuts = value.split(",").map((part) => Number(part.trim()));
  if (cuts.length === 0 || cuts.some((cut) => !Number.isInteger(cut) || cut < 1)) {
    throw new InvalidArgumentError(`expected comma-separated positive integers (word pieces), got "${value}"`);
  }
  return [...new Set(cuts)].sort((a, b) => a - b);
}

const program = new Command()
  .name("npm run eval:context-length --")
  .description("BM25 over each document's first N word pieces against the whole document: what a model's context cut costs.")
  .requiredOption("--dataset <dir>", "BEIR dataset directory")
  .option("--split <name>", "qrels split", "test")
  .option("--model <dir>", "artifact whose tokenizer cuts the documents (default: the one the Worker bundles)")
  .option("--cuts <list>", "document cuts in word pieces", cutList, [64, 128, 256, 512])
  .parse();
const options = program.opts<{ dataset: string; split: string; model?: string; cuts: number[] }>();

const round4 = (value: number) => Math.round(value * 1e4) / 1e4;

async function main(): Promise<void> {
  const modelDir = options.model ?? (await defaultArtifactDir());
  const manifest = parseManifest(await readFile(path.join(modelDir, "manifest.json"), "utf8"));
  const tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(path.join(modelDir, manifest.tokenizer), "utf8")) as TokenizerJSON);
  const dataset = await loadBeirDataset(options.dataset, options.split);
  const pieces = dataset.corpus.map((document) => tokenizer.tokenize(documentText(document)));
  const lengths = pieces.map((p) => p.length);
  const queryTerms = dataset.queries.map((query) => lexicalTerms(tokenizer.tokenize(query.text)));

  const rank = (cut: number | undefined) => {
    const { postings, stats } = buildBm25Postings(pieces.map((p) => lexicalTerms(cut === undefined ? p : p.slice(0, cut))));
    const ndcg: number[] = [];
    const recall: number[] = [];
    dataset.queries.forEach((query, q) => {
      const ranked = bm25Search(queryTerms[q]!, stats, postings, 100).map((hit) => dataset.corpus[hit.id]!.id);
      const judgements = judgementsOf(dataset, query.id);
      ndcg.push(ndcgAt(10, ranked, judgements));
      recall.push(recallAt(100, ranked, judgements));
    });
    return { "ndcg@10": round4(mean(ndcg)), "recall@100": round4(mean(recall)) };
  };

  const cuts = options.cuts.map((cut) => {
    const figures = rank(cut);
    console.error(`first ${cut} pieces: BM25 NDCG@10 ${figures["ndcg@10"].toFixed(4)}`);
    return { pieces: cut, truncated_share: round4(lengths.filter((n) => n > cut).length / lengths.length), ...figures };
  });
  console.log(
    JSON.stringify({
      dataset: dataset.name,
      split: options.split,
      queries: dataset.queries.length,
      docs: dataset.corpus.length,
      tokenizer: `${manifest.name}@${manifest.version}`,
      model_context: manifest.architecture.maxLength,
      doc_pieces: { mean: round4(mean(lengths)), p50: percentile(lengths, 50), p95: percentile(lengths, 95) },
      cuts,
      whole_document: rank(undefined),
    }),
  );
}

main().catch((error: unknown) => {
  console.error(`eval:context-length failed: ${(error as Error).message}`);
  process.exit(1);
});

/**
 * `npm run eval`: retrieval quality of a TAESR artifact (or a peer encoder) on a BEIR-layout dataset, in Node
 * (onnxruntime-node). The CLI over the library in bench/eval/ (dataset, corpus index, query embedding, evaluate,
 * result), which `npm run eval:ablations` (bench/ablations.ts) drives over a whole grid of settings.
 *
 *   npm run eval -- --dataset ../shared/datasets/scifact [--split test] [--mode bm25|dense|hybrid|late|sparse]
 *                   [--dims 64|128|256|384] [--depth 1|3|6|auto] [--no-early-exit] [--quant int8|fp32|binary]
 *                   [--vectors float|int8|binary|binary-rescore] [--projection matryoshka|pca]
 *                   [--model model-artifacts/<name>@<version>] [--encoder taesr|use-lite] [--out file.json]
 *                   [--fusion convex|rrf] [--weights <lexical>,<dense>] [--sweep]      (hybrid and late; --sweep hybrid only)
 *                   [--run-file run.txt]   (TREC run format, top 1000 per query, for checking with trec_eval)
 *
 * Prints progress on stderr and one JSON object last on stdout: ndcg@10, mrr@10, recall@50, recall@100, map@100,
 * queries, docs, latency_ms {p50, p95} per query (encode + search), and the settings — in hybrid mode including the
 * fusion and the weights in effect (the fusion's defaults unless --weights), then the vector format, projection, mean
 * query tokens, encoder FLOPs per query and index bytes per document. `lexical` is accepted as the old name of bm25.
 * Documents are embedded the way the Worker indexes them (title + "\n" + text, depth auto, batches of 16); queries one
 * at a time, as the edge serves them. With --depth 1|3|6 both sides run at that depth (a depth ablation: the Worker
 * itself indexes with the router).
 *
 * --quant chooses the model's arithmetic (fp32 or int8 graphs) and, as `binary`, the stored vectors too: int8 graphs,
 * documents kept as sign bits of the --dims prefix, a Hamming scan for the top 1,000 (10 × k, k = 100), then those
 * rescored with int8 document vectors against the float query. --vectors picks the stored form on its own (float, int8,
 * binary alone, binary + rescoring); --projection pca replaces the Matryoshka prefix by a PCA of the corpus vectors.
 *
 * --mode late: the hybrid ranking, its top 100 reranked by MaxSim over token vectors (int8 document matrices).
 * --mode sparse exits non-zero naming the artifact: no artifact has a sparse head yet (issue 4).
 * --encoder use-lite: the USE-Lite quality peer instead of TAESR (dense, or hybrid with BM25; its corpus embeddings
 * are cached under bench/out/cache); --dims, --depth, --quant and --projection do not apply to it.
 *
 * --sweep (hybrid) tunes the fusion weights without re-embedding: the candidate lists of every query are kept, then
 * re-fused with lexical weight 0.50, 0.55, …, 1.00 and dense = 1 − lexical under the chosen --fusion, and the JSON gains
 * `sweep: [{lexical, dense, "ndcg@10"}]`. Tune on a train split; report the chosen weights on test.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { writeFile } from "node:fs/promises";
import type { FusionMethod, HybridList } from "../src/retrieval/index.js";
import { defaultArtifactDir } from "./default-artifact.js";
import { DenseViews, buildLexicalIndex, embedCorpus, type CorpusPass, type Projection } from "./eval/corpus-index.js";
import { loadBeirDataset } from "./eval/dataset.js";
import {
  evaluate,
  sweepFusionWeights,
  usesDense,
  usesLexical,
  type EvalInputs,
  type EvalMode,
  type EvalSetting,
  type VectorFormat,
} from "./eval/evaluate.js";
import { openModel, sparseUnavailableReason } from "./eval/model.js";
import { PEER_ENCODERS, openPeerSide, type PeerEncoderName } from "./eval/peer.js";
import { encodeQueries } from "./eval/queries.js";
import { evalResultJson } from "./eval/result.js";
import { positiveInteger } from "./cli-options.js";

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
  .addOption(
    new Option("--mode <mode>", "retrieval mode (lexical = bm25)").choices(["dense", "bm25", "lexical", "hybrid", "late", "sparse"]).default("dense"),
  )
  .option("--dims <n>", "Matryoshka prefix (or PCA width)", (v) => Number(choice(["64", "128", "256", "384"] as const)(v)), 128)
  .option("--depth <d>", "recursion depth: 1, 3, 6 or auto", choice(["1", "3", "6", "auto"] as const), "auto")
  .option("--no-early-exit", "run the full depth the router (or --depth) asks for, never stopping on convergence")
  .addOption(new Option("--quant <variant>", "model variant; binary = int8 graphs + binary vectors with int8 rescoring").choices(["int8", "fp32", "binary"]).default("int8"))
  .addOption(new Option("--vectors <format>", "stored document vectors (default: float; binary-rescore with --quant binary)").choices(["float", "int8", "binary", "binary-rescore"]))
  .addOption(new Option("--projection <kind>", "how 384 dims become --dims").choices(["matryoshka", "pca"]).default("matryoshka"))
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .addOption(new Option("--encoder <name>", "dense encoder: our TAESR artifact or a quality peer").choices(["taesr", ...PEER_ENCODERS]).default("taesr"))
  .addOption(new Option("--fusion <method>", "hybrid fusion").choices(["convex", "rrf"]).default("convex"))
  .option("--weights <lexical,dense>", "hybrid fusion weights (default: the fusion's defaults)", parseWeights)
  .option("--sweep", "hybrid: also report NDCG@10 for lexical weights 0.50..1.00 (step 0.05), dense = 1 − lexical")
  .option("--limit-queries <n>", "evaluate only the first n judged queries (quick checks)", positiveInteger)
  .option("--out <file>", "also write the JSON result here")
  .option("--run-file <file>", "also write the ranking (top 1000 per query) in TREC run format: qid Q0 docid rank score tag")
  .parse();

type Options = {
  dataset: string;
  split: string;
  mode: EvalMode | "lexical";
  dims: number;
  depth: "1" | "3" | "6" | "auto";
  earlyExit: boolean;
  quant: "int8" | "fp32" | "binary";
  vectors?: VectorFormat;
  projection: Projection;
  encoder: "taesr" | PeerEncoderName;
  fusion: FusionMethod;
  weights?: Record<HybridList, number>;
  sweep?: boolean;
  model?: string;
  limitQueries?: number;
  out?: string;
  runFile?: string;
};

/** Options the user typed (not defaults), to reject combinations that would be silently ignored. */
function given(name: string): boolean {
  return program.getOptionValueSource(name) === "cli";
}

function checkCombinations(options: Options, mode: EvalMode): void {
  if (options.weights && mode !== "hybrid" && mode !== "late") throw new Error("--weights needs --mode hybrid or late");
  if (options.sweep && mode !== "hybrid") throw new Error("--sweep needs --mode hybrid");
  if (options.quant === "binary" && options.vectors && !options.vectors.startsWith("binary")) {
    throw new Error(`--quant binary stores binary vectors; --vectors ${options.vectors} contradicts it (use --quant int8 --vectors ${options.vectors})`);
  }
  if (options.encoder !== "taesr") {
    if (mode !== "dense" && mode !== "hybrid") throw new Error(`--encoder ${options.encoder} supports --mode dense and hybrid only`);
    const ours = ["dims", "depth", "quant", "projection", "earlyExit"].filter(given);
    if (ours.length) {
      const names = ours.map((o) => (o === "earlyExit" ? "--no-early-exit" : `--${o}`)).join(", ");
      throw new Error(`${names} ${ours.length === 1 ? "applies" : "apply"} to TAESR only, not to --encoder ${options.encoder}`);
    }
  }
}

async function main(): Promise<void> {
  const options = program.opts<Options>();
  // "lexical" is the old name of bm25: BM25 over the tokenizer's word pieces.
  const mode: EvalMode = options.mode === "lexical" ? "bm25" : options.mode;
  checkCombinations(options, mode);
  const modelDir = options.model ?? (await defaultArtifactDir());
  const variant = options.quant === "fp32" ? "fp32" : "int8";
  const model = await openModel(modelDir, [variant]);
  if (mode === "sparse") throw new Error(`--mode sparse: ${sparseUnavailableReason(model)}`);

  const dataset = await loadBeirDataset(options.dataset, options.split, { limitQueries: options.limitQueries });
  const inputs: EvalInputs = { dataset, tokenizer: model.tokenizer };
  if (usesLexical(mode)) inputs.lexical = buildLexicalIndex(model.tokenizer, dataset.corpus);

  const vectors: VectorFormat = options.vectors ?? (options.quant === "binary" ? "binary-rescore" : "float");
  let dims = options.dims;
  let context;
  if (options.encoder !== "taesr") {
    const peer = await openPeerSide(options.encoder, dataset);
    if (usesDense(mode)) {
      inputs.dense = new DenseViews(peer.index);
      inputs.queries = peer.queries;
    }
    dims = peer.dims;
    context = { depth: null, quant: null, modelVariant: null, earlyExit: null, model: peer.name, encoder: options.encoder };
    await peer.release();
  } else {
    const depth = options.depth === "auto" ? ("auto" as const) : (Number(options.depth) as 1 | 3 | 6);
    if (usesDense(mode)) {
      const encoder = await model.encoder(variant);
      const pass: CorpusPass = { variant, depth, earlyExit: options.earlyExit };
      const tokenVectors = mode === "late";
      inputs.dense = new DenseViews(await embedCorpus(encoder, dataset.corpus, pass, { tokenVectors }));
      inputs.queries = await encodeQueries(encoder, dataset.queries, pass, { tokenVectors, tokenizer: model.tokenizer });
      inputs.architecture = model.manifest.architecture;
    }
    context = {
      depth: options.depth,
      quant: options.quant,
      modelVariant: variant,
      earlyExit: options.earlyExit,
      model: model.label,
      encoder: "taesr",
    };
  }

  const setting: EvalSetting = { mode, dims, vectors, projection: options.projection, fusion: options.fusion, weights: options.weights };
  const outcome = evaluate(inputs, setting, { keepLists: options.sweep, runTag: options.runFile ? `taesr-${mode}` : undefined });
  const sweep = options.sweep ? sweepFusionWeights(outcome.kept!, dataset, options.fusion) : undefined;
  const result = evalResultJson({ ...context, dataset: dataset.name, split: options.split, modeName: options.mode }, setting, outcome, sweep);
  await model.release();

  if (options.runFile) await writeFile(options.runFile, `${outcome.runLines!.join("\n")}\n`);
  if (options.out) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval failed: ${(error as Error).message}`);
  process.exit(1);
});

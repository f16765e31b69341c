/**
 * `npm run eval`: retrieval quality of a TAESR artifact (or a peer encoder) on a BEIR-layout dataset, in Node
 * (onnxruntime-node). The CLI over the library in bench/eval/ (dataset, corpus index, query embedding, evaluate,
 * result), which `npm run eval:ablations` (bench/ablations.ts) drives over a whole grid of settings.
 *
 *   npm run eval -- --dataset ../shared/datasets/scifact [--split test] [--mode bm25|dense|hybrid|late|hybrid+late|sparse]
 *                   [--dims 64|128|256|384] [--depth 1|3|6|auto] [--no-early-exit] [--quant int8w|int8|int4|fp32|binary]
 *                   [--vectors float|int8|binary|binary-rescore] [--projection matryoshka|pca]
 *                   [--model model-artifacts/<name>@<version>] [--encoder taesr|use-lite] [--out file.json]
 *                   [--fusion convex|rrf] [--weights <lexical>,<dense>[,<sparse>]] [--sweep] [--no-sparse]
 *                                                                     (hybrid and late; --sweep hybrid only)
 *                   [--tune-fusion [--save]]   (hybrid: tune the fusion on this split; --save ships it in the manifest)
 *                   [--run-file run.txt]   (TREC run format, top 1000 per query, for checking with trec_eval)
 *                   [--router manifest|rule|fastrem [--router-file router.json]] [--query-depth 1|3|6] [--document-depth 1|3|6]
 *                   [--passages manifest|none|<maxPieces>x<maxPassages> [--passage-scoring mean|max]]   (documents as
 *                    passages: their pooled vector, or one stored vector per passage and a document's best passage as its
 *                    score; default as the Worker indexes them, the manifest's retrieval.documentPassages)
 *
 * Prints progress on stderr and one JSON object last on stdout: ndcg@10, mrr@10, recall@50, recall@100, map@100,
 * queries, docs, latency_ms {p50, p95} per query (encode + search), and the settings — in hybrid mode including the
 * fusion and the weights in effect and where their default came from (`fusion_default`: "manifest" when the artifact
 * ships a tuned fusion, "built-in" otherwise; --fusion and --weights override it as a search request's fields do in
 * the Worker), then the vector format, projection, mean query tokens, encoder FLOPs per query and index bytes per
 * document. `lexical` is accepted as the old name of bm25.
 * Documents are embedded the way the Worker indexes them (title + "\n" + text, at the manifest's document depth when it
 * chose one — bench/document-depth.ts — else depth auto, batches of 16); queries one
 * at a time, as the edge serves them. With --depth 1|3|6 both sides run at that depth (a depth ablation; --document-depth
 * fixes the documents alone).
 *
 * --quant chooses the model's arithmetic (fp32; int8; int4: the int8 step graph after a 4-bit token table; int8w: int8
 * weights in float arithmetic — the last two in artifacts that have them; default: the variant the Worker runs the
 * artifact in, src/model/manifest.ts edgeVariantFor) and, as `binary`, the stored vectors too: the Worker's graphs,
 * documents kept as sign bits of the --dims prefix, a Hamming scan for the top 1,000 (10 × k, k = 100), then those
 * rescored with int8 document vectors against the float query. --vectors picks the stored form on its own (float, int8,
 * binary alone, binary + rescoring); --projection pca replaces the Matryoshka prefix by a PCA of the corpus vectors.
 *
 * --mode late: the hybrid ranking, its top 100 reranked by MaxSim over token vectors (int8 document matrices): the
 *   artifact's trained late-interaction head when it has one, else the hidden-state stand-in (src/model/encoder.ts).
 * --mode hybrid+late: the Worker's rerank stage — the hybrid ranking's top k rescored by MaxSim fused with the hybrid
 *   score (src/retrieval/late.ts fuseLateInteraction), k and weights from the artifact's tuned `retrieval.late`, else
 *   the built-in k 50 / late 0.5; --rerank-k and --late-weight override them. With --tune-fusion it tunes k and the
 *   late weight over the artifact's hybrid fusion (bench/eval/late-tuning.ts; the JSON gains `late_tuning`), and --save
 *   writes `retrieval.late` into the manifest (same rules as the hybrid tuning: train-side queries, never test).
 * Hybrid and late modes of an artifact with the sparse head fuse its learned sparse list as a third, as the Worker does
 * (documents and queries embedded with their terms in the same call, cut as the Worker cuts them: every weight above 0,
 * at most 256 terms), at the tuned sparse weight (or the lexical one for a fusion tuned without it); `--no-sparse`
 * leaves it out, for the two-list figure of the same artifact (fused with the manifest's two-list tuning,
 * `withoutSparse`, as the Worker fuses a search that cannot read the list). --tune-fusion then grids all three weights
 * and, beside them, the two-list weights it saves as `withoutSparse`.
 * --mode sparse needs an artifact with the sparse head (architecture.sparseHead; bench/eval/sparse.ts) and exits
 * non-zero naming the artifact otherwise.
 * --encoder use-lite: the USE-Lite quality peer instead of TAESR (dense, or hybrid with BM25; its corpus embeddings
 * are cached under bench/out/cache); --dims, --depth, --quant and --projection do not apply to it.
 *
 * --sweep (hybrid) tunes the fusion weights without re-embedding: the candidate lists of every query are kept, then
 * re-fused with lexical weight 0.50, 0.55, …, 1.00 and dense = 1 − lexical under the chosen --fusion, and the JSON gains
 * `sweep: [{lexical, dense, "ndcg@10"}]`. Tune on a train split; report the chosen weights on test.
 *
 * --router picks what depth auto routes by (documents and queries, as in the Worker): the artifact's own router
 * (`manifest`, the default), its length rule (`rule`: ≤ 8 pieces → 1 step, ≤ 32 → 3, else 6, also for an artifact that
 * ships FastREM) or its trained FastREM router (`fastrem`; `--router-file` evaluates a router JSON written by
 * `npm run train:router -- --out` without touching the artifact). --query-depth runs the queries at a fixed depth while
 * documents stay at --depth: the per-query cost the router decides, against the same document vectors. The JSON gains
 * `router`, `query_depth` and `mean_doc_depth`; `mean_depth` is the queries' mean recursion steps.
 *
 * --tune-fusion (hybrid) grids convex lexical weight 0…1 and RRF lexical share 0…1 (step 0.05) over the kept lists
 * and picks the best NDCG@10 on this split (bench/eval/fusion-tuning.ts); the JSON gains `tuning` {chosen, components,
 * grid}. --save writes the choice into the artifact's manifest (`retrieval.fusion`, TAESR only, in the Worker's
 * setting: int8 graphs, float vectors, Matryoshka prefix, depth auto, early exit) and appends a line to
 * model-artifacts/CHANGELOG.md; it refuses --split test.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  DEFAULT_FUSION,
  DEFAULT_LATE_RERANK_DEPTH,
  DEFAULT_LATE_WEIGHTS,
  MAX_LATE_RERANK_DEPTH,
  fusionDefaultFor,
  sparseWeight,
  type FusionMethod,
  type RankingList,
} from "../src/retrieval/index.js";
import { edgeVariantFor, lengthRuleOf, MODEL_VARIANTS, parseFastRemRouter, parseManifest, type ArtifactManifest, type ModelVariant, type PassageOptions, type RouterSpec } from "../src/model/index.js";
import { defaultArtifactDir } from "./default-artifact.js";
import { DenseViews, SERVED_SPARSE_CUT, buildLexicalIndex, embedCorpus, indexedDocumentDepth, indexedDocumentPassages, type CorpusPass, type PassageScoring, type Projection } from "./eval/corpus-index.js";
import { loadBeirDataset } from "./eval/dataset.js";
import {
  evaluate,
  sweepFusionWeights,
  usesDense,
  usesLexical,
  usesTokens,
  type EvalInputs,
  type EvalMode,
  type EvalSetting,
  type VectorFormat,
} from "./eval/evaluate.js";
import { openModel, sparseUnavailableReason } from "./eval/model.js";
import { evaluateSparse } from "./eval/sparse.js";
import { PEER_ENCODERS, openPeerSide, type PeerEncoderName } from "./eval/peer.js";
import { encodeQueries } from "./eval/queries.js";
import { evalResultJson } from "./eval/result.js";
import {
  assertSplitTunable,
  neverBelowComponents,
  saveTunedFusion,
  tieNote,
  tunedFusionRecord,
  tuneFusion,
  fairTuningQueries,
  tuningJson,
} from "./eval/fusion-tuning.js";
import { passageSpec, positiveInteger } from "./cli-options.js";
import { lateTuningJson, saveTunedLateFusion, tunedLateRecord, tuneLateFusion } from "./eval/late-tuning.js";

function choice<T extends string>(allowed: readonly T[]) {
  return (value: string): T => {
    if (!allowed.includes(value as T)) throw new InvalidArgumentError(`expected one of ${allowed.join(", ")}`);
    return value as T;
  };
}

/** "0.7,0.3" → {lexical: 0.7, dense: 0.3}; "0.5,0.3,0.2" adds sparse 0.2: finite numbers ≥ 0, lexical first, not all 0. */
function parseWeights(value: string): Partial<Record<RankingList, number>> {
  const parts = value.split(",").map((part) => part.trim());
  const numbers = parts.map(Number);
  if ((parts.length !== 2 && parts.length !== 3) || parts.some((part) => part === "") || numbers.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new InvalidArgumentError("expected <lexical>,<dense>[,<sparse>]: two or three numbers ≥ 0, e.g. 0.7,0.3 or 0.5,0.3,0.2");
  }
  if (numbers.every((n) => n === 0)) throw new InvalidArgumentError("at least one weight must be above 0");
  return { lexical: numbers[0]!, dense: numbers[1]!, ...(numbers.length === 3 ? { sparse: numbers[2]! } : {}) };
}

const program = new Command()
  .name("npm run eval --")
  .description("Evaluate a TAESR artifact on a BEIR dataset (NDCG@10, MRR@10, Recall@50/100, MAP@100, latency).")
  .requiredOption("--dataset <dir>", "BEIR folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
  .option("--split <name>", "qrels split", "test")
  .addOption(
    new Option("--mode <mode>", "retrieval mode (lexical = bm25)").choices(["dense", "bm25", "lexical", "hybrid", "late", "hybrid+late", "sparse"]).default("dense"),
  )
  .option("--dims <n>", "Matryoshka prefix (or PCA width)", (v) => Number(choice(["64", "128", "256", "384"] as const)(v)), 128)
  .option("--depth <d>", "recursion depth: 1, 3, 6 or auto", choice(["1", "3", "6", "auto"] as const), "auto")
  .option("--no-early-exit", "run the full depth the router (or --depth) asks for, never stopping on convergence")
  .addOption(
    new Option("--quant <variant>", "model variant (default: the one the Worker runs, int8w where the artifact has it, else int8; int4: 4-bit token table + int8 step; int8w: int8 weights, float arithmetic); binary = the Worker's graphs + binary vectors with int8 rescoring")
      .choices([...MODEL_VARIANTS, "binary"]),
  )
  .addOption(new Option("--vectors <format>", "stored document vectors (default: float; binary-rescore with --quant binary)").choices(["float", "int8", "binary", "binary-rescore"]))
  .addOption(new Option("--projection <kind>", "how 384 dims become --dims").choices(["matryoshka", "pca"]).default("matryoshka"))
  .option("--model <dir>", "artifact directory (default: the one the Worker bundles)")
  .addOption(new Option("--encoder <name>", "dense encoder: our TAESR artifact or a quality peer").choices(["taesr", ...PEER_ENCODERS]).default("taesr"))
  .addOption(new Option("--fusion <method>", "hybrid fusion (default: the artifact's tuned fusion, else convex)").choices(["convex", "rrf"]))
  .option("--weights <lexical,dense[,sparse]>", "hybrid fusion weights (default: the artifact's tuned weights, else the fusion's constants)", parseWeights)
  .option("--no-sparse", "hybrid and late: leave out the learned sparse list of an artifact with the sparse head (the two-list fusion)")
  .option("--sparse-terms <n>", `sparse terms kept per text, documents and queries (default ${SERVED_SPARSE_CUT.maxTerms}, the Worker's cut): the sparsity ablation`, positiveInteger)
  .option("--rerank-k <n>", `hybrid+late: rerank the top n (1–${MAX_LATE_RERANK_DEPTH}; default: the artifact's tuned k, else ${DEFAULT_LATE_RERANK_DEPTH})`, positiveInteger)
  .option("--late-weight <w>", "hybrid+late: MaxSim's share of the fused score, 0–1 (default: the artifact's tuned weight, else 0.5)", (value) => {
    const weight = Number(value);
    if (value.trim() === "" || !(weight >= 0 && weight <= 1)) throw new InvalidArgumentError("expected a number from 0 to 1");
    return weight;
  })
  .option("--sweep", "hybrid: also report NDCG@10 for lexical weights 0.50..1.00 (step 0.05), dense = 1 − lexical")
  .option("--tune-fusion", "hybrid: grid convex and RRF weights (lexical 0..1, step 0.05) on this split and report the best")
  .option("--save", "with --tune-fusion: write the chosen fusion into the artifact's manifest and CHANGELOG (never on --split test)")
  .addOption(new Option("--router <kind>", "what depth auto routes by: the artifact's router, its length rule, or FastREM").choices(["manifest", "rule", "fastrem"]).default("manifest"))
  .option("--router-file <file>", "with --router fastrem: a FastREM router JSON (npm run train:router -- --out) instead of the manifest's")
  .option("--query-depth <d>", "queries only at this depth (documents stay at --depth)", choice(["1", "3", "6"] as const))
  .option("--document-depth <d>", "documents only at this depth (queries stay at --depth): the indexing cost against the same queries", choice(["1", "3", "6"] as const))
  .option(
    "--passages <spec>",
    'documents embedded as passages and pooled (src/model/passages.ts), <maxPieces>x<maxPassages> such as 120x8; "none": each document\'s first maxLength pieces; default "manifest": as the Worker indexes them (the artifact\'s retrieval.documentPassages, else none)',
    parsePassages,
    "manifest" as const,
  )
  .addOption(
    new Option("--passage-scoring <how>", "with --passages: a document's pooled vector, or its best passage (one stored vector per passage)")
      .choices(["mean", "max"])
      .default("mean"),
  )
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
  quant?: ModelVariant | "binary";
  vectors?: VectorFormat;
  projection: Projection;
  encoder: "taesr" | PeerEncoderName;
  fusion?: FusionMethod;
  weights?: Partial<Record<RankingList, number>>;
  sparse: boolean;
  sparseTerms?: number;
  sweep?: boolean;
  rerankK?: number;
  lateWeight?: number;
  tuneFusion?: boolean;
  save?: boolean;
  model?: string;
  router: "manifest" | "rule" | "fastrem";
  routerFile?: string;
  queryDepth?: "1" | "3" | "6";
  documentDepth?: "1" | "3" | "6";
  passages: PassageOptions | "none" | "manifest";
  passageScoring: PassageScoring;
  limitQueries?: number;
  out?: string;
  runFile?: string;
};

/** Options the user typed (not defaults), to reject combinations that would be silently ignored. */
function given(name: string): boolean {
  return program.getOptionValueSource(name) === "cli";
}

function checkCombinations(options: Options, mode: EvalMode): void {
  if (options.save) {
    // First, so the most important refusal is the one reported.
    assertSplitTunable(options.split);
    if (!options.tuneFusion) throw new Error("--save needs --tune-fusion");
    // The Worker fuses 128-d (or 64-d) float vectors of router-depth embeddings from its variant's graphs (the variant
    // is checked in main, once the manifest is read); weights tuned on another dense setting (another scale of cosines,
    // another quality) would be shipped to a setting they were not measured on.
    const served = (options.dims === 128 || options.dims === 64) && (options.vectors ?? "float") === "float" &&
      options.projection === "matryoshka" && options.depth === "auto" && options.earlyExit && options.router === "manifest" && !options.queryDepth && !options.documentDepth;
    if (!served) throw new Error("--save needs the Worker's dense setting: its variant (the --quant default), --dims 128 (or 64), float vectors, matryoshka projection, --depth auto, early exit on, the manifest's router, no --query-depth");
    if (options.encoder !== "taesr") throw new Error(`--save writes the TAESR artifact's manifest; weights tuned with --encoder ${options.encoder} do not belong there`);
    if (options.limitQueries !== undefined) throw new Error("--save tunes on the whole split; drop --limit-queries");
    // The Worker reads the sparse list of an artifact with the head: a two-list tuning would ship weights for a fusion
    // it does not run.
    if (!options.sparse) throw new Error("--save tunes the fusion the Worker runs, which reads the sparse list of an artifact with the sparse head; drop --no-sparse");
    if (options.sparseTerms !== undefined) throw new Error(`--save tunes the fusion the Worker runs, which cuts sparse terms at ${SERVED_SPARSE_CUT.maxTerms}; drop --sparse-terms`);
  }
  if (options.tuneFusion && mode !== "hybrid" && mode !== "hybrid+late") throw new Error("--tune-fusion needs --mode hybrid (or hybrid+late: the late rerank)");
  if ((options.rerankK !== undefined || options.lateWeight !== undefined) && mode !== "hybrid+late") throw new Error("--rerank-k and --late-weight need --mode hybrid+late");
  if (options.rerankK !== undefined && options.rerankK > MAX_LATE_RERANK_DEPTH) throw new Error(`--rerank-k must be at most ${MAX_LATE_RERANK_DEPTH}`);
  if (options.routerFile && options.router !== "fastrem") throw new Error("--router-file needs --router fastrem");
  if (options.weights && mode !== "hybrid" && mode !== "late" && mode !== "hybrid+late") throw new Error("--weights needs --mode hybrid, late or hybrid+late");
  if (options.sweep && mode !== "hybrid") throw new Error("--sweep needs --mode hybrid");
  if (!options.sparse && mode !== "hybrid" && mode !== "late" && mode !== "hybrid+late") throw new Error("--no-sparse needs --mode hybrid, late or hybrid+late");
  if (options.sparseTerms !== undefined && (!options.sparse || !["hybrid", "late", "hybrid+late", "sparse"].includes(mode))) {
    throw new Error("--sparse-terms needs a mode that reads the sparse list: --mode sparse, or hybrid / late / hybrid+late without --no-sparse");
  }
  if (options.quant === "binary" && options.vectors && !options.vectors.startsWith("binary")) {
    throw new Error(`--quant binary stores binary vectors; --vectors ${options.vectors} contradicts it (drop --quant to pair the Worker's graphs with --vectors ${options.vectors})`);
  }
  if (options.encoder !== "taesr") {
    if (mode !== "dense" && mode !== "hybrid") throw new Error(`--encoder ${options.encoder} supports --mode dense and hybrid only`);
    const ours = ["dims", "depth", "quant", "projection", "earlyExit", "router", "routerFile", "queryDepth", "documentDepth"].filter(given);
    if (ours.length) {
      const names = ours.map((o) => (o === "earlyExit" ? "--no-early-exit" : `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`)).join(", ");
      throw new Error(`${names} ${ours.length === 1 ? "applies" : "apply"} to TAESR only, not to --encoder ${options.encoder}`);
    }
  }
}

/** This run's arguments for the CHANGELOG, without the output files (they change nothing measured and name scratch paths). */
function commandArgs(): string[] {
  const files = ["--out", "--run-file"];
  const args = process.argv.slice(2);
  return args.filter((arg, i) => !files.includes(arg) && !files.includes(args[i - 1] ?? "") && !files.some((f) => arg.startsWith(`${f}=`)));
}

/**
 * The depth documents are embedded at when it is not --depth: the manifest's chosen document depth when it has one and
 * --depth is auto (as the Worker indexes them; bench/document-depth.ts), --document-depth over both; undefined → --depth.
 */
function documentDepthOf(options: Pick<Options, "depth" | "documentDepth">, manifest: ArtifactManifest): 1 | 3 | 6 | undefined {
  if (options.documentDepth) return Number(options.documentDepth) as 1 | 3 | 6;
  return options.depth === "auto" ? indexedDocumentDepth("auto", manifest) : undefined;
}

/** "--passages 120x8" → {maxPieces 120, maxPassages 8}; "none" and "manifest" as they are (checked against the model when it loads). */
function parsePassages(value: string): PassageOptions | "none" | "manifest" {
  if (value === "none" || value === "manifest") return value;
  if (!/^\d+x\d+$/.test(value)) throw new InvalidArgumentError(`expected "manifest", "none" or <maxPieces>x<maxPassages> such as 120x8, got "${value}"`);
  return passageSpec(value);
}

/** The router depth auto uses for `--router`, given the artifact's validated manifest (and a --router-file router). */
function chosenRouter(kind: Options["router"], manifest: ArtifactManifest, file: RouterSpec | undefined): RouterSpec {
  if (kind === "rule") return lengthRuleOf(manifest.router);
  if (kind === "fastrem") {
    if (file) return file;
    if (manifest.router.kind === "fastrem") return manifest.router;
    throw new Error(`${manifest.name}@${manifest.version} ships no FastREM router: train one (npm run train:router -- --model <dir> --out router.json) and pass --router-file router.json`);
  }
  return manifest.router;
}

async function main(): Promise<void> {
  const options = program.opts<Options>();
  // "lexical" is the old name of bm25: BM25 over the tokenizer's word pieces.
  const mode: EvalMode = options.mode === "lexical" ? "bm25" : options.mode;
  checkCombinations(options, mode);
  const modelDir = options.model ?? (await defaultArtifactDir());
  const servedVariant = edgeVariantFor(parseManifest(await readFile(path.join(modelDir, "manifest.json"), "utf8")));
  const quant = options.quant ?? servedVariant;
  const variant = quant === "binary" ? servedVariant : quant;
  if (options.save && options.passages !== "manifest") throw new Error("--save needs the documents as the Worker indexes them: drop --passages");
  if (options.passageScoring !== "mean" && typeof options.passages !== "object") throw new Error("--passage-scoring max scores a document by its best passage: give --passages (such as 120x8)");
  if (options.save && variant !== servedVariant) throw new Error(`--save needs the Worker's dense setting: --quant ${servedVariant}, the variant it runs this artifact in (got --quant ${quant})`);
  const routerFile = options.routerFile ? parseFastRemRouter(JSON.parse(await readFile(options.routerFile, "utf8"))) : undefined;
  const model = await openModel(modelDir, [variant], { router: (manifest) => chosenRouter(options.router, manifest, routerFile) });
  if (mode === "sparse") {
    if (!model.manifest.architecture.sparseHead) throw new Error(`--mode sparse: ${sparseUnavailableReason(model)}`);
    const dataset = await loadBeirDataset(options.dataset, options.split, { limitQueries: options.limitQueries });
    const depth = options.depth === "auto" ? ("auto" as const) : (Number(options.depth) as 1 | 3 | 6);
    const documentDepth = documentDepthOf(options, model.manifest);
    const maxTerms = options.sparseTerms ?? SERVED_SPARSE_CUT.maxTerms;
    const sparseResult = await evaluateSparse(await model.encoder(variant), model.tokenizer, dataset, { depth, ...(documentDepth !== undefined ? { documentDepth } : {}), earlyExit: options.earlyExit, maxTerms });
    const result = { ...sparseResult, split: options.split, quant, model: model.label, encoder: "taesr", model_variant: variant };
    await model.release();
    if (options.out) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result));
    return;
  }

  const dataset = await loadBeirDataset(options.dataset, options.split, { limitQueries: options.limitQueries });
  const inputs: EvalInputs = { dataset, tokenizer: model.tokenizer };
  if (usesLexical(mode)) inputs.lexical = buildLexicalIndex(model.tokenizer, dataset.corpus);

  const vectors: VectorFormat = options.vectors ?? (quant === "binary" ? "binary-rescore" : "float");
  let dims = options.dims;
  let context;
  let meanDocDepth: number | null = null;
  let documentPassages: { maxPieces: number; maxPassages: number; meanPassages: number; scoring: PassageScoring } | null = null;
  let sparseCut: { max_terms: number; mean_doc_terms: number } | undefined;
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
      const tokenVectors = usesTokens(mode);
      if (tokenVectors) {
        const source = encoder.tokenVectorSource;
        console.error(
          source.kind === "late-head"
            ? `late: token vectors from the trained late-interaction head (late.onnx, ${source.dims}-d)`
            : `late: ${model.label} has no late-interaction head; token vectors are the hidden-state stand-in (${source.dims}-d, src/model/encoder.ts)`,
        );
      }
      const documentDepth = documentDepthOf(options, model.manifest);
      const atDepth: CorpusPass = documentDepth !== undefined ? { ...pass, depth: documentDepth } : pass;
      const passages = options.passages === "manifest" ? indexedDocumentPassages(model.manifest) : options.passages === "none" ? undefined : options.passages;
      const documentPass: CorpusPass = passages === undefined ? atDepth : { ...atDepth, passages, passageScoring: options.passageScoring };
      // The learned sparse list, as the Worker fuses it: in fused modes of an artifact whose graphs include the head.
      const fused = mode === "hybrid" || mode === "late" || mode === "hybrid+late";
      const sparse = fused && options.sparse && encoder.hasSparse ? { ...SERVED_SPARSE_CUT, ...(options.sparseTerms ? { maxTerms: options.sparseTerms } : {}) } : undefined;
      if (sparse) console.error(`sparse: ${model.label} has the sparse head; hybrid fuses its learned terms as a third list (--no-sparse leaves them out)`);
      const corpus = await embedCorpus(encoder, dataset.corpus, documentPass, { tokenVectors, ...(sparse ? { sparse } : {}) });
      meanDocDepth = corpus.meanDocDepth;
      documentPassages = documentPass.passages ? { ...documentPass.passages, meanPassages: corpus.meanPassages ?? 1, scoring: options.passageScoring } : null;
      if (sparse && corpus.sparse) sparseCut = { max_terms: sparse.maxTerms, mean_doc_terms: Math.round((10 * corpus.sparse.postingCount) / Math.max(1, dataset.corpus.length)) / 10 };
      inputs.dense = new DenseViews(corpus);
      // --query-depth: the queries alone at a fixed depth, against the same document vectors.
      const queryPass: CorpusPass = options.queryDepth ? { ...pass, depth: Number(options.queryDepth) as 1 | 3 | 6 } : pass;
      // Queries route as the Worker routes them for this mode (a hybrid-labelled router serves hybrid and late only).
      inputs.queries = await encodeQueries(encoder, dataset.queries, queryPass, {
        tokenVectors,
        ...(sparse ? { sparse } : {}),
        tokenizer: model.tokenizer,
        ranking: mode === "dense" ? "dense" : "hybrid",
      });
      inputs.architecture = model.manifest.architecture;
    }
    context = {
      depth: options.depth,
      quant,
      modelVariant: variant,
      earlyExit: options.earlyExit,
      model: model.label,
      encoder: "taesr",
      router: model.manifest.router.kind,
      queryDepth: options.queryDepth ?? null,
      meanDocDepth,
      documentPassages,
    };
  }

  // The hybrid default as the Worker resolves it: the artifact's tuned fusion when it ships one (TAESR only: a peer
  // encoder's dense scores are not what was tuned), the built-in constant otherwise; --fusion/--weights override.
  const tuned = options.encoder === "taesr" ? model.manifest.retrieval?.fusion : undefined;
  // A search that does not read the sparse list gets a three-list default's two-list tuning (method included).
  const readsSparse = inputs.dense?.index.sparse !== undefined && sparseWeight(options.fusion ?? tuned?.method ?? DEFAULT_FUSION, options.weights, tuned) > 0;
  const fusion = options.fusion ?? (tuned ? fusionDefaultFor(tuned, readsSparse).method : DEFAULT_FUSION);
  // The rerank default as the Worker resolves it (model-loader.ts lateInForce): the tuned `retrieval.late`, else built-in.
  const tunedLate = options.encoder === "taesr" ? model.manifest.retrieval?.late : undefined;
  const lateWeights = options.lateWeight !== undefined ? { first: Number((1 - options.lateWeight).toFixed(6)), late: options.lateWeight } : (tunedLate?.weights ?? { ...DEFAULT_LATE_WEIGHTS });
  const late = mode === "hybrid+late" ? { k: options.rerankK ?? tunedLate?.k ?? DEFAULT_LATE_RERANK_DEPTH, weights: lateWeights } : undefined;
  const lateDefault = options.rerankK !== undefined || options.lateWeight !== undefined ? ("cli" as const) : tunedLate ? ("manifest" as const) : ("built-in" as const);
  const setting: EvalSetting = { mode, dims, vectors, projection: options.projection, fusion, weights: options.weights, defaults: tuned, ...(late ? { late } : {}) };
  const keepLists = options.sweep || options.tuneFusion;
  const outcome = evaluate(inputs, setting, { keepLists, runTag: options.runFile ? `taesr-${mode}` : undefined });
  const sweep = options.sweep ? sweepFusionWeights(outcome.kept!, dataset, fusion, outcome.weights?.sparse) : undefined;
  const fusionDefault = tuned ? ("manifest" as const) : ("built-in" as const);
  const result = evalResultJson({ ...context, dataset: dataset.name, split: options.split, modeName: options.mode, fusionDefault, lateDefault }, setting, outcome, sweep);
  // The learned sparse list's cut, when it took part (its weight in force is in `weights.sparse`).
  if (sparseCut && outcome.weights?.sparse !== undefined) result.sparse_terms = sparseCut;
  await model.release();

  if (options.tuneFusion && mode === "hybrid+late") {
    if (options.split === "test") console.error("warning: tuning on the test split; tune on a validation split (e.g. --split train) and report test");
    const fair = fairTuningQueries(outcome.kept!, model.manifest, { name: dataset.name, split: options.split });
    console.error(`tuning the late rerank on ${dataset.name} ${options.split}: ${fair.note ?? `${dataset.queries.length} queries`}, k × 21 late weights`);
    const tuning = tuneLateFusion(fair.kept, dataset);
    result.late_tuning = { ...lateTuningJson(tuning, options.split), ...(fair.note ? { queries_used: fair.note } : {}) };
    if (options.save) {
      const weights = outcome.weights!;
      const record = tunedLateRecord(tuning, { dataset: dataset.name, split: options.split, dims, variant, fusion: { method: fusion, weights } });
      const saved = await saveTunedLateFusion(modelDir, record, { command: `npm run eval -- ${commandArgs().join(" ")}`, note: fair.note });
      const where = saved.changelog ? ` and ${saved.changelog}` : " (no CHANGELOG.md beside the artifact folder)";
      console.error(`saved late rerank k ${record.k}, first ${record.weights.first} / late ${record.weights.late} into ${saved.manifest}${where}`);
      result.saved = { manifest: saved.manifest, changelog: saved.changelog, late: record };
    }
  } else if (options.tuneFusion) {
    if (options.split === "test") console.error("warning: tuning on the test split; tune on a validation split (e.g. --split train) and report test");
    const fair = options.encoder === "taesr" ? fairTuningQueries(outcome.kept!, model.manifest, { name: dataset.name, split: options.split }) : { kept: outcome.kept! };
    const grid = fair.kept[0]?.lists.sparse ? "the lexical/dense/sparse simplex in tenths" : "21 lexical weights";
    console.error(`tuning the fusion on ${dataset.name} ${options.split}: ${fair.note ?? `${dataset.queries.length} queries`}, convex and RRF × ${grid}`);
    const tuning = tuneFusion(fair.kept, dataset);
    result.tuning = { ...tuningJson(tuning, options.split), ...(fair.note ? { queries_used: fair.note } : {}) };
    if (options.save) {
      if (!neverBelowComponents(tuning)) throw new Error("the best fusion scores below one of its components on this split; not saving");
      const record = tunedFusionRecord(tuning, { dataset: dataset.name, split: options.split, dims, variant });
      const saved = await saveTunedFusion(modelDir, record, { command: `npm run eval -- ${commandArgs().join(" ")}`, note: [fair.note, tieNote(tuning)].filter(Boolean).join("; ") || undefined });
      const where = saved.changelog ? ` and ${saved.changelog}` : " (no CHANGELOG.md beside the artifact folder)";
      const sparseNote = record.weights.sparse !== undefined ? ` / sparse ${record.weights.sparse}` : "";
      console.error(`saved ${record.method} lexical ${record.weights.lexical} / dense ${record.weights.dense}${sparseNote} into ${saved.manifest}${where}`);
      result.saved = { manifest: saved.manifest, changelog: saved.changelog, fusion: record };
    }
  }

  if (options.runFile) await writeFile(options.runFile, `${outcome.runLines!.join("\n")}\n`);
  if (options.out) await writeFile(options.out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result));
}

main().catch((error: unknown) => {
  console.error(`eval failed: ${(error as Error).message}`);
  process.exit(1);
});

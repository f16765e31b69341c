/**
 * `npm run train:router -- --model model-artifacts/<name>@<version> [--dataset <BEIR dir>] [--split train]
 *   [--extra debian,wordnet|none] [--extra-queries N] [--metric ndcg@10|rr] [--folds 5] [--seed 42] [--l2 0.01]
 *   [--epochs 2000] [--lr 0.5] [--max-loss 0.01] [--confidence τ] [--limit-queries N] [--out router.json]
 *   [--retrieval dense|hybrid]
 *   [--labels-out labels.jsonl] [--write]`
 *
 * Trains the FastREM depth router (src/model/fastrem.ts) for one artifact:
 *  1. labels (labels.ts): each train query of the BEIR dataset (default: SciFact, `--split train`; test is refused) and
 *     up to --extra-queries held-out Debian/WordNet pairs per source is embedded at depths 1, 3 and 6 (int8 graphs,
 *     128-d, early exit on: as served) against documents embedded as the index embeds them (title + "\n" + text,
 *     batches of 16, depth auto under the artifact's length rule); the label is the smallest depth whose NDCG@10 (or RR)
 *     reaches depth 6's — on the dense ranking alone (`--retrieval dense`, the default) or on the hybrid ranking the
 *     Worker serves by default (`--retrieval hybrid`: BM25 fused with it by the artifact's tuned fusion; labels.ts);
 *  2. fit (fit.ts): softmax regression on the standardised features, gradient descent + L2, k-fold cross-validation
 *     for the held-out accuracy and for the decision confidence (the cheapest whose out-of-fold loss against always
 *     depth 6 is ≤ --max-loss, relative), then a refit on every example;
 *  3. report: one JSON object last on stdout (label counts per source, mean metric per depth, accuracy and confusion
 *     in sample and out of fold, the routed policy vs the length rule, the confidence grid, the router itself);
 *  4. `--write` puts the router into the artifact's manifest.json (`router`; the manifest is not in its own sha256 list,
 *     so no file changes) and appends a line to model-artifacts/CHANGELOG.md. `--out` writes the router JSON alone,
 *     which `npm run eval -- --router fastrem --router-file <file>` evaluates without touching the artifact.
 *
 * Relative paths resolve against the directory npm was started from (INIT_CWD), as in the other training CLIs.
 *
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { positiveInteger } from "../cli/options.js";
import {
  FASTREM_FEATURES,
  MODEL_VARIANTS,
  TaesrEncoder,
  edgeVariantFor,
  fastRemFeatureVector,
  fastRemVocab,
  lengthRuleOf,
  untrainedQueries,
  type FastRemVocab,
  type ModelVariant,
} from "../../../src/model/index.js";
import { WordPieceTokenizer } from "../../../src/tokenizer/index.js";
import { BUILT_IN_FUSION_DEFAULT, type FusionDefault } from "../../../src/retrieval/index.js";
import type { ArtifactManifest } from "../../../src/model/index.js";
import { readArtifactDir } from "../../../workers/origin/src/artifact-files.js";
import { readArtifactManifest } from "../model/artifact-weights.js";
import { ortNode } from "../../../workers/origin/src/ort-node.js";
import { sharedDatasetsDir } from "../data/corpora.js";
import { DEFAULT_FIT } from "./fit.js";
import { labelSources, smallestSufficient, type EmbedSetting, type LabelMetric, type LabelSource, type LabelledExample } from "./labels.js";
import {
  EXTRA_SOURCES,
  assertLabellingSplit,
  heldOutPairSources,
  heldOutSettings,
  loadBeirSource,
  trainRouterFromExamples,
  withLengthRule,
  writeRouter,
  type ExtraSource,
} from "./router-training.js";

function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number ≥ 0");
  return n;
}

function extraList(value: string): ExtraSource[] {
  if (value === "none" || value === "") return [];
  const names = value.split(",").map((s) => s.trim());
  for (const name of names) {
    if (!(EXTRA_SOURCES as readonly string[]).includes(name)) throw new InvalidArgumentError(`expected "none" or a list of ${EXTRA_SOURCES.join(", ")}`);
  }
  return [...new Set(names)] as ExtraSource[];
}

interface Options {
  model: string;
  dataset?: string;
  split: string;
  extra: ExtraSource[];
  extraQueries: number;
  metric: LabelMetric;
  retrieval: "dense" | "hybrid";
  variant?: ModelVariant;
  dims: number;
  folds: number;
  seed: number;
  l2: number;
  epochs: number;
  lr: number;
  maxLoss: number;
  confidence?: number;
  limitQueries?: number;
  out?: string;
  labelsOut?: string;
  labelsIn?: string;
  write?: boolean;
}

/** The hybrid fusion a search gets by default from this artifact: its tuned one (method and weights), else the built-in. */
function servedFusion(manifest: ArtifactManifest): FusionDefault {
  const tuned = manifest.retrieval?.fusion;
  if (!tuned) return { method: BUILT_IN_FUSION_DEFAULT.method, weights: { ...BUILT_IN_FUSION_DEFAULT.weights } };
  return { method: tuned.method, weights: { dense: tuned.weights.dense, lexical: tuned.weights.lexical } };
}

/** Examples from a --labels-out file (features recomputed from the text), refusing another artifact's labels. */
async function readLabels(
  file: string,
  model: string,
  retrieval: "dense" | "hybrid",
  tokenizer: { encode(text: string, options: { maxLength: number }): number[] },
  vocab: FastRemVocab,
  maxLength: number,
): Promise<{ sources: LabelSource[]; examples: LabelledExample[] }> {
  const rows = (await readFile(file, "utf8")).split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as Record<string, unknown>);
  const counts = new Map<string, { split: string; queries: number }>();
  const examples = rows.map((row, i): LabelledExample => {
    if (row["model"] !== model) throw new Error(`${file}:${i + 1}: labels of ${String(row["model"])}, not ${model}`);
    // Rows written before --retrieval existed were all dense.
    const labelledWith = row["retrieval"] ?? "dense";
    if (labelledWith !== retrieval) throw new Error(`${file}:${i + 1}: labelled on ${String(labelledWith)} retrieval, not ${retrieval} (--retrieval)`);
    const metrics = row["metrics"] as number[];
    const text = String(row["text"]);
    const ids = tokenizer.encode(text, { maxLength });
    const source = String(row["source"]);
    const entry = counts.get(source) ?? { split: String(row["split"]), queries: 0 };
    entry.queries++;
    counts.set(source, entry);
    return { source, id: String(row["id"]), text, tokens: ids.length, features: fastRemFeatureVector(ids, vocab, FASTREM_FEATURES), metrics, label: smallestSufficient(metrics) };
  });
  // Only the name, split and count of a source go into the router's record; documents are not needed to refit.
  const sources = [...counts].map(([dataset, { split, queries }]) => ({ dataset, split, documents: [], queries: new Array(queries).fill({ id: "", text: "", judgements: new Map() }) }));
  return { sources, examples };
}

/**
 * The source's queries the artifact never trained on. An artifact adapted on this dataset's train qrels scores its
 * trained queries well at every depth, so labels there would call depth 1 sufficient far more often than it is for a
 * new query: only the queries the adaptation held out by id are labelled (src/model/adaptation.ts untrainedQueries,
 * which refuses an adaptation that recorded none).
 */
function heldOutOfAdaptation(source: LabelSource, manifest: ArtifactManifest): LabelSource {
  const { queries, note } = untrainedQueries(source.queries, manifest, { name: source.dataset, split: source.split });
  if (note) console.error(`labelling ${note}`);
  return { ...source, queries };
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("npm run train:router --")
    .description("Train the FastREM depth router of a TAESR artifact on train-split queries (never test).")
    .requiredOption("--model <dir>", "artifact directory, model-artifacts/<name>@<version>")
    .option("--dataset <dir>", "BEIR folder (default: <shared datasets>/scifact)")
    .option("--split <name>", "qrels split to label from (test is refused)", "train")
    .option("--extra <sources>", `held-out pairs to add: none or a list of ${EXTRA_SOURCES.join(",")}`, extraList, [...EXTRA_SOURCES] as ExtraSource[])
    .option("--extra-queries <n>", "held-out pairs per extra source", positiveInteger, 300)
    .addOption(new Option("--metric <name>", "per-query metric the labels compare").choices(["ndcg@10", "rr"]).default("ndcg@10"))
    .addOption(
      new Option("--retrieval <mode>", "ranking the metric is taken on: dense alone, or hybrid with the artifact's fusion (what the Worker serves)")
        .choices(["dense", "hybrid"])
        .default("dense"),
    )
    .addOption(new Option("--variant <name>", "graphs to label with (default: the ones the edge runs this artifact in, int8w or int8)").choices(MODEL_VARIANTS))
    .option("--dims <n>", "Matryoshka width to label at (the edge serves 128)", positiveInteger, 128)
    .option("--folds <n>", "cross-validation folds (held-out accuracy, confidence choice)", positiveInteger, 5)
    .option("--seed <n>", "seed of the folds and of the extra-pair sample", (v) => {
      const n = Number(v);
      if (!Number.isInteger(n)) throw new InvalidArgumentError("expected an integer");
      return n;
    }, 42)
    .option("--l2 <x>", "L2 strength on the weights", nonNegative, DEFAULT_FIT.l2)
    .option("--epochs <n>", "gradient descent steps (full batch)", positiveInteger, DEFAULT_FIT.epochs)
    .option("--lr <x>", "learning rate", nonNegative, DEFAULT_FIT.learningRate)
    .option("--max-loss <x>", "relative metric loss vs always depth 6 allowed when choosing the confidence", nonNegative, 0.01)
    .option("--confidence <x>", "fixed decision confidence in (0, 1] instead of choosing one", (v) => {
      const n = Number(v);
      if (!(n > 0 && n <= 1)) throw new InvalidArgumentError("expected a number in (0, 1]");
      return n;
    })
    .option("--limit-queries <n>", "label only the first n judged queries of the dataset (quick checks; not with --write)", positiveInteger)
    .option("--out <file>", "also write the router JSON here (for npm run eval -- --router fastrem --router-file <file>)")
    .option("--labels-out <file>", "also write the labelled examples here (JSONL)")
    .option("--labels-in <file>", "fit from examples a previous --labels-out wrote (same artifact) instead of labelling again")
    .option("--write", "write the router into the artifact's manifest.json and append a CHANGELOG line")
    .parse(argv);
  const options = program.opts<Options>();
  assertLabellingSplit(options.split);
  if (options.write && options.limitQueries !== undefined) throw new Error("--write labels the whole split; drop --limit-queries");

  const base = process.env["INIT_CWD"] ?? process.cwd();
  const modelDir = path.resolve(base, options.model);
  const datasetDir = options.dataset ? path.resolve(base, options.dataset) : path.join(sharedDatasetsDir(), "scifact");

  const variant = options.variant ?? edgeVariantFor(await readArtifactManifest(modelDir));
  const artifact = await readArtifactDir(modelDir, [variant]);
  const manifest = artifact.manifest;
  const label = `${manifest.name}@${manifest.version}`;
  if (!manifest.architecture.matryoshkaDims.includes(options.dims)) {
    throw new Error(`--dims ${options.dims} is not one of ${label}'s Matryoshka widths (${manifest.architecture.matryoshkaDims.join(", ")})`);
  }
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const vocab = fastRemVocab(tokenizer);
  // Documents are embedded as the index embeds them: at the artifact's recorded document depth, else depth auto under
  // the length rule, whatever router the artifact ships now (re-training a FastREM artifact must not label against
  // documents its own old router placed).
  const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: withLengthRule(manifest), files: artifact.files, variant, tokenizer });
  const documentDepth = manifest.retrieval?.documentDepth?.depth ?? "auto";
  const { easy, medium, hard } = manifest.architecture.depths;
  const setting: EmbedSetting = {
    dims: options.dims,
    depths: [easy, medium, hard],
    documentDepth,
    ...(manifest.retrieval?.documentPassages
      ? { documentPassages: { maxPieces: manifest.retrieval.documentPassages.maxPieces, maxPassages: manifest.retrieval.documentPassages.maxPassages } }
      : {}),
    earlyExit: true,
    metric: options.metric,
    variant,
    // Hybrid labels use the fusion the artifact serves by default (its tuned one, else the built-in default).
    ...(options.retrieval === "hybrid" ? { retrieval: { mode: "hybrid" as const, fusion: servedFusion(manifest) } } : {}),
  };

  const started = performance.now();
  let sources: LabelSource[];
  let examples: LabelledExample[];
  if (options.labelsIn) {
    // Refitting (other features, L2, confidence) needs no forward pass: the labels depend only on the artifact.
    ({ sources, examples } = await readLabels(path.resolve(base, options.labelsIn), label, options.retrieval, tokenizer, vocab, manifest.architecture.maxLength));
    for (const s of sources) assertLabellingSplit(s.split);
  } else {
    sources = [
      heldOutOfAdaptation(await loadBeirSource(datasetDir, options.split, { limitQueries: options.limitQueries }), manifest),
      ...(await heldOutPairSources(options.extra, { ...heldOutSettings(manifest), perSource: options.extraQueries, seed: options.seed })),
    ];
    for (const s of sources) console.error(`labelling source ${s.dataset} (${s.split}): ${s.queries.length} queries, ${s.documents.length} documents`);
    let lastLog = 0;
    examples = await labelSources(encoder, tokenizer, vocab, FASTREM_FEATURES, sources, setting, (p) => {
      const now = performance.now();
      if (p.done === p.total || now - lastLog > 10_000) {
        lastLog = now;
        console.error(`  ${p.source}: ${p.phase} ${p.done}/${p.total} (${((now - started) / 1000).toFixed(0)} s)`);
      }
    });
  }
  await encoder.release();

  const { router, report } = trainRouterFromExamples(
    examples,
    { featureNames: FASTREM_FEATURES, depths: setting.depths, rule: lengthRuleOf(manifest.router), model: label, setting, sources },
    {
      fit: { l2: options.l2, epochs: options.epochs, learningRate: options.lr },
      folds: options.folds,
      seed: options.seed,
      maxRelativeLoss: options.maxLoss,
      ...(options.confidence !== undefined ? { confidence: options.confidence } : {}),
    },
  );

  if (options.out) await writeFile(path.resolve(base, options.out), `${JSON.stringify(router, null, 2)}\n`);
  if (options.labelsOut) {
    const splitOf = new Map(sources.map((s) => [s.dataset, s.split]));
    const lines = examples.map((e) =>
      JSON.stringify({ model: label, retrieval: options.retrieval, source: e.source, split: splitOf.get(e.source), id: e.id, text: e.text, tokens: e.tokens, metrics: e.metrics, label: e.label }),
    );
    await writeFile(path.resolve(base, options.labelsOut), `${lines.join("\n")}\n`);
  }
  let written: Awaited<ReturnType<typeof writeRouter>> | undefined;
  if (options.write) {
    const command = `npm run train:router -- ${argv.slice(2).filter((a, i, all) => !["--out", "--labels-out"].includes(a) && !["--out", "--labels-out"].includes(all[i - 1] ?? "")).join(" ")}`;
    written = await writeRouter(modelDir, router, command);
    console.error(`wrote the router into ${written.manifest}${written.changelog ? ` and a line into ${written.changelog}` : ""}`);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ model: label, setting, seconds: Math.round(seconds), report, router, written: written ?? null }, null, 2));
}

main(process.argv).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

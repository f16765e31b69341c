/**
 * Hands a finished run to the artifact exporter with the manifest's `training` and `eval` records: data sources and
 * pair counts (SciFact corpus use declared as unsupervised in-domain), steps, tokens, wall time, final losses and the
 * full config, and how the weights started when not at random (`initialisation`: GloVe token embeddings).
 *
 * A run with the "adapt" source (domain adaptation, `--adapt`) also gets the manifest's `adaptation` record: the base
 * artifact, the corpus, its pair kinds and counts, whether its train qrels were used (supervised in-domain), the ids
 * of the train queries held out of its supervised pairs (`holdoutQueries`: `heldOutQueries` with the rule that chose
 * them), and the held-out figures on the corpus's own pairs (the run's validation mixes in the general sources). `export.version`
 * "next" takes the next minor version free in the output directory.
 *
 * @module
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { TaesrArchitecture } from "../../../src/model/spec.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../../src/tokenizer/index.js";
import type { BackendName } from "../backend.js";
import { readAdaptCorpus, TRAIN_QRELS, type AdaptCorpusInfo } from "../data/adapt-corpus.js";
import { CORPUS_FILES, readBiomedProvenance, type BiomedProvenance } from "../data/corpora.js";
import { BM25 } from "../data/hard-negatives.js";
import { exportArtifact, nextMinorVersion } from "../export/artifact.js";
import { buildPairs, heldOutQueryIds, normKey, QUERY_HOLDOUT_RULE, type AdaptRecord, type PairStats } from "../data/pairs.js";
import { manifestTextWithMember } from "../export/manifest-edit.js";
import { heldOutRetrieval } from "./held-out-retrieval.js";
import { isDirectory, readArtifactManifest } from "../model/artifact-weights.js";
import { gloveProvenance } from "../model/glove-init.js";
import { paramsToFloat32, type TaesrParams } from "../model/params.js";
import { biomedFile, resolveFromConfig, type LoadedConfig, type TrainConfig } from "./config.js";
import { validate, type ValidationResult } from "./validate.js";

export interface ExportRunInput {
  config: TrainConfig;
  loaded: LoadedConfig;
  arch: TaesrArchitecture;
  params: TaesrParams;
  tokenizerJson: TokenizerJSON;
  pairs: PairStats;
  backend: BackendName;
  step: number;
  totalSteps: number;
  tokens: number;
  trainSeconds: number;
  lastLoss: Record<string, number>;
  validation: ValidationResult;
  log: (line: string) => void;
}

const SOURCE_NOTES: Record<string, string> = {
  debian: "Debian package descriptions: short description → long description; package name + short description → long description",
  wordnet: "WordNet 3.0 synsets: terms → definition; usage example → definition",
  scifact:
    "SciFact corpus titles and abstracts only, used UNSUPERVISED IN-DOMAIN (title → abstract; one sentence → rest of abstract). " +
    "No SciFact queries or qrels (train or test) were used; report zero-shot numbers beside this model's.",
  biomed:
    "Gene Ontology terms (term → definition; synonym → definition) and human protein-coding genes (symbol or alias → " +
    "full name and GO annotations; full name → annotations), from Debian's r-bioc-go.db and r-bioc-org.hs.eg.db " +
    "(npm run -w training corpus:biomed). No SciFact text.",
};

/** The pair kind adapt-corpus queries produce (pairs.ts adaptPairs). */
const TRAIN_QUERY_KIND = "train-query->text";

/** What the export says about an adaptation run's corpus (see {@link adaptationSummary}). */
export interface AdaptationSummary {
  corpus: AdaptCorpusInfo;
  /** The data-source note: what was read, and whether it was supervised. */
  note: string;
  /** The manifest's `adaptation` record. */
  record: Record<string, unknown>;
  /** Held-out figures on the corpus's own pairs. */
  inDomain: ValidationResult;
  /** The corpus as read, and the train query ids held out of it (empty without holdoutQueries or train qrels). */
  records: AdaptRecord[];
  heldOutIds: string[];
}

/** The manifest's words for `training.objectives.late.distill` (empty when the run had no teacher). */
function distillationObjective(distill: { weight: number; bm25?: number | undefined } | undefined): string {
  if (!distill) return "";
  const teacher =
    distill.bm25 !== undefined
      ? `the late head's in-batch MaxSim ranking fused with BM25 over the training documents (α ${distill.bm25})`
      : "the late head's in-batch MaxSim ranking";
  return `; the dense embedding also learns ${teacher} (KL to it as a fixed teacher: training.objectives.late.distill)`;
}

/**
 * Where a source's pairs came from: the adaptation corpus, the biomedical file built on this machine (with what it was
 * built from, since it is not shipped), or a shared corpus.
 */
function sourceOrigin(source: string, config: TrainConfig, adapt: AdaptationSummary | undefined): { file: string; builtFrom?: BiomedProvenance | string } {
  if (adapt) return { file: `${adapt.corpus.name}/${adapt.corpus.corpusFile}` };
  if (source === "biomed") {
    const file = biomedFile(config);
    return { file: path.basename(file), builtFrom: readBiomedProvenance(file) ?? "unknown (no provenance file beside the corpus)" };
  }
  return { file: `shared/datasets/${CORPUS_FILES[source as keyof typeof CORPUS_FILES]}` };
}

/** The manifest's `training` record. */
export function trainingRecord(input: ExportRunInput, adaptation?: AdaptationSummary): Record<string, unknown> {
  const dataSources = Object.fromEntries(
    Object.entries(input.pairs.bySource).map(([source, counts]) => {
      const adapt = source === "adapt" ? adaptation : undefined;
      return [
        source,
        {
          ...sourceOrigin(source, input.config, adapt),
          use: adapt ? adapt.note : SOURCE_NOTES[source],
          // Unique pairs; a repeated source also says how often each appears in the stream.
          trainPairs: counts.uniqueTrain ?? counts.train,
          ...(counts.repeat !== undefined ? { repeat: counts.repeat, trainPairsWithRepeats: counts.train } : {}),
          heldOutPairs: counts.validation,
          pairKinds: counts.kinds,
          // Which ranker mined the negatives says what the run learnt from (BM25's lexical look-alikes or the start
          // model's own confusions); the stats leave BM25 unnamed to keep old runs' fingerprints.
          ...(counts.hardNegatives ? { hardNegatives: { ...counts.hardNegatives, ranker: counts.hardNegatives.ranker ?? BM25 } } : {}),
        },
      ];
    }),
  );
  return {
    trainer: "training/src/train/trainer.ts",
    backend: input.backend,
    objective:
      "symmetric in-batch InfoNCE at every Matryoshka prefix and every supervised recursion step (deep supervision)" +
      distillationObjective(input.config.training.objectives?.late?.distill),
    ...(input.config.initEmbeddings === "glove" ? { initialisation: gloveProvenance() } : {}),
    dataSources,
    scifactCorpusUnsupervisedInDomain: input.pairs.bySource["scifact"] !== undefined,
    pairs: { train: input.pairs.train, validation: input.pairs.validation, duplicatesDropped: input.pairs.duplicatesDropped },
    steps: input.step,
    plannedSteps: input.totalSteps,
    tokens: input.tokens,
    wallTimeSeconds: Math.round(input.trainSeconds),
    finalLossByStep: input.lastLoss,
    config: input.config,
  };
}

/** The base the run started from: its description — "<name>@<version>" of an artifact, the path of a params file, or
 * "none" — and, when the run extended an artifact's vocabulary (model/vocab-extension.ts), that vocabulary's size. */
async function describeBase(input: ExportRunInput): Promise<{ description: string; extendedFrom?: number }> {
  const from = input.config.initFrom;
  if (!from) {
    return { description: input.config.initEmbeddings === "glove" ? "none (GloVe token embeddings, other weights random)" : "none (random initialisation)" };
  }
  const file = resolveFromConfig(input.loaded, from);
  if (!(await isDirectory(file))) return { description: from };
  const manifest = await readArtifactManifest(file);
  const size = manifest.architecture.vocabSize;
  return { description: `${manifest.name}@${manifest.version}`, ...(size < input.arch.vocabSize ? { extendedFrom: size } : {}) };
}

/**
 * The adaptation record of a run with the "adapt" source (undefined otherwise). The corpus is read again and its pairs
 * rebuilt alone with the run's options: the split is a hash of each pair's document id, independent of the seed and of
 * the other sources, so its held-out side is the run's held-out side for this corpus.
 */
export async function adaptationSummary(input: ExportRunInput): Promise<AdaptationSummary | undefined> {
  const { config } = input;
  const source = config.data.sources.adapt;
  const counts = input.pairs.bySource["adapt"];
  if (!source || !counts) return undefined;
  const corpus = await readAdaptCorpus(resolveFromConfig(input.loaded, source.dir));
  const own = await buildPairs(
    { adapt: corpus.records },
    {
      seed: config.seed,
      validationFraction: config.data.validationFraction,
      maxValidationPairs: config.data.maxValidationPairs,
      minDocChars: config.data.minDocChars,
      sources: { adapt: source },
    },
  );
  const queriesIn = (pairs: typeof own.train) => new Set(pairs.filter((p) => p.kind === TRAIN_QUERY_KIND).map((p) => normKey(p.query))).size;
  const trainQueries = queriesIn(own.train);
  const info = corpus.info;
  // Ids, not only the rule: an evaluation then needs neither this code's hash nor the corpus to know which queries
  // the run never trained on (bench/eval/fusion-tuning.ts fairTuningQueries).
  const holdout = source.holdoutQueries ?? 0;
  const heldOutIds = holdout > 0 && info.trainQrels ? heldOutQueryIds(corpus.records, holdout) : [];
  const heldOut = heldOutIds.length > 0 ? `; ${heldOutIds.length} more held out by query id for tuning (adaptation.heldOutQueries)` : "";
  const supervision =
    trainQueries > 0
      ? `supervised in-domain: ${trainQueries} train queries (${info.name}/${TRAIN_QRELS} only, score > 0; test and dev qrels never read)${heldOut}`
      : `unsupervised in-domain: documents only, no queries or qrels${info.trainQrels ? "" : ` (the corpus has no ${TRAIN_QRELS})`}`;
  const note =
    `Adaptation corpus "${info.name}" (${info.layout === "beir" ? "BEIR layout" : "JSONL"}, ${info.corpusFile}, ${info.documents} documents) ` +
    `used IN-DOMAIN: title → text; up to two sentences → rest of text${trainQueries > 0 ? "; train query → judged document" : ""}. ` +
    `${supervision.charAt(0).toUpperCase()}${supervision.slice(1)}. Report figures on this corpus as in-domain, beside the base model's.`;
  const dim = input.arch.matryoshkaDims.includes(128) ? 128 : (input.arch.matryoshkaDims[0] as number);
  const inDomain = validate(input.params, own.validation, WordPieceTokenizer.fromJSON(input.tokenizerJson), {
    depths: [...new Set([input.arch.depths.easy, input.arch.depths.medium, input.arch.depths.hard])],
    dim,
    maxQueryLength: config.training.maxQueryLength,
    maxDocLength: config.training.maxDocLength,
  });
  const streamTrain = Object.values(input.pairs.bySource).reduce((n, s) => n + s.train, 0);
  const base = await describeBase(input);
  const record: Record<string, unknown> = {
    base: base.description,
    corpus: info.name,
    corpusLayout: info.layout,
    corpusFile: info.corpusFile,
    documents: info.documents,
    pairKinds: counts.kinds,
    trainPairs: counts.uniqueTrain ?? counts.train,
    heldOutPairs: counts.validation,
    repeat: counts.repeat ?? 1,
    // The in-domain share of the training stream (the rest keeps the general sources' ability).
    streamShare: streamTrain > 0 ? Math.round((counts.train / streamTrain) * 1000) / 1000 : 0,
    trainQrelsUsed: trainQueries > 0,
    trainQueries,
    ...(info.trainQrels ? { trainQrels: info.trainQrels } : {}),
    // Train queries with no train-side pair (their documents still got the unsupervised ones); validation pairs of
    // held-out documents keep them, as the document split does for every query.
    ...(holdout > 0 && info.trainQrels ? { heldOutQueries: { fraction: holdout, rule: QUERY_HOLDOUT_RULE, count: heldOutIds.length, ids: heldOutIds } } : {}),
    supervision,
    ...(base.extendedFrom !== undefined ? { vocabularyExtended: { from: base.extendedFrom, to: input.arch.vocabSize } } : {}),
    otherSources: Object.keys(input.pairs.bySource).filter((s) => s !== "adapt"),
    inDomainHeldOut: inDomain,
  };
  return { corpus: info, note, record, inDomain, records: corpus.records, heldOutIds };
}

/**
 * A run that trained its documents at one fixed depth (training.documentSteps) exports a model whose documents must be
 * indexed at that depth: it never learnt to compare documents embedded at any other, so the depth goes into the
 * manifest (retrieval.documentDepth, which the indexer and the eval follow) rather than waiting for a tuning step.
 */
function documentDepthRecord(config: TrainConfig): { retrieval?: { documentDepth: { depth: number; trainedWith: { documentSteps: number[] } } } } {
  const steps = config.training.documentSteps;
  if (!steps || steps.length !== 1) return {};
  return { retrieval: { documentDepth: { depth: steps[0]!, trainedWith: { documentSteps: [steps[0]!] } } } };
}

/** Exports the artifact into the config's export.outDir; returns the artifact directory. */
export async function exportRun(input: ExportRunInput): Promise<string> {
  const { config } = input;
  const outDir = resolveFromConfig(input.loaded, config.export.outDir);
  const adaptation = await adaptationSummary(input);
  // Decided now, not when the run was configured: a run that took an hour (or was resumed) must not reuse a version
  // another export took meanwhile. exportArtifact refuses an existing directory in any case.
  const version = config.export.version === "next" ? await nextMinorVersion(outDir, config.export.name) : config.export.version;
  const result = await exportArtifact({
    outDir,
    name: config.export.name,
    version,
    arch: input.arch,
    weights: paramsToFloat32(input.params),
    tokenizerJson: input.tokenizerJson,
    router: { kind: "rule", ...config.export.router },
    earlyExitEpsilon: config.export.earlyExitEpsilon,
    training: trainingRecord(input, adaptation),
    eval: { heldOutValidation: input.validation, ...(adaptation ? { inDomainHeldOut: adaptation.inDomain } : {}) },
    ...(adaptation ? { adaptation: adaptation.record } : {}),
    ...documentDepthRecord(config),
    force: config.export.force,
  });
  input.log(`exported ${result.dir}`);
  if (adaptation?.heldOutIds.length) await recordHeldOutRetrieval(result.dir, adaptation, input.log);
  return result.dir;
}

/**
 * Ranks the adaptation corpus for its held-out train queries with the artifact just written (held-out-retrieval.ts)
 * and adds the figures to the manifest's `adaptation.heldOutQueries.retrieval`. After the export, because it runs the
 * exported graphs; the manifest is outside its own sha256 list, so the artifact's files do not change.
 */
async function recordHeldOutRetrieval(dir: string, adaptation: AdaptationSummary, log: (line: string) => void): Promise<void> {
  const t0 = performance.now();
  const retrieval = await heldOutRetrieval(dir, adaptation.records, adaptation.heldOutIds);
  if (!retrieval) return;
  const manifestPath = path.join(dir, "manifest.json");
  const text = await readFile(manifestPath, "utf8");
  const record = JSON.parse(text)["adaptation"] as Record<string, unknown>;
  const heldOut = { ...(record["heldOutQueries"] as Record<string, unknown>), retrieval };
  await writeFile(manifestPath, manifestTextWithMember(text, "adaptation", { ...record, heldOutQueries: heldOut }));
  log(
    `held-out train queries (${retrieval.queries}) against all ${retrieval.documents} documents, ${retrieval.dims}-d ${retrieval.variant}: ` +
      `dense NDCG@10 ${retrieval.dense.ndcg10}, BM25 ${retrieval.bm25.ndcg10} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
}

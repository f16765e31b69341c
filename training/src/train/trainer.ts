/**
 * The training loop: config → data → model → (loss, AdamW, clipping, schedule) → metrics, validation, checkpoints,
 * and the artifact export at the end.
 *
 * Exact resume: the batch order is a pure function of (seed, epoch), so a checkpoint stores only the cursor
 * (epoch, batch), the step and the parameter + moment tensors; a resumed run sees the same batches and applies
 * bit-identical updates on the same backend.
 *
 * @module
 */
import { appendFile, mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { parseManifest } from "../../../src/model/manifest.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../../src/tokenizer/index.js";
import { weightNames, weightNamesIn, type ArtifactManifest, type TaesrArchitecture, type WeightName } from "../../../src/model/spec.js";
import { initBackend, type BackendName } from "../backend.js";
import { PairBatcher } from "../data/batches.js";
import { BatchBm25 } from "../data/lexical-scores.js";
import { labelRows } from "../data/subspace-labels.js";
import { CORPUS_FILES, readBiomedCorpus, readDebianPackages, readSciFactCorpus, readWordNetSynsets } from "../data/corpora.js";
import { buildPairs, type PairInputs, type PairSet, type PairSource } from "../data/pairs.js";
import { adaptRecords } from "../data/adapt-corpus.js";
import { bm25Ranker, mineHardNegatives, type HardNegativeOptions } from "../data/hard-negatives.js";
import { openDenseRanker, type DenseRanker } from "../data/dense-negatives.js";
import { lexicalTerms } from "../../../src/retrieval/lexical.js";
import { hashString } from "../data/random.js";
import { isDirectory, loadArtifactWeights } from "../model/artifact-weights.js";
import { applyGloveInit, loadGlove } from "../model/glove-init.js";
import { extendedTokenRows } from "../model/vocab-extension.js";
import { extendsVocabulary } from "../tokenizer/extend-vocab.js";
import { contextChangeRefusal, resizePositionTable } from "../model/context-length.js";
import { initParams, initWeights, loadParams, parameterCount, paramsFromWeights, paramsToFloat32, saveParams, type TaesrParams, type TaesrWeights } from "../model/params.js";
import { biomedFile, configDir, loadConfig, resolveFromConfig, type LoadedConfig, type TrainConfig } from "./config.js";
import { loadLatestCheckpoint, restoreVariables, saveCheckpoint, type CheckpointState, type DataCursor } from "./checkpoint.js";
import type { ContrastiveLossOptions } from "./loss.js";
import { GradientWorkerError, GradientWorkerPool, type WorkerResult } from "./data-parallel.js";
import { microBatchGradients } from "./micro-batch.js";
import { sparseObjectiveAt } from "./sparse-loss.js";
import { lateObjectiveOf } from "./late-loss.js";
import {
  balancedClassWeights,
  createSubspaceObjective,
  describeClassWeights,
  PROBE_POPULATION_DRAWS,
  disposeObjective,
  probeCheckpointTensors,
  probesToFloat32,
  restoreProbes,
  type ProbeName,
  type SubspaceObjective,
} from "./subspace-loss.js";
import { AdamW, clipByGlobalNorm, learningRate } from "./optimizer.js";
import { createProgress, type Progress } from "./progress.js";
import { exportRun } from "./export.js";
import { heldOutProbeFor, probeHeldOut } from "./held-out-probe.js";
import { validate, type ValidationResult } from "./validate.js";
import { createMetricsSink, type MetricsSink } from "./wandb-logger.js";

export interface TrainOptions {
  /** Path of the config JSON. */
  config: string;
  /** Defaults to training/runs/<config.name>/. */
  runDir?: string;
  /** Continue from the newest checkpoint in the run dir (a fresh start when there is none). */
  resume?: boolean;
  /** Stop (with a checkpoint) after this much training wall time in this process. */
  maxMinutes?: number;
  /** Stop (with a checkpoint) after this many updates in this process; the schedule is unchanged (tests). */
  stopAfterSteps?: number;
  /** Skip training: export the newest checkpoint (or the fresh init when there is none). */
  exportOnly?: boolean;
  /** Show the progress bar (default: on). */
  progress?: boolean;
  /** Diagnostic lines (default: stderr). */
  log?: (line: string) => void;
  /**
   * The session is a gradient worker's: rank 0 sends it the weights with every update, so its own are placeholders of
   * the right shapes and `initFrom` is not read (for a vocabulary-extending run that read loads GloVe, ~1 GB).
   */
  weightsFromRank0?: boolean;
}

export interface TrainResult {
  runDir: string;
  step: number;
  totalSteps: number;
  stoppedBy: "done" | "time" | "stopAfterSteps" | "export";
  /** Loss of each supervised step at the last logged update (key = recursion step). */
  lastLoss: Record<string, number>;
  /** Every update's total loss in this process, in order (tests and quick curves). */
  lossHistory: number[];
  tokens: number;
  trainSeconds: number;
  validation?: ValidationResult;
  exportDir?: string;
  finalParamsPath?: string;
}

/** training/runs/, next to src/ in the training package (gitignored). */
export const DEFAULT_RUNS_DIR = fileURLToPath(new URL("../../runs/", import.meta.url));

function openSources(config: TrainConfig): PairInputs {
  const s = config.data.sources;
  const inputs: PairInputs = {};
  if (s.debian) inputs.debian = readDebianPackages();
  if (s.wordnet) inputs.wordnet = readWordNetSynsets();
  if (s.scifact) inputs.scifact = readSciFactCorpus();
  // Relative to the config file, like every path in a config (the CLI's --adapt writes one beside its run).
  if (s.adapt) inputs.adapt = adaptRecords(path.resolve(configDir(config) ?? process.cwd(), s.adapt.dir));
  if (s.biomed) inputs.biomed = readBiomedCorpus(biomedFile(config));
  return inputs;
}

/** Fields that shape the model or the data stream; a resume with any of them changed would not be a continuation. */
function resumeKey(config: TrainConfig): string {
  const t = config.training;
  return JSON.stringify({
    arch: config.arch,
    data: config.data,
    seed: config.seed,
    tokenizer: config.tokenizer,
    initFrom: config.initFrom,
    // Only when set: the keys of runs that never asked for GloVe stay what they were ("random" is the same start).
    ...(config.initEmbeddings === "glove" ? { initEmbeddings: "glove" } : {}),
    batch: [t.batchSize, t.maxQueryLength, t.maxDocLength],
    // Micro-batches per update: changing it changes which batches each update sees.
    microBatchesPerUpdate: t.workers * t.accumulationSteps,
  });
}

/** Heads a config may add to an initFrom source that lacks them: their weights come last (spec.ts) and are all new. */
const ADDABLE_HEADS = ["sparseHead", "lateHead"] as const satisfies readonly (keyof TaesrArchitecture)[];

/** An architecture field for comparison, its default and its absence alike (block "self_attention", sparseHead false). */
function archField(a: TaesrArchitecture, key: keyof TaesrArchitecture): string | undefined {
  const value = a[key];
  if ((key === "block" && value === "self_attention") || (key === "sparseHead" && value === false)) return undefined;
  return value === undefined ? undefined : JSON.stringify(value);
}

/**
 * The weights of `file` as trainable variables, after checking they were trained for this architecture. `file` is a
 * params file (final.taesr, a checkpoint's params) or an artifact directory, whose fp32 graphs are read back and whose
 * manifest gives the architecture. Two differences are allowed: the config adds a head (sparseHead, lateHead) the source
 * lacks — the shared weights are loaded and the head's own weights get the seeded initialisation a fresh model of this
 * architecture would have (they are drawn last, so they are the same numbers) — a self-attention model's context
 * (maxLength) changes: its position table is resized (model/context-length.ts) — and the config's tokenizer extends the
 * artifact's (`vocabulary`, tokenizer/extend-vocab.ts): the new entries get rows (model/vocab-extension.ts).
 */
export async function paramsFrom(
  file: string,
  arch: TaesrArchitecture,
  seed: number,
  log: (message: string) => void,
  vocabulary?: TokenizerJSON,
): Promise<TaesrParams> {
  let loaded;
  try {
    loaded = (await isDirectory(file)) ? await loadArtifactWeights(file) : await loadParams(file);
  } catch (error) {
    throw new Error(`initFrom: cannot read weights from ${file}: ${(error as Error).message}`);
  }
  const source = loaded.architecture;
  const keys = [...new Set([...Object.keys(arch), ...Object.keys(source)])] as (keyof TaesrArchitecture)[];
  const differing = keys.filter((key) => archField(source, key) !== archField(arch, key));
  const added = differing.filter((key) => (ADDABLE_HEADS as readonly string[]).includes(key) && archField(source, key) === undefined);
  const grown = source.vocabSize < arch.vocabSize;
  const other = differing.filter((key) => !added.includes(key) && key !== "maxLength" && !(key === "vocabSize" && grown));
  if (other.length > 0) {
    const show = (a: TaesrArchitecture) => other.map((key) => `${key} ${JSON.stringify(a[key])}`).join(", ");
    throw new Error(`initFrom: ${file} was trained with ${show(source)}, this config has ${show(arch)}`);
  }
  const weights = { ...loaded.weights };
  const notes: string[] = [];
  if (grown) notes.push(await extendVocabularyRows(file, loaded, weights, arch, vocabulary));
  if (source.maxLength !== arch.maxLength) {
    const refusal = contextChangeRefusal(source, arch);
    if (refusal) throw new Error(`initFrom: ${file} was trained with maxLength ${source.maxLength}, this config has ${arch.maxLength}; ${refusal}`);
    weights["embed.position"] = resizePositionTable(weights["embed.position"], source.maxLength, arch.maxLength, arch.hidden);
    notes.push(
      arch.maxLength > source.maxLength
        ? `its ${source.maxLength} positions tiled to ${arch.maxLength}`
        : `its position table cut to the first ${arch.maxLength} of ${source.maxLength}`,
    );
  }
  if (added.length > 0) {
    const inSource = new Set(weightNames(source));
    const fresh = weightNames(arch).filter((name) => !inSource.has(name));
    const initial = initWeights(arch, seed);
    for (const name of fresh) weights[name] = initial[name];
    notes.push(`it has no ${added.join(" or ")}: ${fresh.join(", ")} start from the seed-${seed} initialisation`);
  }
  log(`initialised from ${file}${notes.length > 0 ? `; ${notes.join("; ")}` : ""}`);
  return paramsFromWeights(arch, weights);
}

/**
 * Appends rows for the words an extended vocabulary adds (model/vocab-extension.ts) to `weights` in place, after checking
 * the config's tokenizer keeps every entry of the source's at its id. Only an artifact directory records the tokenizer
 * its weights were trained with, so only one can be extended. Returns the log note.
 */
async function extendVocabularyRows(
  file: string,
  loaded: { architecture: TaesrArchitecture; manifest?: ArtifactManifest },
  weights: TaesrWeights,
  arch: TaesrArchitecture,
  vocabulary: TokenizerJSON | undefined,
): Promise<string> {
  const from = loaded.architecture.vocabSize;
  if (!loaded.manifest || !vocabulary) {
    throw new Error(
      `initFrom: ${file} has a ${from}-entry vocabulary and this config ${arch.vocabSize}; a vocabulary can only be extended from an ` +
        "artifact directory (its tokenizer.json says which entries the rows belong to)",
    );
  }
  const sourceTokenizer = path.join(file, ...loaded.manifest.tokenizer.split("/"));
  let base: TokenizerJSON;
  try {
    base = JSON.parse(await readFile(sourceTokenizer, "utf8")) as TokenizerJSON;
  } catch (error) {
    throw new Error(`initFrom: cannot read ${sourceTokenizer}: ${(error as Error).message}`);
  }
  if (!extendsVocabulary(base.vocab, vocabulary.vocab)) {
    throw new Error(
      `initFrom: this config's tokenizer (${vocabulary.vocab.length} entries) does not keep the ${base.vocab.length} entries of ${sourceTokenizer} ` +
        "at their ids; make it with `npm run extend-vocab -- --base <artifact>` so the trained rows stay meaningful",
    );
  }
  const rows = extendedTokenRows({
    base,
    extended: vocabulary.vocab,
    hidden: arch.hidden,
    table: weights["embed.token"],
    glove: await loadGlove(),
    ...(arch.sparseHead ? { sparseBias: weights["sparse.bias"] } : {}),
  });
  weights["embed.token"] = rows.table;
  if (rows.sparseBias) weights["sparse.bias"] = rows.sparseBias;
  return (
    `vocabulary extended ${from} → ${arch.vocabSize}: ${rows.fromGlove} new rows from GloVe through a map fitted to its trained rows ` +
    `(${rows.fit.words} whole words, R² ${rows.fit.r2.toFixed(3)}), ${rows.fromPieces} as the mean of their old pieces`
  );
}

/** After training.newRowsFirst the whole model starts learning: its learning rate ramps up again over warmupSteps. */
function rewarm(step: number, newRows: Session["newRows"], warmupSteps: number): number {
  if (!newRows || step < newRows.updates || warmupSteps === 0) return 1;
  return Math.min(1, (step - newRows.updates + 1) / warmupSteps);
}

/** The vocabulary size of the artifact a run starts from, which training.newRowsFirst needs to be smaller than the run's. */
async function initFromVocabSize(dir: string, arch: TaesrArchitecture): Promise<number> {
  if (!(await isDirectory(dir))) {
    throw new Error(`training.newRowsFirst: initFrom ${dir} is not an artifact directory (only an artifact's vocabulary can be extended)`);
  }
  const from = parseManifest(await readFile(path.join(dir, "manifest.json"), "utf8")).architecture.vocabSize;
  if (from >= arch.vocabSize) {
    throw new Error(`training.newRowsFirst: the tokenizer (${arch.vocabSize} entries) adds no rows to initFrom's ${from}; it needs a vocabulary extended with \`npm run extend-vocab\``);
  }
  return from;
}

/**
 * During training.newRowsFirst: the update's gradients cut to the rows the vocabulary extension added — embed.token
 * rows and sparse.bias entries from `from` on — with every other gradient disposed (a weight without one is left
 * unchanged by AdamW).
 */
function newRowsOnly(grads: Record<string, tf.Tensor>, from: number): Record<string, tf.Tensor> {
  const kept: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) {
    if (name === "embed.token" || name === "sparse.bias") {
      kept[name] = tf.tidy(() => {
        const rows = g.shape[0]!;
        const mask = tf.concat([tf.zeros([from]), tf.ones([rows - from])]);
        return tf.mul(g, g.rank === 2 ? tf.reshape(mask, [rows, 1]) : mask);
      });
    }
    g.dispose();
  }
  return kept;
}

function dataFingerprint(pairs: PairSet): string {
  let h = hashString(JSON.stringify(pairs.stats));
  // The negative joins the hash only when there is one, so runs without negatives keep their fingerprints.
  for (const p of pairs.train) h = hashString(p.query + "\u0000" + p.doc + (p.negative !== undefined ? "\u0000" + p.negative : ""), h % 2 ** 31);
  return h.toString(16);
}

/** Everything the loop needs, built once per process. */
interface Session {
  loaded: LoadedConfig;
  config: TrainConfig;
  arch: TaesrArchitecture;
  backend: BackendName;
  tokenizer: WordPieceTokenizer;
  tokenizerJson: TokenizerJSON;
  pairs: PairSet;
  batcher: PairBatcher;
  totalSteps: number;
  params: TaesrParams;
  optimizer: AdamW;
  runDir: string;
  lossOptions: ContrastiveLossOptions;
  /** The subspace probes and their optimiser (training.objectives.subspaces; training-only, never exported). */
  subspaces?: SubspaceObjective;
  /** training.newRowsFirst on rank 0: the vocabulary size of initFrom (rows from here on are new) and the updates
   * in which only they learn. */
  newRows?: { from: number; updates: number };
  fingerprint: string;
  log: (line: string) => void;
}

/** This process's data-parallel rank: gradient workers are started with it in the environment (data-parallel.ts). */
export function processRank(): number {
  return Number(process.env["TAESR_GRADIENT_WORKER_RANK"] ?? 0);
}

/**
 * With `training.gpuDevices`, restricts this process to its rank's GPU. CUDA reads CUDA_VISIBLE_DEVICES when the
 * native backend initialises, so this runs before initBackend; the device then appears to the process as GPU 0.
 */
function pinGpuDevice(config: TrainConfig): void {
  const devices = config.training.gpuDevices;
  if (!devices) return;
  const rank = processRank();
  const device = devices[rank];
  if (device === undefined) throw new Error(`training.gpuDevices has no device for rank ${rank} (${devices.length} listed)`);
  process.env["CUDA_VISIBLE_DEVICES"] = device;
}

/**
 * Mines hard negatives for every source whose config asks for them, recording the counts in the pair stats (they
 * are part of the data fingerprint, so a resumed run with other negatives is refused). BM25 ranks unless the source
 * asks for "dense", which ranks with the initFrom artifact (opened once, for every source that wants it).
 */
async function minePairNegatives(pairs: PairSet, loaded: LoadedConfig, tokenizer: WordPieceTokenizer, log: (line: string) => void): Promise<void> {
  const { config } = loaded;
  const bm25 = bm25Ranker((text: string) => lexicalTerms(tokenizer.tokenize(text)));
  let dense: DenseRanker | undefined;
  const denseRanker = async (): Promise<DenseRanker> => {
    if (dense) return dense;
    const dir = resolveFromConfig(loaded, config.initFrom!);
    if (!(await isDirectory(dir))) {
      throw new Error(`hardNegatives.ranker "dense" ranks with the initFrom artifact's ONNX graphs; ${dir} is not an artifact directory`);
    }
    dense = await openDenseRanker(dir);
    return dense;
  };
  try {
    for (const [source, options] of Object.entries(config.data.sources) as [PairSource, { hardNegatives?: HardNegativeOptions } | undefined][]) {
      if (!options?.hardNegatives) continue;
      const t0 = performance.now();
      const ranker = options.hardNegatives.ranker === "dense" ? await denseRanker() : bm25;
      const stats = await mineHardNegatives(pairs.train, source, options.hardNegatives, ranker, config.seed);
      const bySource = pairs.stats.bySource[source];
      if (bySource) bySource.hardNegatives = stats;
      log(
        `${source}: ${stats.mined} hard negatives by ${ranker.name} (${stats.none} pairs without one` +
          (stats.copyNegatives !== undefined ? `; ${stats.copyNegatives} over their copies` : "") +
          `) from ${stats.indexed} documents ` +
          `in ${((performance.now() - t0) / 1000).toFixed(1)} s` +
          (stats.missingKinds ? `; no pairs of kind ${stats.missingKinds.join(", ")} to mine for` : ""),
      );
    }
  } finally {
    await dense?.release();
  }
}

/** The recursion steps the subspace probes read and their weights: objectives.subspaces.steps equally weighted, or
 * the contrastive loss's steps with its weights. */
function subspaceSteps(t: TrainConfig["training"]): [steps: readonly number[], weights: readonly number[]] {
  const own = t.objectives?.subspaces?.steps;
  if (own) return [own, own.map(() => 1)];
  return [t.lossSteps, t.lossStepWeights ?? t.lossSteps.map(() => 1)];
}

/** BM25 over the run's training documents, for the lexical distillation teacher (data/lexical-scores.ts). */
function lexicalTeacher(pairs: PairSet, tokenizer: WordPieceTokenizer, log: (line: string) => void): BatchBm25 {
  const t0 = performance.now();
  const lexical = new BatchBm25(pairs.train, (text: string) => lexicalTerms(tokenizer.tokenize(text)));
  log(`distillation teacher: BM25 over ${lexical.documentCount} training documents in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return lexical;
}

async function setUp(opts: TrainOptions): Promise<Session> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[taesr] ${line}\n`));
  const loaded = await loadConfig(opts.config);
  const { config } = loaded;
  pinGpuDevice(config);
  const backend = await initBackend(config.backend);

  const tokenizerPath = resolveFromConfig(loaded, config.tokenizer);
  let tokenizerJson: TokenizerJSON;
  try {
    tokenizerJson = JSON.parse(await readFile(tokenizerPath, "utf8")) as TokenizerJSON;
  } catch (err) {
    throw new Error(`cannot load tokenizer ${tokenizerPath}: ${(err as Error).message}`);
  }
  const tokenizer = WordPieceTokenizer.fromJSON(tokenizerJson);
  if (config.arch.vocabSize !== undefined && config.arch.vocabSize !== tokenizer.vocabSize) {
    throw new Error(`arch.vocabSize is ${config.arch.vocabSize} but the tokenizer ${tokenizerPath} has ${tokenizer.vocabSize} tokens`);
  }
  const arch: TaesrArchitecture = { ...config.arch, vocabSize: tokenizer.vocabSize };

  const t0 = performance.now();
  const pairs = await buildPairs(openSources(config), {
    seed: config.seed,
    validationFraction: config.data.validationFraction,
    maxValidationPairs: config.data.maxValidationPairs,
    minDocChars: config.data.minDocChars,
    sources: config.data.sources,
  });
  await minePairNegatives(pairs, loaded, tokenizer, log);
  log(
    `pairs: ${pairs.stats.train} train, ${pairs.stats.validation} validation ` +
      `(${pairs.stats.duplicatesDropped} duplicates dropped) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const t = config.training;
  const lexical = t.objectives?.late?.distill?.bm25 !== undefined ? lexicalTeacher(pairs, tokenizer, log) : undefined;
  const batcher = new PairBatcher(pairs.train, tokenizer, {
    batchSize: t.batchSize,
    maxQueryLength: t.maxQueryLength,
    maxDocLength: t.maxDocLength,
    seed: config.seed,
    ...(t.objectives?.subspaces ? { probeRows: t.objectives.subspaces.rows } : {}),
    ...(lexical ? { lexical } : {}),
  });
  // Estimated once from the batcher's own draws, so every data-parallel rank and a resume get the same weights.
  const probeClassWeights =
    t.objectives?.subspaces?.classBalance === "inverse-frequency" ? balancedClassWeights(labelRows(batcher.probePopulation(PROBE_POPULATION_DRAWS))) : undefined;
  if (probeClassWeights) log(`subspace probes: class weights ${describeClassWeights(probeClassWeights)}`);
  const batchesPerEpoch = batcher.epochBatches(0).length;
  // An update consumes workers × accumulationSteps batches, so an epoch is that many times fewer updates.
  const totalSteps = t.steps ?? Math.max(1, Math.ceil(((t.epochs ?? 1) * batchesPerEpoch) / (t.workers * t.accumulationSteps)));
  log(
    `${batchesPerEpoch} batches of ${t.batchSize} per epoch; ${totalSteps} updates of ${t.workers * t.accumulationSteps} ` +
      `(${((totalSteps * t.workers * t.accumulationSteps) / batchesPerEpoch).toFixed(2)} epochs)`,
  );

  const params = config.initFrom && !opts.weightsFromRank0
    ? await paramsFrom(resolveFromConfig(loaded, config.initFrom), arch, config.seed, log, tokenizerJson)
    : initParams(arch, config.seed);
  const optimizer = new AdamW(params, { beta1: t.beta1, beta2: t.beta2, eps: t.adamEps, weightDecay: t.weightDecay });
  const newRows = t.newRowsFirst !== undefined && !opts.weightsFromRank0 ? { from: await initFromVocabSize(resolveFromConfig(loaded, config.initFrom!), arch), updates: t.newRowsFirst } : undefined;
  if (newRows) log(`updates 1–${newRows.updates}: only the ${arch.vocabSize - newRows.from} token rows the vocabulary extension added learn`);
  log(`model: H=${arch.hidden} heads=${arch.heads} ffn=${arch.ffn} V=${arch.vocabSize} L=${arch.maxLength}, ${parameterCount(arch)} parameters`);

  return {
    loaded,
    config,
    arch,
    backend,
    tokenizer,
    tokenizerJson,
    pairs,
    batcher,
    totalSteps,
    params,
    optimizer,
    runDir: path.resolve(opts.runDir ?? path.join(DEFAULT_RUNS_DIR, config.name)),
    lossOptions: {
      temperature: t.temperature,
      symmetric: t.symmetric,
      dims: arch.matryoshkaDims,
      steps: t.lossSteps,
      stepWeights: t.lossStepWeights ?? t.lossSteps.map(() => 1),
      crossSteps: t.crossStepLoss,
      ...(t.documentSteps ? { documentSteps: t.documentSteps } : {}),
    },
    ...(t.objectives?.subspaces
      ? {
          subspaces: createSubspaceObjective(t.objectives.subspaces, ...subspaceSteps(t), {
            beta1: t.beta1,
            beta2: t.beta2,
            eps: t.adamEps,
            weightDecay: t.weightDecay,
          }, config.seed, probeClassWeights),
        }
      : {}),
    ...(newRows ? { newRows } : {}),
    fingerprint: dataFingerprint(pairs),
    log,
  };
}

interface StepOutcome {
  loss: number;
  perStep: number[];
  /** Mean of each objective over the update's micro-batches ({} when only the dense loss is trained). */
  objectives: Record<string, number>;
  gradNorm: number;
  skipped: boolean;
  tokens: number;
  paddedTokens: number;
}

/**
 * One optimizer update over `microBatches` (pair indices): rank 0 runs the first `accumulationSteps` of them while the
 * gradient workers run theirs, then the mean gradient is clipped and applied (data-parallel.ts).
 */
async function trainStep(
  s: Session,
  microBatches: number[][],
  lr: number,
  pool: GradientWorkerPool | undefined,
  step = 0,
): Promise<StepOutcome> {
  const share = s.config.training.accumulationSteps;
  const shares = pool ? Array.from({ length: pool.size }, (_, i) => microBatches.slice((i + 1) * share, (i + 2) * share)) : [];
  // The children's work must be fully handed over before rank 0's own (synchronous) compute, or both cores do not work
  // at once (data-parallel.ts dispatch).
  const probes = s.subspaces ? probesToFloat32(s.subspaces.probes) : undefined;
  const remote = pool ? (await pool.dispatch(paramsToFloat32(s.params), shares, step, probes)).results : Promise.resolve([]);
  const local = microBatchGradients(
    s.params,
    s.lossOptions,
    microBatches.slice(0, share).map((indices) => s.batcher.encode(indices)),
    {
      checkpoint: s.config.training.gradientCheckpointing,
      sparse: sparseObjectiveAt(s.config.training.objectives?.sparse, step),
      late: lateObjectiveOf(s.config.training.objectives?.late, s.config.training.lossSteps),
      ...(s.subspaces ? { subspaces: { probes: s.subspaces.probes, loss: s.subspaces.loss } } : {}),
      headsOnly: s.config.training.trainHeadsOnly ?? false,
      ...(s.config.training.gradientCache ? { gradientCache: s.config.training.gradientCache } : {}),
    },
  );
  let results: WorkerResult[];
  try {
    results = await remote;
  } catch (error) {
    for (const g of [...Object.values(local.gradSums), ...Object.values(local.auxGradSums ?? {})]) g.dispose();
    throw error;
  }
  const losses = [...local.losses, ...results.flatMap((r) => r.losses)];
  const perStepRows = [...local.perStep, ...results.flatMap((r) => r.perStep)];
  const count = losses.length;
  const mean = {} as Record<WeightName, tf.Tensor>;
  // Every weight the ranks differentiated (the heads alone under trainHeadsOnly).
  for (const name of weightNamesIn(local.gradSums)) {
    mean[name] = tf.tidy(() => {
      let sum: tf.Tensor = local.gradSums[name];
      for (const r of results) sum = tf.add(sum, tf.tensor(r.gradSums[name], local.gradSums[name].shape, "float32"));
      return tf.div(sum, count);
    });
    local.gradSums[name].dispose();
  }
  const loss = losses.reduce((a, b) => a + b, 0) / count;
  const perStep = (perStepRows[0] ?? []).map((_, k) => perStepRows.reduce((a, row) => a + (row[k] ?? 0), 0) / count);
  const objectiveRows = [...local.objectives, ...results.flatMap((r) => r.objectives ?? [])];
  const objectives = meanRecord(objectiveRows);
  // The probes' gradients are averaged the same way and clipped with the model's (one global norm per update).
  const probeMean = {} as Record<ProbeName, tf.Tensor>;
  for (const [name, localSum] of Object.entries(local.auxGradSums ?? {}) as [ProbeName, tf.Tensor][]) {
    probeMean[name] = tf.tidy(() => {
      let sum: tf.Tensor = localSum;
      for (const r of results) {
        const remoteSum = r.auxGradSums?.[name];
        if (!remoteSum) throw new Error(`a gradient worker sent no gradient for the subspace probe ${name}`);
        sum = tf.add(sum, tf.tensor(remoteSum, localSum.shape, "float32"));
      }
      return tf.div(sum, count);
    });
    localSum.dispose();
  }
  const learning = s.newRows && step < s.newRows.updates ? newRowsOnly({ ...mean, ...probeMean }, s.newRows.from) : s.subspaces ? { ...mean, ...probeMean } : mean;
  const clipped = clipByGlobalNorm(learning, s.config.training.clipNorm);
  // A non-finite loss or gradient would poison the moments for good: skip the update and let the log show it.
  const skipped = !Number.isFinite(loss) || !Number.isFinite(clipped.norm);
  if (!skipped) {
    s.optimizer.apply(clipped.grads, lr);
    s.subspaces?.optimizer.apply(clipped.grads, lr * s.subspaces.lrScale);
  }
  for (const g of Object.values(clipped.grads)) g.dispose();
  for (const g of [...Object.values(mean), ...Object.values(probeMean)]) if (!g.isDisposed) g.dispose();
  return {
    loss,
    perStep,
    objectives,
    gradNorm: clipped.norm,
    skipped,
    tokens: local.tokens + results.reduce((a, r) => a + r.tokens, 0),
    paddedTokens: local.paddedTokens + results.reduce((a, r) => a + r.paddedTokens, 0),
  };
}

/** The next `count` batches from `cursor` (crossing into the next epoch when one runs out) and the cursor after them. */
function takeMicroBatches(s: Session, cursor: DataCursor, count: number): { microBatches: number[][]; next: DataCursor } {
  const microBatches: number[][] = [];
  let { epoch, batch } = cursor;
  while (microBatches.length < count) {
    const indices = s.batcher.epochBatches(epoch)[batch];
    if (!indices) {
      epoch += 1;
      batch = 0;
      continue;
    }
    microBatches.push(indices);
    batch += 1;
  }
  return { microBatches, next: { epoch, batch } };
}

function checkpointTensors(s: Session): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const n of weightNamesIn(s.params)) {
    out[`param.${n}`] = s.params[n];
    out[`adam.m.${n}`] = s.optimizer.m[n] as tf.Variable;
    out[`adam.v.${n}`] = s.optimizer.v[n] as tf.Variable;
  }
  return s.subspaces ? { ...out, ...probeCheckpointTensors(s.subspaces) } : out;
}

/** The mean of each key over records (keys missing from a record count as absent, not as 0). */
function meanRecord(rows: readonly Record<string, number>[]): Record<string, number> {
  const sums = new Map<string, { sum: number; n: number }>();
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) {
      const e = sums.get(k) ?? { sum: 0, n: 0 };
      e.sum += v;
      e.n += 1;
      sums.set(k, e);
    }
  }
  return Object.fromEntries([...sums].map(([k, { sum, n }]) => [k, sum / n]));
}

function roundRecord(r: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v)]));
}

function round(x: number, digits = 5): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const s = await setUp(opts);
  // W&B (only when WANDB_API_KEY is set) gets every metrics record; its run is closed however this one ends.
  const sink = createMetricsSink(s.config, opts.exportOnly ? {} : process.env, { name: path.basename(s.runDir), log: s.log });
  let exitCode = 1;
  try {
    const result = await run(s, opts, sink);
    exitCode = 0;
    return result;
  } finally {
    await sink.finish(exitCode);
    // Free the backend memory: a process (tests, sweeps) may train several models in turn.
    for (const n of weightNamesIn(s.params)) s.params[n].dispose();
    s.optimizer.dispose();
    if (s.subspaces) disposeObjective(s.subspaces);
  }
}

async function run(s: Session, opts: TrainOptions, sink: MetricsSink): Promise<TrainResult> {
  const { config, log } = s;
  const t = config.training;
  await mkdir(s.runDir, { recursive: true });
  const metricsPath = path.join(s.runDir, "metrics.jsonl");
  const writeMetric = (record: Record<string, unknown>): Promise<void> => {
    sink.log(record);
    return appendFile(metricsPath, JSON.stringify(record) + "\n");
  };

  let step = 0;
  let cursor: DataCursor = { epoch: 0, batch: 0 };
  let tokens = 0;
  let priorSeconds = 0;
  let resumedLoss: Record<string, number> | undefined;
  const latest = await loadLatestCheckpoint(s.runDir);
  if (latest && (opts.resume || opts.exportOnly)) {
    const savedKey = resumeKey(latest.state.config as TrainConfig);
    if (savedKey !== resumeKey(config)) {
      throw new Error(
        `${latest.dir} was written with a different model/data config; resuming it would not continue the same run ` +
          `(use another --run-dir for a new run)`,
      );
    }
    if (latest.state.dataFingerprint !== s.fingerprint) {
      throw new Error(`${latest.dir}: the training pairs differ from the checkpointed run's (datasets changed?)`);
    }
    restoreVariables(latest, "param.", s.params);
    restoreVariables(latest, "adam.m.", s.optimizer.m);
    restoreVariables(latest, "adam.v.", s.optimizer.v);
    s.optimizer.t = latest.state.adamT;
    if (s.subspaces && !restoreProbes(latest, s.subspaces)) log(`${latest.dir} has no subspace probes (the objective is new to this run): they start fresh`);
    step = latest.state.step;
    cursor = latest.state.cursor;
    tokens = latest.state.counters.tokens;
    priorSeconds = latest.state.counters.trainSeconds;
    resumedLoss = latest.state.lastLoss ?? (await lastLoggedLoss(metricsPath, step));
    log(`resumed from ${latest.dir} at step ${step} (epoch ${cursor.epoch}, batch ${cursor.batch})`);
  } else if (latest && !opts.resume) {
    throw new Error(`${s.runDir} already has checkpoints: pass --resume to continue it, or choose another --run-dir`);
  } else if (opts.resume) {
    log(`no checkpoint in ${s.runDir}: starting from scratch`);
  }
  // Here, not where the params are created: setUp also builds gradient workers' and resumed sessions, whose weights
  // come from rank 0 or the checkpoint, so GloVe (seconds and ~1 GB to read) is loaded only by a run from scratch.
  if (!latest && config.initEmbeddings === "glove") await applyGloveInit(s.params["embed.token"], s.tokenizerJson.vocab, config.seed, log);
  if (!opts.exportOnly) {
    await writeMetric({
      type: "start",
      step,
      totalSteps: s.totalSteps,
      backend: s.backend,
      parameters: parameterCount(s.arch),
      pairs: s.pairs.stats,
      resumed: step > 0,
      time: new Date().toISOString(),
    });
  }

  const validationOptions = {
    depths: [...new Set([s.arch.depths.easy, s.arch.depths.medium, s.arch.depths.hard])],
    dim: s.arch.matryoshkaDims.includes(128) ? 128 : (s.arch.matryoshkaDims[0] as number),
    maxQueryLength: t.maxQueryLength,
    maxDocLength: t.maxDocLength,
    // The heads are validated on the hidden state they are trained on.
    headDepth: Math.max(...t.lossSteps),
    // Fixed-depth documents are validated as they are trained and indexed.
    ...(t.documentSteps ? { documentDepth: Math.max(...t.documentSteps) } : {}),
  };
  const probe = await heldOutProbeFor(s.loaded);
  if (t.heldOutRetrieval && !probe) log("training.heldOutRetrieval: the adaptation corpus has no held-out train query with a judged document; no probe");
  const probeHeldOutQueries = async (): Promise<void> => {
    if (!probe) return;
    const p0 = performance.now();
    const documentSteps = t.documentSteps;
    const retrieval = await probeHeldOut(
      probe,
      {
        arch: s.arch,
        weights: paramsToFloat32(s.params),
        tokenizerJson: s.tokenizerJson,
        ...(documentSteps?.length === 1 ? { documentDepth: documentSteps[0]! } : {}),
        earlyExitEpsilon: config.export.earlyExitEpsilon,
        router: config.export.router,
      },
      s.runDir,
      step,
    );
    if (!retrieval) return;
    await writeMetric({ type: "heldOutRetrieval", step, probe: probe.label, ...retrieval, seconds: round((performance.now() - p0) / 1000, 2) });
    log(
      `step ${step} ${probe.label} (${retrieval.queries}) against all ${retrieval.documents} documents, ${retrieval.dims}-d ${retrieval.variant}: ` +
        `dense NDCG@10 ${retrieval.dense.ndcg10} (recall@100 ${retrieval.dense.recall100}), BM25 ${retrieval.bm25.ndcg10}`,
    );
  };
  const runValidation = async (): Promise<ValidationResult> => {
    const v0 = performance.now();
    const probes = s.subspaces ? { values: probesToFloat32(s.subspaces.probes), ranges: s.subspaces.loss.ranges } : undefined;
    const result = validate(s.params, s.pairs.validation, s.tokenizer, { ...validationOptions, ...(probes ? { probes } : {}) });
    await writeMetric({ type: "eval", step, epoch: cursor.epoch, ...result, seconds: round((performance.now() - v0) / 1000, 2) });
    const summary = Object.entries(result.byDepth)
      .map(([d, r]) => `k=${d} acc@1 ${r.acc1.toFixed(3)} mrr ${r.mrr.toFixed(3)} ndcg@10 ${r.ndcg10.toFixed(3)}`)
      .join(" | ");
    const documents = result.documentDepth === undefined ? "" : `, documents at k=${result.documentDepth}`;
    log(`step ${step} (epoch ${cursor.epoch}) validation (${result.pairs} pairs, ${result.dim}-d${documents}): ${summary}`);
    if (result.subspaces) {
      const probes = Object.entries(result.subspaces).map(([name, p]) => `${name} ${p.accuracy.toFixed(3)} (majority ${p.chance.toFixed(3)}, balanced ${p.balancedAccuracy.toFixed(3)})`);
      log(`step ${step} subspace probes, held-out accuracy: ${probes.join(" | ")}`);
    }
    if (result.late) log(`step ${step} late interaction (MaxSim, k=${result.late.depth}): acc@1 ${result.late.acc1.toFixed(3)} mrr ${result.late.mrr.toFixed(3)} ndcg@10 ${result.late.ndcg10.toFixed(3)}`);
    if (result.sparse) {
      const r = result.sparse;
      log(
        `step ${step} sparse head (k=${r.depth}): acc@1 ${r.acc1.toFixed(3)} mrr ${r.mrr.toFixed(3)} ndcg@10 ${r.ndcg10.toFixed(3)}, ` +
          `non-zero terms ${r.nonZerosQuery.toFixed(1)} per query, ${r.nonZerosDoc.toFixed(1)} per document`,
      );
    }
    return result;
  };
  const checkpoint = async (): Promise<void> => {
    const state: CheckpointState = {
      format: "taesr-train-checkpoint/1",
      step,
      cursor,
      adamT: s.optimizer.t,
      ...(s.subspaces ? { probeAdamT: s.subspaces.optimizer.t } : {}),
      counters: { tokens, trainSeconds: priorSeconds + (performance.now() - loopStart) / 1000 },
      ...(Object.keys(lastLoss).length > 0 ? { lastLoss } : {}),
      config,
      dataFingerprint: s.fingerprint,
      savedAt: new Date().toISOString(),
    };
    await saveCheckpoint(s.runDir, state, checkpointTensors(s), t.keepCheckpoints);
    lastCheckpointStep = step;
  };

  const lossHistory: number[] = [];
  let lastLoss: Record<string, number> = resumedLoss ?? {};
  let stoppedBy: TrainResult["stoppedBy"] = opts.exportOnly ? "export" : "done";
  let lastCheckpointStep = step;
  let validation: ValidationResult | undefined;
  const loopStart = performance.now();
  const deadline = opts.maxMinutes !== undefined ? loopStart + opts.maxMinutes * 60_000 : Infinity;
  const stepsThisProcess = opts.stopAfterSteps ?? Infinity;
  const progress: Progress | undefined =
    opts.progress === false || opts.exportOnly ? undefined : createProgress(s.totalSteps, step);
  let windowStart = performance.now();
  let windowTokens = 0;
  // Padded positions are what the backend computes on; their rate against the real-token rate shows padding waste.
  let windowPadded = 0;
  let windowLoss: number[][] = [];
  let windowObjectives: Record<string, number>[] = [];
  let done = 0;

  const microBatchesPerUpdate = t.workers * t.accumulationSteps;
  let pool: GradientWorkerPool | undefined;
  try {
    if (!opts.exportOnly && t.workers > 1 && step < s.totalSteps) {
      const w0 = performance.now();
      pool = await GradientWorkerPool.start(t.workers - 1, s.loaded.path, { fingerprint: s.fingerprint, backend: s.backend }, t.gpuDevices);
      log(`data parallel: ${t.workers} processes × ${t.accumulationSteps} micro-batches of ${t.batchSize} pairs per update (workers ready in ${((performance.now() - w0) / 1000).toFixed(1)} s)`);
    }
    while (!opts.exportOnly && step < s.totalSteps) {
      if (done >= stepsThisProcess) {
        stoppedBy = "stopAfterSteps";
        break;
      }
      if (performance.now() >= deadline) {
        stoppedBy = "time";
        break;
      }
      const { microBatches, next } = takeMicroBatches(s, cursor, microBatchesPerUpdate);
      if (s.newRows && step === s.newRows.updates) {
        // Every other weight sat the first updates out: all moments restart, so each weight gets a fresh run's
        // bias-corrected first steps (optimizer.ts reset), and the learning rate warms up again.
        s.optimizer.reset();
        s.subspaces?.optimizer.reset();
        log(`update ${step + 1}: every weight learns from here on (optimizer moments restarted, learning rate warming up again)`);
      }
      const lr = learningRate(step, { lr: t.lr, warmupSteps: t.warmupSteps, totalSteps: s.totalSteps, minLrRatio: t.minLrRatio }) * rewarm(step, s.newRows, t.warmupSteps);
      let outcome: StepOutcome;
      try {
        outcome = await trainStep(s, microBatches, lr, pool, step);
      } catch (error) {
        // The update in flight was not applied: the checkpoint holds the state after the last completed update.
        if (error instanceof GradientWorkerError && step !== lastCheckpointStep) await checkpoint();
        throw error;
      }
      step += 1;
      done += 1;
      // This update reached into a new epoch: validate below, so every epoch gets a figure whatever evalEvery is.
      const crossedEpoch = next.epoch > cursor.epoch;
      cursor = next;
      tokens += outcome.tokens;
      windowTokens += outcome.tokens;
      windowPadded += outcome.paddedTokens;
      lossHistory.push(outcome.loss);
      windowLoss.push(outcome.perStep);
      if (Object.keys(outcome.objectives).length > 0) windowObjectives.push(outcome.objectives);
      if (outcome.skipped) log(`step ${step}: non-finite loss/gradient (loss ${outcome.loss}, norm ${outcome.gradNorm}); update skipped`);

      const now = performance.now();
      const tokensPerSec = windowTokens / Math.max(1e-9, (now - windowStart) / 1000);
      progress?.update(step, { loss: outcome.loss, tokensPerSec, lr });
      if (step % t.logEvery === 0 || step === s.totalSteps) {
        // Losses are averaged over the window: single-batch InfoNCE is noisy.
        lastLoss = windowLoss[0]?.length
          ? Object.fromEntries(s.lossOptions.steps.map((k, i) => [String(k), round(windowLoss.reduce((a, l) => a + (l[i] ?? 0), 0) / windowLoss.length)]))
          : {};
        await writeMetric({
          type: "train",
          step,
          epoch: cursor.epoch,
          loss: round(lossHistory.slice(-windowLoss.length).reduce((a, b) => a + b, 0) / windowLoss.length),
          // Per supervised step of the dense loss; absent when the run trains the heads alone (no dense loss).
          ...(windowLoss[0]?.length ? { lossByStep: lastLoss } : {}),
          // Per objective (dense, sparse, its ranking and FLOPS parts, mean non-zero terms…) when more than one is trained.
          ...(windowObjectives.length > 0 ? { lossByObjective: roundRecord(meanRecord(windowObjectives)) } : {}),
          lr: round(lr, 8),
          gradNorm: round(outcome.gradNorm, 4),
          tokens,
          tokensPerSec: Math.round(tokensPerSec),
          paddedTokensPerSec: Math.round(windowPadded / Math.max(1e-9, (now - windowStart) / 1000)),
          elapsedSec: round(priorSeconds + (now - loopStart) / 1000, 1),
          // A growing count means a leak in the step (tensors not disposed); it must stay flat.
          liveTensors: tf.memory().numTensors,
          skipped: outcome.skipped || undefined,
        });
        windowStart = now;
        windowTokens = 0;
        windowPadded = 0;
        windowLoss = [];
        windowObjectives = [];
      }
      // One validation when both triggers fall on the same step; the last step always gets the final one after the loop.
      if ((step % t.evalEvery === 0 || crossedEpoch) && step < s.totalSteps) {
        validation = await runValidation();
        // The final step's figure comes from the export (export.ts), which ranks the artifact it publishes.
        await probeHeldOutQueries();
      }
      if (step % t.checkpointEvery === 0) await checkpoint();
    }
  } finally {
    progress?.stop();
    await pool?.close();
  }
  const trainSeconds = priorSeconds + (performance.now() - loopStart) / 1000;
  if (!opts.exportOnly && step !== lastCheckpointStep) await checkpoint();
  const result: TrainResult = {
    runDir: s.runDir,
    step,
    totalSteps: s.totalSteps,
    stoppedBy,
    lastLoss,
    lossHistory,
    tokens,
    trainSeconds: round(trainSeconds, 1),
  };
  if (stoppedBy !== "done" && stoppedBy !== "export") {
    log(`stopped at step ${step}/${s.totalSteps} (${stoppedBy}); continue with --resume`);
    return result;
  }
  result.validation = await runValidation();
  if (probe?.atEnd) await probeHeldOutQueries();
  result.finalParamsPath = path.join(s.runDir, "final.taesr");
  await saveParams(result.finalParamsPath, s.params, s.arch, { step, tokens });
  result.exportDir = await exportRun({
    config,
    loaded: s.loaded,
    arch: s.arch,
    params: s.params,
    tokenizerJson: s.tokenizerJson,
    pairs: s.pairs.stats,
    backend: s.backend,
    step,
    totalSteps: s.totalSteps,
    tokens,
    trainSeconds,
    lastLoss,
    validation: result.validation,
    log,
  });
  await writeMetric({ type: "end", step, tokens, trainSeconds: result.trainSeconds, exportDir: result.exportDir });
  return result;
}

/**
 * The per-step loss of the last "train" record at or before `step` in a run's metrics.jsonl: what a checkpoint written
 * before CheckpointState.lastLoss existed lacks, so that an export after resuming it still records the final loss.
 */
async function lastLoggedLoss(metricsPath: string, step: number): Promise<Record<string, number> | undefined> {
  let text: string;
  try {
    text = await readFile(metricsPath, "utf8");
  } catch {
    return undefined;
  }
  let found: Record<string, number> | undefined;
  for (const line of text.split("\n")) {
    if (!line.includes('"lossByStep"')) continue;
    const record = JSON.parse(line) as { type?: string; step?: number; lossByStep?: Record<string, number> };
    if (record.type === "train" && record.step !== undefined && record.step <= step && record.lossByStep) found = record.lossByStep;
  }
  return found;
}

/** The session a gradient worker builds: the same config, tokenizer, pairs and model shape as rank 0. */
export const prepareSession = setUp;
export type { Session };

/**
 * Domain adaptation as a product feature: `npm run train -- --adapt <corpus dir> [--from <artifact>] [--name <name>]`
 * fine-tunes a published artifact on a user's corpus and exports a new, versioned artifact.
 *
 * 1. The corpus is read first (adapt-corpus.ts), so a bad corpus fails before any model work.
 * 2. The run's config is derived from the preset training/configs/adapt.json: the base artifact's architecture and
 *    tokenizer, `initFrom` = the base artifact directory (its fp32 graphs are read back), the corpus as the "adapt"
 *    source, oversampled (`repeat`) so that it is about half the training stream beside the capped general sources
 *    (which keep the general ability), a share of its train queries held out by query id (the preset's
 *    `holdoutQueries`: their ids go into the manifest, and fusion weights are tuned on them; see data/pairs.ts
 *    isQueryHeldOut), its hard negatives ranked by BM25 or, with `--hard-negatives dense`, by the base artifact
 *    itself, and `export.version: "next"`. `--max-length N` gives the adapted model an N-piece context (documents are
 *    read up to it; the base's position table is tiled to it, model/context-length.ts). `--extend-vocab N` appends up to
 *    N of the corpus's frequent words that the base's vocabulary fragments (tokenizer/extend-vocab.ts; the extended
 *    tokenizer.json is written into the run directory, and the new rows start from GloVe, model/vocab-extension.ts).
 *    The derived config is written into the run directory (adapt-config.json), so `--resume` continues exactly that run.
 * 3. The trainer runs it and exports `<name>@<next minor>` (export.ts adds the manifest's `adaptation` record).
 * 4. A row goes into the artifacts directory's CHANGELOG.md with the held-out figures — the in-batch validation, and
 *    the held-out train queries ranked against the whole corpus by the exported artifact (export.ts,
 *    held-out-retrieval.ts); the benchmark figures (SciFact test NDCG@10…) are left for a human to add after `npm run eval`.
 *
 * @module
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ArtifactManifest } from "../../../src/model/spec.js";
import { AdaptCorpusError, readAdaptCorpus, type AdaptCorpusInfo } from "../data/adapt-corpus.js";
import { buildPairs, heldOutQueryIds, type AdaptRecord, type PairSource } from "../data/pairs.js";
import { readArtifactManifest } from "../model/artifact-weights.js";
import { DEFAULT_MIN_FREQUENCY, extendVocabulary } from "../tokenizer/extend-vocab.js";
import { serializeTokenizer } from "../tokenizer/serialize.js";
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";
import { contextChangeRefusal } from "../model/context-length.js";
import { ConfigError, parseConfig, type TrainConfig } from "./config.js";
import { DEFAULT_RUNS_DIR, train, type TrainResult } from "./trainer.js";
import type { HeldOutRetrieval } from "./held-out-retrieval.js";
import type { ValidationResult } from "./validate.js";
import { pathExists } from "../path-exists.js";

/** The repository's model-artifacts/ (the default home of base and adapted artifacts, and of CHANGELOG.md). */
export const DEFAULT_ARTIFACTS_DIR = fileURLToPath(new URL("../../../model-artifacts/", import.meta.url));
export const DEFAULT_ADAPT_PRESET = fileURLToPath(new URL("../../configs/adapt.json", import.meta.url));
/** The derived config's file name inside the run directory. */
export const ADAPT_CONFIG_FILE = "adapt-config.json";
/** The extended tokenizer's file name inside the run directory (--extend-vocab). */
export const EXTENDED_TOKENIZER_FILE = "tokenizer.json";
/** More copies than this would mostly teach the model a small corpus by heart. */
export const MAX_REPEAT = 32;

export interface AdaptOptions {
  /** The user's corpus: a BEIR directory or a directory with one JSONL file. */
  corpusDir: string;
  /** Base artifact directory (default: the one <artifactsDir>/bundled.json names). */
  from?: string;
  /** Artifact name (default: the base name without "-small", a dash, and the corpus directory's base name). */
  name?: string;
  /** Training steps (default: the preset's). */
  steps?: number;
  /** What ranks the corpus's hard negatives (default: the preset's, BM25): "dense" mines them with the base artifact's
   * own embeddings (data/dense-negatives.ts). */
  hardNegatives?: "bm25" | "dense";
  /** The adapted model's context in word pieces (default: the base's). Documents are read up to it; a longer context
   * than the base's extends its position table (model/context-length.ts). */
  maxLength?: number;
  /** Append up to this many of the corpus's frequent words that the base vocabulary fragments, as whole-word pieces
   * with their own rows (tokenizer/extend-vocab.ts, model/vocab-extension.ts); the run's tokenizer is written beside its
   * config. Default: the base's vocabulary unchanged. */
  extendVocab?: number;
  /** With extendVocab: the first N updates train only the added rows (config training.newRowsFirst). */
  newRowsFirst?: number;
  maxMinutes?: number;
  /** Run directory (default: <runsDir>/adapt-<name>, or -2, -3… when taken; see {@link chooseRunDir}). */
  runDir?: string;
  resume?: boolean;
  /** Where the artifact is exported and CHANGELOG.md kept (default: the repository's model-artifacts/). */
  artifactsDir?: string;
  /** Where default run directories go (default: training/runs/). */
  runsDir?: string;
  /** The preset config (default: training/configs/adapt.json). */
  preset?: string;
  /** Deep-merged into the derived config last, null removing a key (tests: small batches, caps, fewer sources). */
  overrides?: Record<string, unknown>;
  /** Stop after this many updates in this process (tests; the run can be resumed). */
  stopAfterSteps?: number;
  progress?: boolean;
  log?: (line: string) => void;
  /** Date of the CHANGELOG row (default: today, UTC). */
  date?: string;
}

export interface AdaptResult extends TrainResult {
  configPath: string;
  corpus: AdaptCorpusInfo;
  /** "<name>@<version>" of the exported artifact (absent when the run stopped early). */
  artifact?: string;
  /** The row appended to CHANGELOG.md. */
  changelogRow?: string;
}

/** Artifact names become a path segment (artifact.ts SEGMENT); run names are stricter (config.ts). */
const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** A corpus directory's base name as an artifact-name part: lower case, anything else than [a-z0-9._-] → "-". */
export function slug(text: string): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[-._]+|[-._]+$/g, "");
  return s || "corpus";
}

/** The default artifact name: "taesr-edge-small" adapted to …/scifact → "taesr-edge-scifact". */
export function adaptedName(baseName: string, corpusName: string): string {
  return `${baseName.replace(/-small$/, "")}-${slug(corpusName)}`;
}

/**
 * Copies of each in-domain train pair so that the corpus is about half the stream: the general sources contribute about
 * Σ maxPairs × (1 − validationFraction) train pairs. Undefined when a general source is uncapped (its size is unknown
 * here): the preset's repeat is kept then.
 */
export function chooseRepeat(config: TrainConfig, adaptTrainPairs: number): number | undefined {
  let general = 0;
  for (const [source, options] of Object.entries(config.data.sources) as [PairSource, { maxPairs?: number } | undefined][]) {
    if (source === "adapt" || !options) continue;
    if (options.maxPairs === undefined) return undefined;
    general += options.maxPairs * (1 - config.data.validationFraction);
  }
  if (general === 0 || adaptTrainPairs === 0) return 1;
  return Math.min(MAX_REPEAT, Math.max(1, Math.round(general / adaptTrainPairs)));
}

/**
 * The run directory when none is given. A fresh run takes the first free one of adapt-<name>, adapt-<name>-2, …, so a
 * second adaptation of the same corpus does not collide with the first; --resume takes the newest one that has not
 * finished (no final.taesr), since resuming a finished run would only export its weights again as a new version.
 */
export async function chooseRunDir(runsDir: string, name: string, resume: boolean): Promise<string> {
  const candidate = (i: number) => path.join(runsDir, i === 1 ? `adapt-${name}` : `adapt-${name}-${i}`);
  let last = 0;
  while (await pathExists(candidate(last + 1))) last++;
  if (!resume) return candidate(last + 1);
  for (let i = last; i >= 1; i--) {
    if (!(await pathExists(path.join(candidate(i), "final.taesr")))) return candidate(i);
  }
  throw new Error(`--resume: no unfinished adaptation run of ${name} under ${runsDir} (every adapt-${name}* run has finished)`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `base` with `over` merged in, objects recursively (arrays and scalars replace; null removes the key). */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/** The base artifact named by <artifactsDir>/bundled.json (the model the Worker ships). */
export async function bundledArtifactDir(artifactsDir: string): Promise<string> {
  const file = path.join(artifactsDir, "bundled.json");
  let pointer: { artifact?: unknown };
  try {
    pointer = JSON.parse(await readFile(file, "utf8")) as { artifact?: unknown };
  } catch (err) {
    throw new Error(`cannot read ${file} to find the base artifact (${(err as Error).message}); pass --from <artifact dir>`);
  }
  if (typeof pointer.artifact !== "string") throw new Error(`${file} has no "artifact" string; pass --from <artifact dir>`);
  return path.join(artifactsDir, pointer.artifact);
}

interface Derived {
  raw: Record<string, unknown>;
  config: TrainConfig;
}

/** The run's config (see the module comment); paths are written relative to the run directory that will hold it. */
async function deriveConfig(
  opts: AdaptOptions,
  ctx: {
    runDir: string;
    baseDir: string;
    base: ArtifactManifest;
    corpusDir: string;
    artifactsDir: string;
    name: string;
    /** The run's own extended tokenizer (--extend-vocab) and its size; the base's otherwise. */
    vocabulary?: { file: string; size: number };
  },
  corpusRecords: AdaptRecord[],
): Promise<Derived> {
  const presetPath = path.resolve(opts.preset ?? DEFAULT_ADAPT_PRESET);
  let preset: Record<string, unknown>;
  try {
    preset = JSON.parse(await readFile(presetPath, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`cannot read the adaptation preset ${presetPath}: ${(err as Error).message}`);
  }
  // Relative to the run directory, so a run tree that moves with the repository stays resumable; absolute when the two
  // share nothing but the filesystem root (a run in /tmp on a corpus in /home).
  const rel = (p: string) => {
    const r = path.relative(ctx.runDir, p) || ".";
    const ups = r.split(path.sep).filter((part) => part === "..").length;
    return ups >= ctx.runDir.split(path.sep).filter(Boolean).length ? p : r;
  };
  const arch = {
    ...ctx.base.architecture,
    ...(opts.maxLength !== undefined ? { maxLength: opts.maxLength } : {}),
    ...(ctx.vocabulary ? { vocabSize: ctx.vocabulary.size } : {}),
  };
  // Refused here, before the corpus is paired and mined, rather than when the trainer loads the weights.
  const refusal = arch.maxLength !== ctx.base.architecture.maxLength ? contextChangeRefusal(ctx.base.architecture, arch) : undefined;
  if (refusal) throw new ConfigError(`--max-length ${arch.maxLength}: ${refusal}`);
  const data = preset["data"] as Record<string, any>;
  const training = preset["training"] as Record<string, any>;
  const lossSteps = (training["lossSteps"] as number[] | undefined)?.filter((k) => k <= arch.depths.hard);
  // The preset keeps the bundled base's heads trained (a head left still would drift from the encoder it reads); a base
  // without a head (an older artifact, a test's tiny model) has nothing for that objective to train.
  const { late, sparse, ...otherObjectives } = (training["objectives"] ?? {}) as Record<string, unknown>;
  const objectives = { ...otherObjectives, ...(late && arch.lateHead ? { late } : {}), ...(sparse && arch.sparseHead ? { sparse } : {}) };
  let raw: Record<string, unknown> = {
    ...preset,
    name: `adapt-${ctx.name}`.replace(/[^A-Za-z0-9._-]/g, "-"),
    // The base artifact's tokenizer and architecture: its weights are only meaningful with exactly these (or with the
    // tokenizer extended from it, whose first entries are the base's).
    tokenizer: rel(ctx.vocabulary?.file ?? path.join(ctx.baseDir, ctx.base.tokenizer)),
    initFrom: rel(ctx.baseDir),
    arch,
    data: { ...data, sources: { ...data["sources"], adapt: { ...data["sources"]?.["adapt"], dir: rel(ctx.corpusDir) } } },
    training: {
      ...training,
      objectives: Object.keys(objectives).length > 0 ? objectives : undefined,
      ...(opts.steps !== undefined ? { steps: opts.steps, epochs: undefined } : {}),
      ...(opts.newRowsFirst !== undefined ? { newRowsFirst: opts.newRowsFirst } : {}),
      // A base artifact with a shorter context (tests, tiny models) caps the preset's lengths.
      maxQueryLength: Math.min(Number(training["maxQueryLength"]), arch.maxLength),
      // A context chosen for the run is there for the documents: they are read up to it.
      maxDocLength: opts.maxLength ?? Math.min(Number(training["maxDocLength"]), arch.maxLength),
      // …and a shallower one the supervised steps.
      ...(lossSteps && training["lossStepWeights"] === undefined ? { lossSteps: lossSteps.length > 0 ? lossSteps : [arch.depths.hard] } : {}),
    },
    export: { ...(preset["export"] as object), name: ctx.name, version: "next", outDir: rel(ctx.artifactsDir), force: false },
  };
  const presetNegatives = data["sources"]?.["adapt"]?.["hardNegatives"] as Record<string, unknown> | undefined;
  if (opts.hardNegatives !== undefined) {
    if (!presetNegatives) throw new ConfigError(`--hard-negatives ${opts.hardNegatives}: the preset ${presetPath} mines no hard negatives for the corpus (data.sources.adapt.hardNegatives)`);
    // Only a change is written, so a run without the option derives the same config (and resume key) as before.
    if ((presetNegatives["ranker"] ?? "bm25") !== opts.hardNegatives) {
      raw = deepMerge(raw, { data: { sources: { adapt: { hardNegatives: { ranker: opts.hardNegatives } } } } });
    }
  }
  const overrides = opts.overrides ?? {};
  const source = `${presetPath} (derived for ${ctx.corpusDir})`;
  const config = parseConfig(deepMerge(raw, overrides), source);
  // Oversample the corpus to about half the stream, counted on its real pairs (train side, after dedup and caps).
  const adapt = config.data.sources.adapt!;
  const own = await buildPairs(
    { adapt: corpusRecords },
    {
      seed: config.seed,
      validationFraction: config.data.validationFraction,
      maxValidationPairs: config.data.maxValidationPairs,
      minDocChars: config.data.minDocChars,
      sources: { adapt: { ...adapt, repeat: 1 } },
    },
  );
  const adaptTrain = own.stats.bySource["adapt"]?.train ?? 0;
  if (adaptTrain === 0) {
    throw new AdaptCorpusError(
      `${ctx.corpusDir} gives no training pairs: documents need a title, or a text of three or more sentences, ` +
        `of at least ${config.data.minDocChars} characters (or train qrels)`,
    );
  }
  const repeat = chooseRepeat(config, adaptTrain) ?? adapt.repeat;
  // Overrides are applied last again, so an explicit repeat in them wins over the computed one.
  raw = deepMerge(deepMerge(raw, { data: { sources: { adapt: { repeat } } } }), overrides);
  return { raw, config: parseConfig(raw, source) };
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toPrecision(3)} MB` : `${(n / 1e3).toPrecision(3)} KB`;
}

function scores(v: ValidationResult | undefined): string {
  if (!v || Object.keys(v.byDepth).length === 0) return "n/a";
  return Object.values(v.byDepth)
    .map((d) => d.mrr.toFixed(3))
    .join(" / ");
}

/** One CHANGELOG.md row for an adapted artifact (same columns as the table; eval figures left for a human). */
export function changelogRow(manifest: ArtifactManifest, date: string): string {
  const a = (manifest.adaptation ?? {}) as Record<string, any>;
  const t = manifest.training as Record<string, any>;
  const ev = manifest.eval as Record<string, any>;
  const mixed = ev["heldOutValidation"] as ValidationResult | undefined;
  const inDomain = ev["inDomainHeldOut"] as ValidationResult | undefined;
  const depths = Object.keys(mixed?.byDepth ?? inDomain?.byDepth ?? {}).join("/");
  const kinds = Object.entries((a["pairKinds"] ?? {}) as Record<string, number>)
    .map(([k, n]) => `${k} ${n.toLocaleString("en-US")}`)
    .join(", ");
  const seconds = Number(t["wallTimeSeconds"] ?? 0);
  const wall = seconds < 60 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
  const cfg = (t["config"] ?? {}) as Record<string, any>;
  // Each update takes a micro-batch from every process and accumulation step: say so, or the row understates the data.
  const workers = Number(cfg["training"]?.["workers"] ?? 1);
  const accumulation = Number(cfg["training"]?.["accumulationSteps"] ?? 1);
  const parallel = [workers > 1 ? `${workers} data-parallel processes` : "", accumulation > 1 ? `${accumulation} accumulated micro-batches` : ""].filter(Boolean);
  const volume = parallel.length > 0 ? `${t["steps"]} updates × ${parallel.join(" × ")}` : `${t["steps"]} steps`;
  const mined = t["dataSources"]?.["adapt"]?.["hardNegatives"] as { ranker?: string; mined?: number } | undefined;
  const negatives = mined?.mined ? `${Number(mined.mined).toLocaleString("en-US")} hard negatives by ${mined.ranker ?? "BM25"}; ` : "";
  // A teacher is training signal as much as the data is: the row names it.
  const distill = cfg["training"]?.["objectives"]?.["late"]?.["distill"] as { weight?: number; bm25?: number } | undefined;
  const teacher = distill
    ? `dense embedding distilled from its late head${distill.bm25 !== undefined ? ` fused with BM25 (α ${distill.bm25})` : ""} (KL, weight ${distill.weight}); `
    : "";
  // The document cut shapes what the model learns (and what indexing costs): a row says it.
  const maxDocLength = cfg["training"]?.["maxDocLength"] as number | undefined;
  const readUpTo = maxDocLength !== undefined ? `, documents read up to ${maxDocLength} word pieces` : "";
  const grown = a["vocabularyExtended"] as { from: number; to: number } | undefined;
  const vocabulary = grown
    ? `, vocabulary extended by ${(grown.to - grown.from).toLocaleString("en-US")} of the corpus's words (${grown.from.toLocaleString("en-US")} → ${grown.to.toLocaleString("en-US")} entries, new rows from GloVe` +
      (cfg["training"]?.["newRowsFirst"] !== undefined ? `, trained alone for the first ${cfg["training"]["newRowsFirst"]} updates` : "") +
      ")"
    : "";
  const what =
    `domain adaptation of ${a["base"]} to "${a["corpus"]}" (${Number(a["documents"]).toLocaleString("en-US")} documents): ${volume} × ${cfg["training"]?.["batchSize"]} pairs ` +
    `(${Number(t["tokens"] ?? 0).toLocaleString("en-US")} tokens, ${wall}, ${t["backend"]}) from the base weights${readUpTo}${vocabulary}; in-domain pairs ${kinds}` +
    `${Number(a["repeat"]) > 1 ? ` ×${a["repeat"]}` : ""} (${Math.round(Number(a["streamShare"] ?? 0) * 100)}% of the stream) + ` +
    `${((a["otherSources"] ?? []) as string[]).join(" + ") || "no general sources"} (capped); ${negatives}${teacher}${a["supervision"]}; ` +
    `held-out MRR@${mixed?.dim ?? inDomain?.dim} at k=${depths}: in-domain ${scores(inDomain)} (${inDomain?.pairs ?? 0} pairs), mixed ${scores(mixed)} (${mixed?.pairs ?? 0} pairs)`;
  const size = (variant: "fp32" | "int8") =>
    formatBytes(Object.entries(manifest.files).reduce((n, [rel, f]) => (rel.startsWith(`${variant}/`) ? n + f.bytes : n), 0));
  const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\s+/g, " ");
  const retrieval = (a["heldOutQueries"] as Record<string, any> | undefined)?.["retrieval"] as HeldOutRetrieval | undefined;
  const figures = retrieval
    ? `${retrieval.queries} held-out train queries against all ${Number(retrieval.documents).toLocaleString("en-US")} documents (${retrieval.dims}-d ${retrieval.variant}): ` +
      `NDCG@10 dense ${retrieval.dense.ndcg10}, BM25 ${retrieval.bm25.ndcg10}; benchmark figures: add after \`npm run eval\``
    : "— (not evaluated yet: add after \`npm run eval\`)";
  return `| ${cell(`${manifest.name}@${manifest.version}`)} | ${date} | ${cell(what)} | ${cell(figures)} | ${size("fp32")} · ${size("int8")} |`;
}

const CHANGELOG_HEADER = `# Model artifacts

Each directory is one artifact, \`<name>@<version>/\`, never overwritten: a new export gets a new version.

| version | date | what | SciFact test NDCG@10 (dense-128 int8 · BM25 · hybrid) | size (fp32 · int8 graphs) |
| --- | --- | --- | --- | --- |
`;

/** Appends `row` after the table's last row (the file is created with the table header when absent). */
export async function appendChangelogRow(artifactsDir: string, row: string): Promise<string> {
  const file = path.join(artifactsDir, "CHANGELOG.md");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    text = CHANGELOG_HEADER;
  }
  const lines = text.split("\n");
  let last = -1;
  lines.forEach((line, i) => {
    if (line.startsWith("|")) last = i;
  });
  if (last === -1) lines.push("", ...CHANGELOG_HEADER.split("\n").slice(4, 6), row);
  else lines.splice(last + 1, 0, row);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, lines.join("\n").replace(/\n*$/, "\n"));
  await rename(tmp, file);
  return file;
}

/** The run's tokenizer for --extend-vocab: the base's with the corpus's fragmented words appended. */
async function extendedVocabulary(
  baseDir: string,
  base: ArtifactManifest,
  records: AdaptRecord[],
  add: number,
  log: (line: string) => void,
): Promise<TokenizerJSON> {
  const baseFile = path.join(baseDir, ...base.tokenizer.split("/"));
  let baseJson: TokenizerJSON;
  try {
    baseJson = JSON.parse(await readFile(baseFile, "utf8")) as TokenizerJSON;
  } catch (err) {
    throw new ConfigError(`--extend-vocab: cannot read the base tokenizer ${baseFile}: ${(err as Error).message}`);
  }
  const { json, added, stats } = await extendVocabulary(
    records.map((r) => `${r.title}\n${r.text}`),
    baseJson,
    { add },
  );
  log(
    `vocabulary: ${added.length} of the corpus's words appended to the base's ${baseJson.vocab.length} (${stats.candidates} fragmented words ` +
      `occur ≥ ${DEFAULT_MIN_FREQUENCY} times; the added ones are ${((100 * stats.addedOccurrences) / Math.max(1, stats.occurrences)).toFixed(1)}% of its words), e.g. ` +
      added.slice(0, 6).map((a) => `${a.word} (was ${a.basePieces.join(" ")})`).join(", "),
  );
  return json;
}

/** Runs an adaptation (see the module comment). */
export async function adapt(opts: AdaptOptions): Promise<AdaptResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[taesr] ${line}\n`));
  const corpusDir = path.resolve(opts.corpusDir);
  if (opts.newRowsFirst !== undefined && opts.extendVocab === undefined) {
    throw new ConfigError("--new-rows-first goes with --extend-vocab: without an extended vocabulary there are no new rows to train first");
  }
  const corpus = await readAdaptCorpus(corpusDir);
  const artifactsDir = path.resolve(opts.artifactsDir ?? DEFAULT_ARTIFACTS_DIR);
  let baseDir: string;
  let base: ArtifactManifest;
  try {
    baseDir = path.resolve(opts.from ?? (await bundledArtifactDir(artifactsDir)));
    base = await readArtifactManifest(baseDir);
  } catch (err) {
    // A user-input problem (a wrong --from), reported like a config error: one line, no stack.
    throw new ConfigError(`base artifact: ${(err as Error).message}`);
  }
  const name = opts.name ?? adaptedName(base.name, corpus.info.name);
  if (!ARTIFACT_NAME.test(name)) throw new ConfigError(`--name ${JSON.stringify(name)}: letters, digits, '.', '_', '+' and '-' only`);
  const runDir = path.resolve(opts.runDir ?? (await chooseRunDir(opts.runsDir ?? DEFAULT_RUNS_DIR, name, opts.resume ?? false)));
  const configPath = path.join(runDir, ADAPT_CONFIG_FILE);
  const q = corpus.info.trainQrels;
  log(
    `adapting ${base.name}@${base.version} to ${corpusDir}: ${corpus.info.documents} documents` +
      (q ? `, ${q.queries} train queries (${q.pairs} positives) from qrels/train.tsv` : ", no train qrels (unsupervised)"),
  );

  if (opts.resume && (await pathExists(configPath))) {
    // The saved config is the run's definition: re-deriving could differ (another preset, a changed repeat).
    log(`resuming ${runDir} with its ${ADAPT_CONFIG_FILE}`);
  } else {
    const extended = opts.extendVocab !== undefined ? await extendedVocabulary(baseDir, base, corpus.records, opts.extendVocab, log) : undefined;
    const vocabulary = extended ? { file: path.join(runDir, EXTENDED_TOKENIZER_FILE), size: extended.vocab.length } : undefined;
    const { raw, config } = await deriveConfig(opts, { runDir, baseDir, base, corpusDir, artifactsDir, name, ...(vocabulary ? { vocabulary } : {}) }, corpus.records);
    // Only once the config is known to be valid: a refused run leaves no directory behind.
    await mkdir(runDir, { recursive: true });
    if (extended && vocabulary) await writeFile(vocabulary.file, serializeTokenizer(extended));
    await writeFile(configPath, JSON.stringify(raw, null, 2) + "\n");
    const s = config.data.sources;
    const holdout = s.adapt?.holdoutQueries ?? 0;
    const heldOut = q && holdout > 0 ? `; ${heldOutQueryIds(corpus.records, holdout).length} train queries held out by id for fusion tuning` : "";
    log(
      `run ${runDir}: ${config.training.steps ?? "?"} steps, lr ${config.training.lr}; adapt ×${s.adapt?.repeat ?? 1}` +
        (Object.keys(s).length > 1 ? ` + ${Object.keys(s).filter((k) => k !== "adapt").join(" + ")}` : "") +
        heldOut,
    );
  }

  const trained = await train({
    config: configPath,
    runDir,
    resume: opts.resume ?? false,
    ...(opts.maxMinutes !== undefined ? { maxMinutes: opts.maxMinutes } : {}),
    ...(opts.stopAfterSteps !== undefined ? { stopAfterSteps: opts.stopAfterSteps } : {}),
    progress: opts.progress ?? true,
    log,
  });
  const result: AdaptResult = { ...trained, configPath, corpus: corpus.info };
  if (!trained.exportDir) return result;
  const manifest = await readArtifactManifest(trained.exportDir);
  result.artifact = `${manifest.name}@${manifest.version}`;
  result.changelogRow = changelogRow(manifest, opts.date ?? new Date().toISOString().slice(0, 10));
  const changelog = await appendChangelogRow(path.dirname(trained.exportDir), result.changelogRow);
  log(`exported ${result.artifact}; added its row to ${changelog} (eval figures: add them after npm run eval)`);
  return result;
}

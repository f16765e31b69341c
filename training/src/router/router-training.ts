/**
 * The FastREM router's training pipeline (the library behind `npm run train:router`, training/src/router/train-router.ts):
 * labelling sources from disk, fitting the router from labelled examples (fit.ts) with its report, and writing it into
 * an artifact's manifest with a CHANGELOG line.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseCorpus, parseQrels, parseQueries } from "../../../src/eval/beir.js";
import { FASTREM_CLASSES, FASTREM_FEATURES, classProbabilities, cumulativeRoute, parseFastRemRouter } from "../../../src/model/fastrem.js";
import { lengthRuleOf, routeByTokenCount, type ArtifactManifest, type FastRemRouterSpec, type RouterRule } from "../../../src/model/index.js";
import { buildPairs, normKey, type PairSource } from "../data/pairs.js";
import { readDebianPackages, readWordNetSynsets } from "../data/corpora.js";
import { createRng, deriveSeed, shuffleInPlace } from "../data/random.js";
import { editManifest } from "../export/manifest-edit.js";
import {
  DEFAULT_FIT,
  accuracy,
  chooseConfidence,
  confusionMatrix,
  fitSoftmax,
  outOfFoldProbabilities,
  policyFigures,
  predictClasses,
  type FitOptions,
  type PolicyFigures,
} from "./fit.js";
import type { EmbedSetting, LabelDocument, LabelQuery, LabelSource, LabelledExample } from "./labels.js";

/** Refuses the test split: routing labels from the split the figures are reported on would overstate them. */
export function assertLabellingSplit(split: string): void {
  if (split === "test") {
    throw new Error("refusing --split test: the router must be labelled on a train split (SciFact: --split train) and reported on test");
  }
}

/** A BEIR folder's judged queries of one split (gain > 0) against its whole corpus. */
export async function loadBeirSource(dir: string, split: string, options: { limitQueries?: number } = {}): Promise<LabelSource> {
  assertLabellingSplit(split);
  const read = async (file: string, what: string) => {
    try {
      return await readFile(path.join(dir, file), "utf8");
    } catch {
      throw new Error(`cannot read ${what} at ${path.join(dir, file)}`);
    }
  };
  const documents = parseCorpus(await read("corpus.jsonl", "the corpus"));
  const queries = parseQueries(await read("queries.jsonl", "the queries"));
  const qrels = parseQrels(await read(path.join("qrels", `${split}.tsv`), `the ${split} qrels`));
  let judged: LabelQuery[] = queries.flatMap((q) => {
    const judgements = qrels.get(q.id);
    return judgements && [...judgements.values()].some((g) => g > 0) ? [{ id: q.id, text: q.text, judgements }] : [];
  });
  if (options.limitQueries !== undefined) judged = judged.slice(0, options.limitQueries);
  if (judged.length === 0) throw new Error(`no query in ${dir}/queries.jsonl has a relevant document in qrels/${split}.tsv`);
  return { dataset: path.basename(path.resolve(dir)), split, documents, queries: judged };
}

/** Sources of held-out pairs the CLI can add (`--extra`). */
export const EXTRA_SOURCES = ["debian", "wordnet"] as const satisfies readonly PairSource[];
export type ExtraSource = (typeof EXTRA_SOURCES)[number];

/**
 * Held-out Debian / WordNet pairs as labelling sources: the pairs training/src/data/pairs.ts puts in the validation
 * slice (by a salted hash of the document, seed-independent), i.e. documents the model never trained on. Each source's
 * documents are its distinct held-out documents; `perSource` queries are drawn from its pairs by a seeded shuffle.
 */
export async function heldOutPairSources(
  names: readonly ExtraSource[],
  options: { validationFraction: number; minDocChars: number; perSource: number; seed: number },
): Promise<LabelSource[]> {
  if (names.length === 0) return [];
  const inputs = {
    ...(names.includes("debian") ? { debian: readDebianPackages() } : {}),
    ...(names.includes("wordnet") ? { wordnet: readWordNetSynsets() } : {}),
  };
  const sources = Object.fromEntries(names.map((n) => [n, {}]));
  // maxValidationPairs is a cap after a shuffle; every held-out pair is wanted here, so it is set out of reach.
  const { validation } = await buildPairs(inputs, {
    seed: options.seed,
    validationFraction: options.validationFraction,
    maxValidationPairs: Number.MAX_SAFE_INTEGER,
    minDocChars: options.minDocChars,
    sources,
  });
  return names.map((name) => {
    const pairs = validation.filter((p) => p.source === name);
    const docIds = new Map<string, string>();
    const documents: LabelDocument[] = [];
    for (const pair of pairs) {
      const key = normKey(pair.doc);
      if (!docIds.has(key)) {
        const id = `${name}-doc-${documents.length}`;
        docIds.set(key, id);
        documents.push({ id, text: pair.doc });
      }
    }
    const sampled = shuffleInPlace([...pairs], createRng(deriveSeed(options.seed, `router:${name}`))).slice(0, options.perSource);
    const queries: LabelQuery[] = sampled.map((pair, i) => ({ id: `${name}-q-${i}`, text: pair.query, judgements: new Map([[docIds.get(normKey(pair.doc))!, 1]]) }));
    return { dataset: `${name}-held-out`, split: "validation", documents, queries };
  });
}

export interface RouterTrainingOptions {
  fit: FitOptions;
  folds: number;
  seed: number;
  /** Relative metric loss against always-hard allowed when choosing the confidence (0.01 = 1 %). */
  maxRelativeLoss: number;
  /** Fixed decision confidence instead of the chosen one. */
  confidence?: number;
  /** ISO date for the record (default today). */
  date?: string;
}

export interface RouterReport {
  examples: number;
  classCounts: Record<string, number>;
  bySource: Record<string, { queries: number; classCounts: Record<string, number>; meanMetricByDepth: Record<string, number> }>;
  meanMetricByDepth: Record<string, number>;
  accuracy: { train: number; heldOut: number; majorityClass: number };
  confusion: { train: number[][]; heldOut: number[][]; rows: string; columns: string };
  /** The routed policy at the chosen confidence: out of fold (honest), in sample, and the length rule for comparison. */
  policy: { outOfFold: PolicyFigures; inSample: PolicyFigures; rule: Omit<PolicyFigures, "confidence"> };
  confidenceGrid: { confidence: number; meanDepth: number; metric: number; relativeLoss: number }[];
  confidenceChosenBy: string;
}

const round = (x: number) => Math.round(x * 10_000) / 10_000;

/**
 * Fits the router to labelled examples and reports on it. The confidence is chosen on out-of-fold probabilities (see
 * fit.ts chooseConfidence) unless given; the shipped weights are refitted on every example.
 */
export function trainRouterFromExamples(
  examples: readonly LabelledExample[],
  context: { featureNames: readonly string[]; depths: readonly number[]; rule: RouterRule; model: string; setting: EmbedSetting; sources: LabelSource[] },
  options: RouterTrainingOptions,
): { router: FastRemRouterSpec; report: RouterReport } {
  const N = examples.length;
  if (N < 2) throw new Error(`need at least 2 labelled examples, got ${N}`);
  if (context.depths.length !== FASTREM_CLASSES.length) throw new Error(`FastREM routes between ${FASTREM_CLASSES.length} depths, got ${context.depths.length}`);
  const X = examples.map((e) => e.features);
  const y = examples.map((e) => e.label);
  const metrics = examples.map((e) => e.metrics);
  const folds = Math.min(options.folds, N);
  const oof = outOfFoldProbabilities(X, y, folds, options.seed, options.fit);
  const model = fitSoftmax(X, y, options.fit);
  const inSampleProbabilities = X.map((x) => classProbabilities(model, x));

  let chosen: PolicyFigures;
  const { grid, chosen: best } = chooseConfidence(oof, metrics, context.depths, options.maxRelativeLoss);
  if (options.confidence !== undefined) chosen = policyFigures(oof, metrics, context.depths, options.confidence);
  else chosen = best;
  const confidence = chosen.confidence;

  const counts = (labels: readonly number[]) => Object.fromEntries(FASTREM_CLASSES.map((c, i) => [c, labels.filter((l) => l === i).length]));
  const meanBy = (rows: readonly number[][]) =>
    Object.fromEntries(context.depths.map((d, i) => [String(d), round(rows.reduce((s, m) => s + m[i]!, 0) / Math.max(1, rows.length))]));
  const classCounts = counts(y) as { easy: number; medium: number; hard: number };
  const bySource: RouterReport["bySource"] = {};
  for (const source of new Set(examples.map((e) => e.source))) {
    const part = examples.filter((e) => e.source === source);
    bySource[source] = { queries: part.length, classCounts: counts(part.map((e) => e.label)), meanMetricByDepth: meanBy(part.map((e) => e.metrics)) };
  }
  const trainPred = predictClasses(model, X);
  const oofPred = oof.map((p) => p.indexOf(Math.max(...p)));
  const majority = Math.max(...Object.values(classCounts)) / N;

  // The length rule on the same examples: what the router has to beat.
  const ruleRoutes = examples.map((e) => routeByTokenCount(e.tokens, context.rule));
  const ruleFigures = (() => {
    const c = ruleRoutes.map((r) => FASTREM_CLASSES.indexOf(r));
    const meanDepth = c.reduce((s, k) => s + context.depths[k]!, 0) / N;
    const metric = c.reduce((s, k, i) => s + metrics[i]![k]!, 0) / N;
    const deep = metrics.reduce((s, m) => s + m[m.length - 1]!, 0) / N;
    const routes = { easy: 0, medium: 0, hard: 0 };
    for (const r of ruleRoutes) routes[r]++;
    return { meanDepth, metric, metricAlwaysHard: deep, relativeLoss: deep > 0 ? 1 - metric / deep : 0, routes };
  })();

  const date = options.date ?? new Date().toISOString().slice(0, 10);
  const metricName = context.setting.metric;
  const router = parseFastRemRouter({
    kind: "fastrem",
    features: [...context.featureNames],
    mean: model.mean,
    std: model.std,
    weights: model.weights,
    bias: model.bias,
    decision: { rule: "cumulative", confidence },
    maxTokens: Math.max(...examples.map((e) => e.tokens)),
    rule: context.rule,
    labelledBy: {
      metric: metricName,
      depths: [...context.depths],
      documentDepth: context.setting.documentDepth,
      ...(context.setting.documentPassages ? { documentPassages: { ...context.setting.documentPassages } } : {}),
      dims: context.setting.dims,
      variant: context.setting.variant,
      earlyExit: context.setting.earlyExit,
      ...(context.setting.retrieval?.mode === "hybrid" ? { retrieval: { mode: "hybrid", fusion: context.setting.retrieval.fusion } } : {}),
      rule: `smallest query depth whose ${context.setting.retrieval?.mode === "hybrid" ? "hybrid " : ""}${metricName} ≥ depth ${context.depths[context.depths.length - 1]}'s; ties → smaller depth`,
    },
    trainedOn: {
      sources: context.sources.map((s) => ({ dataset: s.dataset, split: s.split, queries: s.queries.length })),
      examples: N,
      classCounts,
      model: context.model,
      seed: options.seed,
      l2: options.fit.l2,
      epochs: options.fit.epochs,
      learningRate: options.fit.learningRate,
      folds,
      date,
      estimate: { meanDepth: round(chosen.meanDepth), metric: round(chosen.metric), metricAlwaysHard: round(chosen.metricAlwaysHard) },
    },
    accuracy: { train: round(accuracy(y, trainPred)), heldOut: round(accuracy(y, oofPred)) },
  });
  const inSample = policyFigures(inSampleProbabilities, metrics, context.depths, confidence);
  const roundPolicy = <T extends Partial<PolicyFigures>>(p: T): T => ({
    ...p,
    ...(p.meanDepth !== undefined ? { meanDepth: round(p.meanDepth) } : {}),
    ...(p.metric !== undefined ? { metric: round(p.metric) } : {}),
    ...(p.metricAlwaysHard !== undefined ? { metricAlwaysHard: round(p.metricAlwaysHard) } : {}),
    ...(p.relativeLoss !== undefined ? { relativeLoss: round(p.relativeLoss) } : {}),
  });
  return {
    router,
    report: {
      examples: N,
      classCounts,
      bySource,
      meanMetricByDepth: meanBy(metrics),
      accuracy: { train: router.accuracy.train, heldOut: router.accuracy.heldOut, majorityClass: round(majority) },
      confusion: { train: confusionMatrix(y, trainPred), heldOut: confusionMatrix(y, oofPred), rows: "true easy/medium/hard", columns: "predicted (argmax) easy/medium/hard" },
      policy: { outOfFold: roundPolicy(chosen), inSample: roundPolicy(inSample), rule: roundPolicy(ruleFigures) },
      confidenceGrid: grid.map((p) => ({ confidence: p.confidence, meanDepth: round(p.meanDepth), metric: round(p.metric), relativeLoss: round(p.relativeLoss) })),
      confidenceChosenBy:
        options.confidence !== undefined
          ? "given (--confidence)"
          : `cheapest out-of-fold mean depth with relative ${metricName} loss ≤ ${options.maxRelativeLoss} against always depth ${context.depths[context.depths.length - 1]}; ties → higher confidence`,
    },
  };
}

export { DEFAULT_FIT, FASTREM_FEATURES };

/** manifest.json's object with `router` replaced (every other member kept, in order). */
export function withRouter(raw: Readonly<Record<string, unknown>>, router: FastRemRouterSpec): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).map(([key, value]) => [key, key === "router" ? router : value]));
}

/**
 * manifest.json's text with the top-level `router` member replaced, changing only those lines (the exporter's own
 * formatting elsewhere — escapes, number spellings — is kept). The splice must parse to exactly {@link withRouter}'s
 * object; if it cannot promise that, the whole object is written afresh (two-space indent), still the same manifest.
 */
export function manifestTextWithRouter(originalText: string, router: FastRemRouterSpec): string {
  const raw = JSON.parse(originalText) as Record<string, unknown>;
  const intended = withRouter(raw, router);
  const fallback = `${JSON.stringify(intended, null, 2)}\n`;
  const start = originalText.indexOf('\n  "router": ');
  if (start < 0) return fallback;
  const open = originalText.indexOf("{", start);
  const end = matchingBrace(originalText, open);
  if (open < 0 || end < 0) return fallback;
  const member = JSON.stringify(router, null, 2).replaceAll("\n", "\n  ");
  const spliced = `${originalText.slice(0, open)}${member}${originalText.slice(end + 1)}`;
  try {
    return JSON.stringify(JSON.parse(spliced)) === JSON.stringify(intended) ? spliced : fallback;
  } catch {
    return fallback;
  }
}

/** Index of the "}" closing the "{" at `open`, skipping braces inside JSON strings; −1 if unbalanced. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0) return i;
  }
  return -1;
}

function describeRouter(manifest: ArtifactManifest): string {
  const r = manifest.router;
  return r.kind === "rule" ? `rule ≤ ${r.easyMaxTokens} / ≤ ${r.mediumMaxTokens} tokens` : `FastREM of ${r.trainedOn.date} (confidence ${r.decision.confidence})`;
}

/** The CHANGELOG line of a write: what the artifact now routes with, what it replaced, the figures and the command. */
export function routerChangelogLine(label: string, router: FastRemRouterSpec, previous: ArtifactManifest, command?: string): string {
  const t = router.trainedOn;
  const sources = t.sources.map((s) => `${s.dataset} ${s.split} ${s.queries}`).join(" + ");
  const e = t.estimate;
  const r = router.labelledBy.retrieval;
  const metric = r ? `hybrid ${router.labelledBy.metric} (${r.fusion.method} lexical ${r.fusion.weights.lexical} / dense ${r.fusion.weights.dense})` : `dense ${router.labelledBy.metric}`;
  const estimate = e ? `; out-of-fold mean query depth ${e.meanDepth}, ${metric} ${e.metric} vs always depth ${router.labelledBy.depths.at(-1)} ${e.metricAlwaysHard}` : "";
  return (
    `- router trained: ${label}, ${t.date} — FastREM (${router.features.length} features, confidence ${router.decision.confidence}, ` +
    `maxTokens ${router.maxTokens}; was ${describeRouter(previous)}); labels: ${sources} queries, ${metric} at depths ` +
    `${router.labelledBy.depths.join("/")} (${router.labelledBy.dims}-d ${router.labelledBy.variant}); accuracy ${router.accuracy.train} in sample, ` +
    `${router.accuracy.heldOut} out of fold (${t.folds}-fold)${estimate}` +
    (command ? ` (\`${command}\`)` : "")
  );
}


/**
 * Writes `router` into `<artifactDir>/manifest.json` and appends a line to CHANGELOG.md beside the artifact folder (when
 * there is one). The new manifest is validated before anything is written and must list the same files as before.
 */
export async function writeRouter(artifactDir: string, router: FastRemRouterSpec, command?: string): Promise<{ manifest: string; changelog: string | null; line: string }> {
  for (const source of router.trainedOn.sources) assertLabellingSplit(source.split);
  return editManifest(
    artifactDir,
    "writing the router",
    (text) => manifestTextWithRouter(text, router),
    (before) => routerChangelogLine(`${before.name}@${before.version}`, router, before, command),
  );
}

/** The validation fraction and minimum document length the artifact's trainer used (defaults as in training/src/train/config.ts). */
export function heldOutSettings(manifest: ArtifactManifest): { validationFraction: number; minDocChars: number } {
  const config = manifest.training["config"];
  const data = typeof config === "object" && config !== null ? (config as Record<string, unknown>)["data"] : undefined;
  const get = (key: string, fallback: number) => {
    const value = typeof data === "object" && data !== null ? (data as Record<string, unknown>)[key] : undefined;
    return typeof value === "number" && Number.isFinite(value) ? value : fallback;
  };
  return { validationFraction: get("validationFraction", 0.01), minDocChars: get("minDocChars", 16) };
}

/** The manifest with the length rule as its router: how the index embeds documents, whatever router the artifact ships. */
export function withLengthRule(manifest: ArtifactManifest): ArtifactManifest {
  return { ...manifest, router: lengthRuleOf(manifest.router) };
}

/** Routes of examples under a router spec (for reports and tests): the guard, then the cumulative decision. */
export function routeExamples(router: FastRemRouterSpec, examples: readonly LabelledExample[]): string[] {
  return examples.map((e) => (e.tokens > router.maxTokens ? "hard" : cumulativeRoute(classProbabilities(router, e.features), router.decision.confidence)));
}

/**
 * `npm run eval:subspaces`: what each named subspace of an artifact's embedding carries (src/model/taesr-config.ts:
 * semantic [0,192), temporal [192,256), procedural [256,320), contextual [320,384)).
 *
 *   npm run eval:subspaces -- [--artifact model-artifacts/<name>@<version>] [--pairs-per-source 300] [--depth 6]
 *
 * - Texts: the queries and documents of a seeded sample of Debian, WordNet and SciFact-corpus pairs (never SciFact
 *   queries), labelled by training/src/data/subspace-labels.ts (temporal, procedural: binary; contextual: the source).
 * - Probes: for every (label, slice) a logistic-regression probe (class-balanced, on the L2-normalised slice, as the
 *   training probes read it) is fitted on 70 % of the pairs and scored on the other 30 % (split by pair, so a query and
 *   its document never straddle it). Slices: each 64-d subspace and, as a control of the same width, the first 64 dims
 *   of semantic. Reported: balanced accuracy (mean per-class recall; a constant guess gets 1/classes) and accuracy
 *   against the majority rate. A trained subspace should read its own label better than the other slices do.
 * - Shares: each subspace's part of the cosine of a query with its own document and with another pair's (subspaceShares).
 *
 * Every text is embedded at one fixed depth (default: the artifact's hard depth), fp32 weights, tfjs on wasm. Cheap:
 * about a minute for the bundled model at the default sizes. The JSON goes to stdout, a table to stderr.
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { Command } from "commander";
import { parseTaesrConfig, SUBSPACE_NAMES, type SubspaceName } from "../src/model/taesr-config.js";
import { subspaceShares } from "../src/model/taesr-model.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../src/tokenizer/index.js";
import { initBackend } from "../training/src/backend.js";
import { readDebianPackages, readSciFactCorpus, readWordNetSynsets } from "../training/src/data/corpora.js";
import { buildPairs, normKey, type TextPair } from "../training/src/data/pairs.js";
import { hashUnit } from "../training/src/data/random.js";
import { CONTEXT_CLASSES, labelRows, visibleWords } from "../training/src/data/subspace-labels.js";
import { loadArtifactWeights } from "../training/src/model/artifact-weights.js";
import { forward } from "../training/src/model/forward.js";
import { paramsFromWeights, type TaesrParams } from "../training/src/model/params.js";
import { positiveInteger } from "./cli-options.js";
import { defaultArtifactDir } from "./default-artifact.js";

const program = new Command()
  .name("npm run eval:subspaces --")
  .description("Probe each named subspace of an artifact's embedding for its label, and split query-document scores by subspace.")
  .option("--artifact <dir>", "artifact directory (default: the bundled model)")
  .option("--pairs-per-source <n>", "pairs sampled from each of Debian, WordNet and SciFact", positiveInteger, 300)
  .option("--depth <n>", "recursion steps for every text (default: the artifact's hard depth)", positiveInteger)
  .option("--seed <n>", "sample seed", positiveInteger, 1)
  .parse();
const options = program.opts<{ artifact?: string; pairsPerSource: number; depth?: number; seed: number }>();
const log = (line: string) => process.stderr.write(`[subspaces] ${line}\n`);

type Label = "temporal" | "procedural" | "contextual";
const LABELS: readonly Label[] = ["temporal", "procedural", "contextual"];

/** Row-major [rows, width] embeddings of `texts` (unnormalised, full width) after `depth` steps. */
function embed(
  params: TaesrParams,
  tokenizer: WordPieceTokenizer,
  texts: readonly string[],
  maxLength: number,
  depth: number,
): Float32Array {
  const encoded = texts.map((t) => tokenizer.encode(t, { maxLength }));
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.length - encoded[b]!.length);
  let out: Float32Array | undefined;
  for (let start = 0; start < order.length; start += 64) {
    const rows = order.slice(start, start + 64);
    const length = Math.max(1, ...rows.map((i) => encoded[i]!.length));
    const ids = new Int32Array(rows.length * length).fill(tokenizer.padId);
    const mask = new Float32Array(rows.length * length);
    rows.forEach((i, r) => {
      ids.set(encoded[i]!, r * length);
      mask.fill(1, r * length, r * length + encoded[i]!.length);
    });
    const values = tf.tidy(() => {
      const steps = forward(params, tf.tensor2d(ids, [rows.length, length], "int32"), tf.tensor2d(mask, [rows.length, length]), depth);
      return steps[depth - 1]!.dataSync() as Float32Array;
    });
    const width = values.length / rows.length;
    out ??= new Float32Array(texts.length * width);
    rows.forEach((i, r) => out!.set(values.subarray(r * width, (r + 1) * width), i * width));
  }
  return out ?? new Float32Array();
}

/** √width · the L2-normalised slice [start, end) of every row (the training probes' input). */
function features(embeddings: Float32Array, width: number, [start, end]: readonly [number, number]): Float32Array[] {
  const rows = embeddings.length / width;
  return Array.from({ length: rows }, (_, r) => {
    const x = embeddings.slice(r * width + start, r * width + end);
    const norm = Math.sqrt(x.reduce((a, v) => a + v * v, 0)) || 1;
    return x.map((v) => (v / norm) * Math.sqrt(end - start));
  });
}

/** Class-balanced multinomial logistic regression, full-batch gradient descent with a little L2. */
function fitProbe(x: readonly Float32Array[], y: readonly number[], classes: number, iterations = 300, lr = 0.5, l2 = 1e-3): (row: Float32Array) => number {
  const dim = x[0]?.length ?? 0;
  const w = new Float64Array(dim * classes);
  const b = new Float64Array(classes);
  const counts = new Array<number>(classes).fill(0);
  for (const k of y) counts[k]!++;
  const present = counts.filter((c) => c > 0).length;
  const rowWeight = y.map((k) => 1 / (present * counts[k]!));
  const logits = (row: Float32Array): number[] => Array.from({ length: classes }, (_, c) => row.reduce((a, v, j) => a + v * w[j * classes + c]!, b[c]!));
  for (let it = 0; it < iterations; it++) {
    const gw = new Float64Array(dim * classes);
    const gb = new Float64Array(classes);
    x.forEach((row, i) => {
      const z = logits(row);
      const max = Math.max(...z);
      const e = z.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, v) => a + v, 0);
      for (let c = 0; c < classes; c++) {
        const d = (rowWeight[i]! * ((e[c]! / sum) - (y[i] === c ? 1 : 0)));
        gb[c]! += d;
        for (let j = 0; j < dim; j++) gw[j * classes + c]! += d * row[j]!;
      }
    });
    for (let k = 0; k < w.length; k++) w[k]! -= lr * (gw[k]! + l2 * w[k]!);
    for (let c = 0; c < classes; c++) b[c]! -= lr * gb[c]!;
  }
  return (row) => {
    const z = logits(row);
    return z.indexOf(Math.max(...z));
  };
}

interface Score {
  balancedAccuracy: number;
  accuracy: number;
  majority: number;
  /** What a constant guess gets in balanced accuracy: 1 / classes present. */
  chance: number;
}

function score(predict: (row: Float32Array) => number, x: readonly Float32Array[], y: readonly number[], classes: number): Score {
  const counts = new Array<number>(classes).fill(0);
  const hits = new Array<number>(classes).fill(0);
  x.forEach((row, i) => {
    counts[y[i]!]!++;
    if (predict(row) === y[i]) hits[y[i]!]!++;
  });
  const recalls = counts.flatMap((c, k) => (c > 0 ? [hits[k]! / c] : []));
  const total = counts.reduce((a, c) => a + c, 0);
  return {
    balancedAccuracy: recalls.reduce((a, r) => a + r, 0) / recalls.length,
    accuracy: hits.reduce((a, h) => a + h, 0) / total,
    majority: Math.max(...counts) / total,
    chance: 1 / recalls.length,
  };
}

async function main(): Promise<void> {
  const dir = path.resolve(options.artifact ?? (await defaultArtifactDir()));
  await initBackend("wasm");
  const { architecture: arch, weights, manifest } = await loadArtifactWeights(dir);
  const tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(path.join(dir, manifest.tokenizer), "utf8")) as TokenizerJSON);
  const depth = options.depth ?? arch.depths.hard;
  const config = parseTaesrConfig({ outputDim: arch.outputDim, matryoshkaDims: arch.matryoshkaDims });
  const n = options.pairsPerSource;
  const set = await buildPairs(
    { debian: readDebianPackages(), wordnet: readWordNetSynsets(), scifact: readSciFactCorpus() },
    { seed: options.seed, validationFraction: 0, maxValidationPairs: 0, minDocChars: 16, sources: { debian: { maxPairs: n }, wordnet: { maxPairs: n }, scifact: { maxPairs: n } } },
  );
  const pairs: TextPair[] = set.train;
  log(`${dir}: ${pairs.length} pairs, depth ${depth}`);
  const params = paramsFromWeights(arch, weights);
  const t0 = performance.now();
  const q = embed(params, tokenizer, pairs.map((p) => p.query), arch.maxLength, depth);
  const d = embed(params, tokenizer, pairs.map((p) => p.doc), arch.maxLength, depth);
  log(`embedded ${2 * pairs.length} texts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const width = arch.outputDim;

  // Rows: every query, then every document; a pair's two rows fall on the same side of the split.
  const all = new Float32Array(2 * pairs.length * width);
  all.set(q);
  all.set(d, pairs.length * width);
  const rowPairs = [...pairs, ...pairs];
  // Labelled on the words the model sees (texts are cut at the artifact's maxLength), as in training.
  const visible = (text: string) => visibleWords(text, tokenizer.encode(text, { maxLength: arch.maxLength }).length);
  const labels = labelRows([
    ...pairs.map((p) => ({ text: visible(p.query), source: p.source })),
    ...pairs.map((p) => ({ text: visible(p.doc), source: p.source })),
  ]);
  const isTrain = rowPairs.map((p) => hashUnit(normKey(p.doc), 0x5ab) < 0.7);
  const slices: Record<string, readonly [number, number]> = {
    "semantic[0,64)": [config.subspaces.semantic[0], config.subspaces.semantic[0] + 64],
    temporal: config.subspaces.temporal,
    procedural: config.subspaces.procedural,
    contextual: config.subspaces.contextual,
  };
  const probes: Record<Label, Record<string, Score>> = { temporal: {}, procedural: {}, contextual: {} };
  for (const [sliceName, range] of Object.entries(slices)) {
    const x = features(all, width, range);
    for (const label of LABELS) {
      const y = Array.from(labels[label], (v) => Number(v));
      const classes = label === "contextual" ? CONTEXT_CLASSES.length : 2;
      const predict = fitProbe(x.filter((_, i) => isTrain[i]), y.filter((_, i) => isTrain[i]), classes);
      probes[label][sliceName] = score(predict, x.filter((_, i) => !isTrain[i]), y.filter((_, i) => !isTrain[i]), classes);
    }
  }

  // Shares of the cosine: positives (query i, document i) and mismatched pairs (query i, document i+1).
  const unit = (m: Float32Array, i: number) => {
    const v = m.slice(i * width, (i + 1) * width);
    const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0)) || 1;
    return v.map((x) => x / norm);
  };
  const meanShares = (other: (i: number) => number) => {
    const sums = Object.fromEntries(SUBSPACE_NAMES.map((s) => [s, 0])) as Record<SubspaceName, number>;
    let total = 0;
    for (let i = 0; i < pairs.length; i++) {
      const s = subspaceShares(config, unit(q, i), unit(d, other(i)));
      total += s.total;
      for (const name of SUBSPACE_NAMES) sums[name] += s.shares[name];
    }
    return { cosine: total / pairs.length, shares: Object.fromEntries(SUBSPACE_NAMES.map((s) => [s, sums[s] / pairs.length])) };
  };
  const shares = { positive: meanShares((i) => i), mismatched: meanShares((i) => (i + 1) % pairs.length) };

  const fmt = (x: number) => x.toFixed(3);
  // Both figures: plain accuracy alone hides a probe that answers the majority class (temporal, procedural are rare).
  log(`held-out probe balanced accuracy (plain accuracy) (chance: 0.5 binary, 1/3 contextual) — rows: label, columns: slice`);
  log(`| label | ${Object.keys(slices).join(" | ")} | majority rate |`);
  for (const label of LABELS) {
    const row = Object.keys(slices).map((s) => `${fmt(probes[label][s]!.balancedAccuracy)} (${fmt(probes[label][s]!.accuracy)})`);
    log(`| ${label} | ${row.join(" | ")} | ${fmt(probes[label]["temporal"]!.majority)} |`);
  }
  for (const [kind, r] of Object.entries(shares)) {
    log(`${kind} pairs: cosine ${fmt(r.cosine)} = ${SUBSPACE_NAMES.map((s) => `${s} ${fmt(r.shares[s]!)}`).join(" + ")}`);
  }
  process.stdout.write(
    JSON.stringify({ artifact: `${manifest.name}@${manifest.version}`, depth, pairs: pairs.length, texts: 2 * pairs.length, probes, shares }, null, 1) + "\n",
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`[subspaces] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

/**
 * Encoding in length groups (src/train/length-groups.ts): the cut is the cheapest one (against every possible cut), the
 * grouped encode gives one encode's embeddings and token states in the matrix's own row order, the batcher orders queries and the probe sample
 * shortest first with each pair kept whole, and a micro-batch run on groups has the loss and gradients of every
 * objective (dense, late, sparse, subspaces) computed on the whole padded matrices — in fewer padded positions. Also
 * `objectives.subspaces.steps`: the probes read only the listed steps, and the config refuses steps the model lacks.
 */
import { readFile } from "node:fs/promises";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTaesrConfig } from "../../src/model/taesr-config.js";
import { weightNamesIn, type WeightName } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import { PairBatcher, type EncodedBatch, type TokenMatrix } from "../src/data/batches.js";
import type { PairSource, TextPair } from "../src/data/pairs.js";
import { labelRows } from "../src/data/subspace-labels.js";
import { encode } from "../src/model/forward.js";
import { initParams, mulberry32, type TaesrParams } from "../src/model/params.js";
import { sparseHead } from "../src/model/sparse-head.js";
import { parseConfig } from "../src/train/config.js";
import { lateLoss } from "../src/train/late-loss.js";
import { encodeInLengthGroups, groupsOf, lengthGroups, permuteRows, rowLengths } from "../src/train/length-groups.js";
import { contrastiveLoss, type ContrastiveLossOptions } from "../src/train/loss.js";
import { microBatchGradients, type MicroBatchResult } from "../src/train/micro-batch.js";
import { sparseLoss } from "../src/train/sparse-loss.js";
import { initProbes, probedRanges, probeNames, subspaceLoss, type SubspaceLossOptions } from "../src/train/subspace-loss.js";
import { microArchitecture } from "./support/architectures.js";
import { TINY_CONFIG } from "./support/tiny-config.js";
import { randomWord, wordTokenizer } from "./support/toy-text.js";

/** Cost of cutting rows of `lengths` into consecutive groups of `sizes`, each padded to its longest row. */
function costOf(lengths: readonly number[], sizes: readonly number[], groupCost: number): number {
  let start = 0;
  let cost = 0;
  for (const size of sizes) {
    cost += size * Math.max(1, ...lengths.slice(start, start + size)) + groupCost;
    start += size;
  }
  return cost;
}

/** The cheapest cost over all 2^(n−1) ways to cut n rows into consecutive groups. */
function bruteForceCost(lengths: readonly number[], groupCost: number): number {
  const n = lengths.length;
  let best = Infinity;
  for (let mask = 0; mask < 1 << (n - 1); mask++) {
    const sizes: number[] = [];
    let size = 1;
    for (let i = 0; i < n - 1; i++) {
      if (mask & (1 << i)) {
        sizes.push(size);
        size = 1;
      } else size++;
    }
    sizes.push(size);
    best = Math.min(best, costOf(lengths, sizes, groupCost));
  }
  return best;
}

describe("lengthGroups", () => {
  it("finds the cheapest cut of every random case, sorted or not, against all possible cuts", () => {
    const rand = mulberry32(17);
    for (let trial = 0; trial < 80; trial++) {
      const n = 1 + Math.floor(rand() * 10);
      const lengths = Array.from({ length: n }, () => 1 + Math.floor(rand() * (rand() < 0.5 ? 8 : 256)));
      if (trial % 2 === 0) lengths.sort((a, b) => a - b);
      const groupCost = [0, 16, 64, 1000][trial % 4]!;
      const sizes = lengthGroups(lengths, groupCost);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
      expect(sizes.every((s) => s > 0)).toBe(true);
      expect(costOf(lengths, sizes, groupCost)).toBe(bruteForceCost(lengths, groupCost));
    }
  });

  it("keeps one group when a group costs more than any padding, and splits at every length when groups are free", () => {
    expect(lengthGroups([3, 4, 200, 256], 1e9)).toEqual([4]);
    const free = lengthGroups([2, 2, 5, 5, 5, 9], 0);
    expect(costOf([2, 2, 5, 5, 5, 9], free, 0)).toBe(28);
    expect(free.length).toBeGreaterThanOrEqual(3);
    expect(lengthGroups([])).toEqual([]);
  });
});

/** Word-per-token toy tokenizer over a 60-piece vocabulary (0 = padding). */
const VOCAB = 60;
const tokenizer = wordTokenizer(VOCAB);

/** Queries of 1–3 or 17–32 words beside documents of 2–12, three sources: the mix a batch and the probe sample draw from. */
function mixedPairs(): TextPair[] {
  const rand = mulberry32(23);
  const sources: PairSource[] = ["debian", "wordnet", "scifact"];
  const word = () => randomWord(rand);
  return Array.from({ length: 40 }, (_, i) => ({
    query: [`q${i}`, ...Array.from({ length: rand() < 0.5 ? Math.floor(rand() * 3) : 16 + Math.floor(rand() * 16) }, word)].join(" "),
    doc: [`d${i}`, ...Array.from({ length: 1 + Math.floor(rand() * 11) }, word)].join(" "),
    source: sources[i % 3]!,
    kind: "title->text",
  }));
}

const options = { batchSize: 8, maxQueryLength: 32, maxDocLength: 12, seed: 5, probeRows: 24 };
const ascending = (xs: number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! <= x);

describe("PairBatcher orders rows for length groups", () => {
  const pairs = mixedPairs();
  const batcher = new PairBatcher(pairs, tokenizer, options);
  const indices = [0, 3, 5, 7, 11, 13, 17, 19];

  it("encodes a batch's pairs shortest query first, each query beside its own document", () => {
    const batch = batcher.encode(indices);
    expect(ascending(rowLengths(batch.queries))).toBe(true);
    expect(new Set(rowLengths(batch.queries)).size).toBeGreaterThan(2);
    // Row r's query and document come from the same pair: their first words are q<i> and d<i>.
    const firstId = (m: TokenMatrix, r: number) => m.ids[r * m.length]!;
    const rows = Array.from({ length: 8 }, (_, r) => [firstId(batch.queries, r), firstId(batch.docs, r)]);
    expect(rows.sort()).toEqual(indices.map((i) => [tokenizer.encode(`q${i}`, { maxLength: 1 })[0], tokenizer.encode(`d${i}`, { maxLength: 1 })[0]]).sort());
    for (let r = 0; r < 8; r++) {
      const i = indices.find((k) => tokenizer.encode(pairs[k]!.query, { maxLength: 32 }).join() === Array.from(batch.queries.ids.slice(r * batch.queries.length, r * batch.queries.length + rowLengths(batch.queries)[r]!)).join());
      expect(i, `query row ${r}`).toBeDefined();
      const doc = tokenizer.encode(pairs[i!]!.doc, { maxLength: 12 });
      expect(Array.from(batch.docs.ids.slice(r * batch.docs.length, r * batch.docs.length + doc.length)), `document row ${r}`).toEqual(doc);
    }
  });

  it("draws the probe sample as before, shortest first, the same for the same batch", () => {
    const sample = batcher.probeSample(indices, 24);
    const lengths = rowLengths(sample.matrix);
    expect(ascending(lengths)).toBe(true);
    // Each row's label text is the words its tokens cover.
    lengths.forEach((n, i) => expect(sample.rows[i]!.text.split(" ")).toHaveLength(n));
    expect(new PairBatcher(mixedPairs(), tokenizer, options).probeSample(indices, 24)).toEqual(sample);
    expect(groupsOf(sample.matrix).length).toBeGreaterThan(1);
  });
});

// Depths 1/3/6 as the runs train them, the default 384-d output so the probed subspaces exist, and both heads.
const arch = microArchitecture({ vocabSize: VOCAB, heads: 4, maxLength: 32, matryoshkaDims: [64, 384], depths: { easy: 1, medium: 3, hard: 6 }, lateHead: { dim: 4 }, sparseHead: true });
const tensors = (m: TokenMatrix) => [tf.tensor2d(m.ids, [m.rows, m.length], "int32"), tf.tensor2d(m.mask, [m.rows, m.length], "float32")] as const;
const maxAbs = (x: ArrayLike<number>) => Math.max(...Array.from(x, Math.abs));
const maxAbsDiff = (x: ArrayLike<number>, y: ArrayLike<number>) => Math.max(...Array.from(y, (v, i) => Math.abs(x[i]! - v)));

describe("encoding in length groups", () => {
  let params: TaesrParams;
  let subspaces: { probes: ReturnType<typeof initProbes>; loss: SubspaceLossOptions };
  const lossOptions: ContrastiveLossOptions = { temperature: 0.05, symmetric: true, dims: arch.matryoshkaDims, steps: [1, 3, 6], stepWeights: [1, 1, 1], documentSteps: [1] };
  const late = { weight: 0.5, temperature: 0.1, steps: [6] };
  const sparse = { weight: 0.3, lambdaQuery: 0.01, lambdaDoc: 0.02 };

  beforeAll(async () => {
    await initBackend("wasm");
    params = initParams(arch, 5);
    const ranges = probedRanges(parseTaesrConfig({}).subspaces);
    subspaces = {
      probes: initProbes(ranges, 9),
      loss: { ranges, weight: 0.5, weights: { temporal: 1, procedural: 1, contextual: 1 }, steps: [1, 3, 6], stepWeights: [1, 1, 1] },
    };
  });
  afterAll(() => {
    Object.values(params).forEach((v) => v.dispose());
    Object.values(subspaces.probes).forEach((v) => v.dispose());
  });

  it("gives one encode's embeddings, and its states at every token, in the matrix's row order", () => {
    const sample = new PairBatcher(mixedPairs(), tokenizer, options).probeSample([2, 4, 6, 8, 10, 12, 14, 16], 24);
    // Shortest first as the batcher orders it, and interleaved long / short (sorted, encoded, gathered back).
    const interleaved = Array.from({ length: 24 }, (_, r) => (r % 2 === 0 ? 23 - r / 2 : (r - 1) / 2));
    const shuffled = permuteRows(sample.matrix, interleaved);
    for (const m of [sample.matrix, shuffled]) tf.tidy(() => {
      const whole = encode(params, ...tensors(m), 6);
      const grouped = encodeInLengthGroups(params, m, 6);
      expect(grouped.paddedPositions).toBeLessThan(m.rows * m.length);
      for (let k = 0; k < 6; k++) {
        const a = grouped.embeddings[k]!.dataSync();
        expect(maxAbsDiff(a, whole.embeddings[k]!.dataSync()) / maxAbs(a), `embedding, step ${k + 1}`).toBeLessThanOrEqual(1e-5);
        expect(grouped.states[k]!.shape).toEqual(whole.states[k]!.shape);
        const mask = tf.expandDims(tf.tensor2d(m.mask, [m.rows, m.length]), 2);
        const s = tf.mul(grouped.states[k]!, mask).dataSync();
        expect(maxAbsDiff(s, tf.mul(whole.states[k]!, mask).dataSync()) / maxAbs(s), `states, step ${k + 1}`).toBeLessThanOrEqual(1e-5);
      }
    });
    expect(ascending(rowLengths(shuffled))).toBe(false);
  });

  it("train every objective with the loss and gradients of the whole padded matrices, in fewer padded positions", () => {
    const batcher = new PairBatcher(mixedPairs(), tokenizer, options);
    const batch: EncodedBatch = batcher.encode([1, 2, 4, 6, 8, 10, 12, 14]);
    const sample = batch.probe!;
    expect(groupsOf(batch.queries).length).toBeGreaterThan(1);
    // The documents follow their queries, so they are out of length order: sorted, grouped and gathered back.
    expect(ascending(rowLengths(batch.docs))).toBe(false);
    const names = weightNamesIn(params);
    const variables = [...names.map((n) => params[n]), ...probeNames().map((n) => subspaces.probes[n])];
    const want = tf.variableGrads(() => {
      const [qIds, qMask] = tensors(batch.queries);
      const [dIds, dMask] = tensors(batch.docs);
      const q = encode(params, qIds, qMask, 6);
      const d = encode(params, dIds, dMask, 1);
      const dense = contrastiveLoss(q.embeddings, d.embeddings, lossOptions).total;
      const lateTerm = tf.mul(lateLoss(params, q.states[5]!, qMask, d.states[0]!, dMask, late.temperature), late.weight);
      const sparseTerm = tf.mul(sparseLoss(sparseHead(params, q.states[5]!, qMask), sparseHead(params, d.states[0]!, dMask), sparse, true).total, sparse.weight);
      const probe = encode(params, ...tensors(sample.matrix), 6);
      const sub = subspaceLoss(subspaces.probes, probe.embeddings, labelRows(sample.rows), subspaces.loss).total;
      return tf.addN([dense, lateTerm, sparseTerm, sub]) as tf.Scalar;
    }, variables);
    const got = microBatchGradients(params, lossOptions, [batch], { late, sparse, subspaces });
    expect(got.losses[0]).toBeCloseTo(want.value.dataSync()[0]!, 5);
    // Against the largest gradient entry of all weights, not each weight's own: the key bias's gradient is zero up to
    // rounding (a constant added to every key's logit leaves the softmax unchanged), so its own scale is rounding.
    const scale = Math.max(...names.map((n) => maxAbs(want.grads[params[n].name]!.dataSync())));
    for (const n of names) {
      expect(maxAbsDiff(got.gradSums[n as WeightName].dataSync(), want.grads[params[n].name]!.dataSync()) / scale, n).toBeLessThanOrEqual(1e-5);
    }
    for (const n of probeNames()) {
      const g = got.auxGradSums![n].dataSync();
      expect(maxAbs(g), n).toBeGreaterThan(0);
      expect(maxAbsDiff(g, want.grads[subspaces.probes[n].name]!.dataSync()) / maxAbs(g), n).toBeLessThanOrEqual(1e-5);
    }
    // The heads are trained through the padded states (a head without gradient would be a silent no-op).
    for (const n of ["late.proj.w", "sparse.bias", "block.ffn.w1"]) expect(maxAbs(got.gradSums[n as WeightName].dataSync()), n).toBeGreaterThan(0);
    const whole = batch.queries.rows * batch.queries.length + batch.docs.rows * batch.docs.length + sample.matrix.rows * sample.matrix.length;
    expect(got.paddedTokens).toBeLessThan(whole);
    expect(got.tokens).toBe(batch.queries.tokens + batch.docs.tokens + sample.matrix.tokens);
    dispose(got);
    Object.values(want.grads).forEach((g) => g.dispose());
    want.value.dispose();
  });

  it("read the subspaces at the listed steps only (objectives.subspaces.steps): [1] is the loss of the first-step embeddings", () => {
    const batch = new PairBatcher(mixedPairs(), tokenizer, options).encode([1, 2, 4, 6, 8, 10, 12, 14]);
    const sample = batch.probe!;
    const firstStep = { ...subspaces, loss: { ...subspaces.loss, steps: [1], stepWeights: [1] } };
    const got = microBatchGradients(params, lossOptions, [batch], { subspaces: firstStep });
    const all = microBatchGradients(params, lossOptions, [batch], { subspaces });
    const want = tf.tidy(() => {
      const [e1] = encode(params, ...tensors(sample.matrix), 1).embeddings;
      return subspaceLoss(subspaces.probes, [e1!], labelRows(sample.rows), firstStep.loss).total.dataSync()[0]!;
    });
    expect(got.objectives[0]!["subspaces"]).toBeCloseTo(want, 5);
    expect(Math.abs(got.objectives[0]!["subspaces"]! - all.objectives[0]!["subspaces"]!)).toBeGreaterThan(1e-4);
    for (const r of [got, all]) dispose(r);
  });
});

describe("objectives.subspaces.steps in a config", () => {
  const withSteps = async (steps: number[]) => {
    const raw = JSON.parse(await readFile(TINY_CONFIG, "utf8")) as Record<string, any>;
    raw["training"] = { ...raw["training"], objectives: { subspaces: { weight: 0.1, steps } } };
    return () => parseConfig(raw, "steps.json");
  };

  it("accepts steps the model runs, and refuses deeper ones or a step listed twice, naming the field", async () => {
    expect((await withSteps([1]))().training.objectives?.subspaces?.steps).toEqual([1]);
    expect(await withSteps([99])).toThrow(/step 99 exceeds arch\.depths\.hard[\s\S]*training\.objectives\.subspaces\.steps/);
    expect(await withSteps([1, 1])).toThrow(/lists a step twice[\s\S]*training\.objectives\.subspaces\.steps/);
  });
});

function dispose(r: MicroBatchResult): void {
  Object.values(r.gradSums).forEach((g) => g.dispose());
  Object.values(r.auxGradSums ?? {}).forEach((g) => g.dispose());
}

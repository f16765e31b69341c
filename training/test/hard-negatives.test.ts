/**
 * Hard negatives end to end through the data path: mining by BM25 and by an artifact's dense embeddings (which document,
 * never a positive, never a held-out one), the batcher (negatives become extra document rows, a negative that is some row's positive is left out), the
 * loss (query→doc normalises over the negatives, doc→query ignores them), and per-kind oversampling.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TaesrEncoder } from "../../src/model/index.js";
import { denseSearch, packMatrix } from "../../src/retrieval/dense.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { readArtifactDir } from "../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";
import { initBackend } from "../src/backend.js";
import { bm25Search, buildBm25Postings } from "../../src/retrieval/index.js";
import { PairBatcher, type BatchTokenizer } from "../src/data/batches.js";
import { BatchBm25 } from "../src/data/lexical-scores.js";
import { openDenseRanker, type DenseRanker } from "../src/data/dense-negatives.js";
import { bm25Ranker, mineHardNegatives } from "../src/data/hard-negatives.js";
import { buildPairs, heldOutQueryIds, normKey, type AdaptRecord, type TextPair } from "../src/data/pairs.js";
import { parseConfig } from "../src/train/config.js";
import { infoNce } from "../src/train/loss.js";

const here = path.dirname(fileURLToPath(import.meta.url));

const terms = (text: string) => text.toLowerCase().match(/[a-z]+/g) ?? [];
const bm25 = bm25Ranker(terms);

function adaptPair(query: string, doc: string, group: string, kind = "train-query->text"): TextPair {
  return { query, doc, source: "adapt", kind, group };
}

describe("mineHardNegatives", () => {
  const chain = adaptPair("how to clean a bicycle chain", "Degrease the bicycle chain, scrub it and dry it before oiling.", "adapt:chain");
  const lube = adaptPair("which oil for a chain", "Chain oil for a bicycle chain: wet lube in rain, dry lube in dust.", "adapt:lube");
  const bread = adaptPair("how to bake bread", "Knead the dough, let it rise, and bake the bread at high heat.", "adapt:bread");

  it("picks a lexically close document that is not the pair's positive", async () => {
    const train = [chain, lube, bread].map((p) => ({ ...p }));
    const stats = await mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 1 }, bm25, 7);
    // Bread shares no term with the other documents: no candidate, no negative.
    expect(stats).toEqual({ mined: 2, none: 1, indexed: 3 });
    expect(train[0]!.negative).toBe(lube.doc);
    expect(train[1]!.negative).toBe(chain.doc);
    expect(train[2]!.negative).toBeUndefined();
  });

  it("never uses a document another pair marks relevant to the same query", async () => {
    // The same query judged relevant to two documents: neither may be its negative.
    const twin = adaptPair(chain.query, lube.doc, "adapt:lube");
    const oven = adaptPair("oven care", "How to clean an oven: soak the racks and wipe the walls.", "adapt:oven");
    const train = [{ ...chain }, twin, oven];
    await mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 5 }, bm25, 7);
    expect(train[0]!.negative).toBe(oven.doc);
    expect(train[1]!.negative).toBe(oven.doc);
  });

  it("indexes only the pairs it is given (the train side), and leaves a pair without a candidate alone", async () => {
    const unrelated = adaptPair("quantum chromodynamics", "Quarks and gluons interact via the strong force.", "adapt:qcd");
    const train = [{ ...chain }, { ...unrelated }];
    const stats = await mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 3 }, bm25, 1);
    expect(stats).toMatchObject({ mined: 0, none: 2, indexed: 2 });
    expect(train.every((p) => p.negative === undefined)).toBe(true);
  });

  it("is deterministic in the seed and draws from the pool of the `depth` best", async () => {
    const docs = Array.from({ length: 8 }, (_, i) => adaptPair(`bicycle chain question ${i}`, `bicycle chain answer number ${i} text`, `adapt:${i}`));
    const picks = async (seed: number) => {
      const train = docs.map((p) => ({ ...p }));
      await mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 4 }, bm25, seed);
      return train.map((p) => p.negative);
    };
    const picked = await picks(3);
    expect(await picks(3)).toEqual(picked);
    expect(new Set(picked).size).toBeGreaterThan(1);
    picked.forEach((negative, i) => expect(negative).not.toBe(docs[i]!.doc));
  });

  it("perCopy gives each copy of a repeated pair its own negative from the pool, the shared pick first", async () => {
    const docs = Array.from({ length: 6 }, (_, i) => adaptPair(`bicycle chain question ${i}`, `bicycle chain answer number ${i} text`, `adapt:${i}`));
    const options = { kinds: ["train-query->text"], depth: 3 };
    // The first pair oversampled 5 times (more copies than its pool of 3), the second twice, two more once.
    const layout = [0, 1, 0, 2, 0, 1, 0, 3, 0];
    const copies = () => {
      const originals = docs.map((p) => ({ ...p }));
      return layout.map((i) => originals[i]!);
    };
    const shared = copies();
    await mineHardNegatives(shared, "adapt", options, bm25, 5);
    expect(new Set(shared.filter((p) => p.query === docs[0]!.query).map((p) => p.negative)).size).toBe(1);

    const train = copies();
    const stats = await mineHardNegatives(train, "adapt", { ...options, perCopy: true }, bm25, 5);
    expect(stats).toMatchObject({ mined: 4, none: 0, indexed: 4, copyNegatives: 9 });

    const copiesOfFirst = [0, 2, 4, 6, 8].map((i) => train[i]!);
    expect(copiesOfFirst.every((p) => p.query === docs[0]!.query && p.doc === docs[0]!.doc)).toBe(true);
    // Distinct objects, so the batcher sees each copy's own negative; the first is the one shared mode picks.
    expect(new Set(copiesOfFirst).size).toBe(5);
    expect(copiesOfFirst[0]!.negative).toBe(shared[0]!.negative);
    const firstNegatives = copiesOfFirst.map((p) => p.negative);
    expect(new Set(firstNegatives.slice(0, 3)).size).toBe(3);
    // Past the pool the order starts over.
    expect(firstNegatives.slice(3)).toEqual(firstNegatives.slice(0, 2));
    expect(firstNegatives.every((n) => n !== undefined && n !== docs[0]!.doc)).toBe(true);
    expect(train[5]!.negative).not.toBe(train[1]!.negative);
    expect(train[3]!.negative).toBe(shared[3]!.negative);

    const trainAgain = copies();
    await mineHardNegatives(trainAgain, "adapt", { ...options, perCopy: true }, bm25, 5);
    expect(trainAgain.map((p) => p.negative)).toEqual(train.map((p) => p.negative));
  });

  it("reports listed kinds the source lacks, and refuses a list of kinds it has none of", async () => {
    const train = [{ ...chain }, { ...lube }];
    expect((await mineHardNegatives(train, "adapt", { kinds: ["train-query->text", "title->text"], depth: 2 }, bm25, 1)).missingKinds).toEqual([
      "title->text",
    ]);
    await expect(mineHardNegatives(train, "adapt", { kinds: ["title->txt"], depth: 2 }, bm25, 1)).rejects.toThrow(
      /no train pairs of kind "title->txt" \(its kinds: train-query->text\)/,
    );
  });
});

describe("dense hard negatives (the artifact a run starts from ranks)", () => {
  const artifactsDir = path.resolve(here, "../../model-artifacts");
  let modelDir: string;
  let ranker: DenseRanker;
  // Documents every query shares words with, so that BM25 and the model both have candidates to rank.
  const topics = ["bicycle chain", "bread dough", "oven racks", "garden soil", "coffee beans", "window glass"];
  const pairs = topics.flatMap((topic, i) => [
    adaptPair(`how do I look after the ${topic}`, `Looking after the ${topic}: clean it often and keep it dry (${i}).`, `adapt:${i}`),
    adaptPair(`${topic} care`, `Notes on ${topic} care, step by step, from a workshop manual (${i}).`, `adapt:${i}b`, "title->text"),
  ]);

  beforeAll(async () => {
    const bundled = JSON.parse(await readFile(path.join(artifactsDir, "bundled.json"), "utf8")) as { artifact: string };
    modelDir = path.join(artifactsDir, bundled.artifact);
    ranker = await openDenseRanker(modelDir);
  });
  afterAll(async () => ranker?.release());

  it("ranks as the artifact is served: its fp32 embeddings, documents at its recorded depth, 128-d cosine", async () => {
    const docs = pairs.map((p) => p.doc);
    const queries = pairs.map((p) => p.query);
    const ks = queries.map((_, i) => 1 + (i % 4));
    const ranked = await ranker.rank(docs, queries, ks);

    const artifact = await readArtifactDir(modelDir, ["fp32"]);
    const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
    const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: artifact.manifest, files: artifact.files, variant: "fp32", tokenizer });
    try {
      const documentDepth = artifact.manifest.retrieval?.documentDepth?.depth;
      expect(documentDepth).toBe(1);
      const matrix = packMatrix((await encoder.embed(docs, { dims: 128, depth: documentDepth })).embeddings, 128);
      const expected = await Promise.all(
        queries.map(async (query, i) => denseSearch(matrix, 128, (await encoder.embed([query], { dims: 128 })).embeddings[0]!, ks[i]!).map((hit) => hit.id)),
      );
      expect(ranked).toEqual(expected);
      expect(ranked.map((r) => r.length)).toEqual(ks);
    } finally {
      await encoder.release();
    }
    await expect(ranker.rank(docs, queries, ks.slice(1))).rejects.toThrow(/12 queries but 11 result sizes/);
  });

  it("mines negatives that are never a positive, the same in every process that opens the artifact, and says which model ranked", async () => {
    const mine = async (withRanker: DenseRanker) => {
      const train = pairs.map((p) => ({ ...p }));
      const stats = await mineHardNegatives(train, "adapt", { kinds: ["train-query->text", "title->text"], depth: 3 }, withRanker, 11);
      return { stats, negatives: train.map((p) => p.negative) };
    };
    const first = await mine(ranker);
    // A second opening of the artifact: what a data-parallel worker does. The fingerprint needs the same negatives.
    const other = await openDenseRanker(modelDir);
    try {
      expect(await mine(other)).toEqual(first);
    } finally {
      await other.release();
    }
    const name = path.basename(modelDir);
    expect(first.stats).toEqual({ ranker: `dense ${name}`, mined: pairs.length, none: 0, indexed: pairs.length });
    first.negatives.forEach((negative, i) => {
      expect(negative).toBeDefined();
      expect(negative).not.toBe(pairs[i]!.doc);
    });
    // The BM25 stats keep their old shape (no ranker field), so existing runs keep their data fingerprints.
    const lexical = await mineHardNegatives(pairs.map((p) => ({ ...p })), "adapt", { kinds: ["train-query->text"], depth: 3 }, bm25, 11);
    expect(lexical).not.toHaveProperty("ranker");
  });

  it("is refused by the config without initFrom", async () => {
    const raw = JSON.parse(await readFile(path.join(here, "../configs/tiny.json"), "utf8")) as Record<string, any>;
    const withDense = { ...raw, data: { ...raw["data"], sources: { scifact: { maxPairs: 50, hardNegatives: { kinds: ["title->abstract"], ranker: "dense" } } } } };
    expect(() => parseConfig(withDense)).toThrow(/"dense" ranks with the model the run starts from: it needs initFrom[\s\S]*data\.sources\.scifact\.hardNegatives\.ranker/);
    expect(() => parseConfig({ ...withDense, initFrom: "../../model-artifacts/taesr-edge-small@0.3.0" })).not.toThrow();
  });
});

describe("PairBatcher with hard negatives", () => {
  const tokenizer: BatchTokenizer = { encode: (text, { maxLength }) => terms(text).map((_, i) => i + 1).slice(0, maxLength), padId: 0 };
  it("appends negatives after the positives and leaves out one that is a positive of the batch", () => {
    const pairs: TextPair[] = [
      { ...adaptPair("q one", "doc one alpha", "a"), negative: "doc two beta gamma" }, // = pair 2's positive: left out
      { ...adaptPair("q two", "doc two beta gamma", "b"), negative: "doc three is a hard one" },
      adaptPair("q three", "doc four", "c"),
    ];
    const batcher = new PairBatcher(pairs, tokenizer, { batchSize: 3, maxQueryLength: 8, maxDocLength: 8, seed: 1 });
    const batch = batcher.encode([0, 1, 2]);
    expect(batch.queries.rows).toBe(3);
    expect(batch.docs.rows).toBe(4);
    // Row 3 is the surviving negative: 6 word tokens.
    expect(Array.from(batch.docs.mask.subarray(3 * batch.docs.length, 4 * batch.docs.length)).filter((m) => m === 1)).toHaveLength(6);
  });

  it("with a lexical scorer, a batch carries BM25 of every query against every document row, the negatives included", () => {
    const pairs: TextPair[] = [
      { ...adaptPair("clean bicycle chain", "Degrease the bicycle chain and dry it.", "a"), negative: "Chain oil for a bicycle: wet lube in rain." },
      adaptPair("bake bread", "Knead the dough and bake the bread.", "b"),
      adaptPair("oven care", "Soak the oven racks and wipe the walls.", "c"),
    ];
    const lexical = new BatchBm25(pairs, terms);
    expect(lexical.documentCount).toBe(4);
    const batch = new PairBatcher(pairs, tokenizer, { batchSize: 3, maxQueryLength: 8, maxDocLength: 8, seed: 1, lexical }).encode([0, 1, 2]);
    // The batcher orders a batch's pairs shortest query first (stable): bread (2 pieces), oven (2), chain (3).
    const order = [1, 2, 0];
    const docs = [...order.map((i) => pairs[i]!.doc), pairs[0]!.negative!];
    expect(batch.lexical).toHaveLength(3 * 4);
    // The same scores BM25 search gives over the run's distinct training documents (ids in first-seen order).
    const { postings, stats } = buildBm25Postings([pairs[0]!.doc, pairs[0]!.negative!, pairs[1]!.doc, pairs[2]!.doc].map(terms));
    const corpusId = (doc: string) => [pairs[0]!.doc, pairs[0]!.negative!, pairs[1]!.doc, pairs[2]!.doc].indexOf(doc);
    order.forEach((i, row) => {
      const byId = new Map(bm25Search(terms(pairs[i]!.query), stats, postings, 10).map((hit) => [hit.id, hit.score]));
      docs.forEach((doc, col) => expect(batch.lexical![row * 4 + col]!).toBeCloseTo(byId.get(corpusId(doc)) ?? 0, 5));
    });
    // The chain query (row 2) matches its positive (column 2) and its negative (3), nothing of the bread document (0).
    expect(batch.lexical![2 * 4 + 2]!).toBeGreaterThan(batch.lexical![2 * 4 + 3]!);
    expect(batch.lexical![2 * 4 + 3]!).toBeGreaterThan(0);
    expect(batch.lexical![2 * 4 + 0]!).toBe(0);
    expect(() => lexical.scores(["chain"], ["A document no pair has."])).toThrow(/not among the run's training documents/);
  });
});

describe("infoNce with extra negative columns", () => {
  beforeAll(async () => {
    await initBackend("wasm");
  });
  const logits = [
    [2, 0.5, 1.5],
    [0.1, 1, -1],
  ];
  const lse = (xs: number[]) => Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));

  it("normalises query→doc over every column and doc→query over the positives only", () => {
    const value = infoNce(tf.tensor2d(logits), true).dataSync()[0]!;
    const rows = (lse(logits[0]!) - 2 + (lse(logits[1]!) - 1)) / 2;
    const cols = (lse([2, 0.1]) - 2 + (lse([0.5, 1]) - 1)) / 2;
    expect(value).toBeCloseTo((rows + cols) / 2, 5);
    expect(infoNce(tf.tensor2d(logits), false).dataSync()[0]!).toBeCloseTo(rows, 5);
  });

  it("a hard negative close to the query raises the loss over the in-batch one alone", () => {
    const square = tf.tensor2d(logits.map((r) => r.slice(0, 2)));
    expect(infoNce(tf.tensor2d(logits), false).dataSync()[0]!).toBeGreaterThan(infoNce(square, false).dataSync()[0]!);
  });

  it("refuses fewer documents than queries", () => {
    expect(() => infoNce(tf.tensor2d([[1], [2]]), true)).toThrow(/2 queries but only 1 documents/);
  });
});

describe("kindRepeat", () => {
  it("copies the listed kinds into the stream on top of the source's repeat; validation keeps one", async () => {
    const records: AdaptRecord[] = Array.from({ length: 40 }, (_, i) => ({
      id: `d${i}`,
      title: `Title number ${i} about things`,
      text: `Document ${i} has a body that is long enough to keep.`,
      queries: [{ id: `q${i}`, text: `what does document ${i} say` }],
    }));
    const opts = { seed: 1, validationFraction: 0.2, maxValidationPairs: 100, minDocChars: 10 };
    const plain = await buildPairs({ adapt: records }, { ...opts, sources: { adapt: { repeat: 2 } } });
    const boosted = await buildPairs({ adapt: records }, { ...opts, sources: { adapt: { repeat: 2, kindRepeat: { "train-query->text": 3 } } } });
    const count = (ps: TextPair[], kind: string) => ps.filter((p) => p.kind === kind).length;
    expect(count(boosted.train, "title->text")).toBe(count(plain.train, "title->text"));
    expect(count(boosted.train, "train-query->text")).toBe(3 * count(plain.train, "train-query->text"));
    expect(boosted.validation).toEqual(plain.validation);
    expect(boosted.stats.bySource["adapt"]!.uniqueTrain).toBe(plain.stats.bySource["adapt"]!.uniqueTrain);
  });
});

describe("held-out train queries (holdoutQueries)", () => {
  it("are never mined for, never a mining positive, and their documents stay in the index", async () => {
    // Every query shares "bicycle chain" with every document, so BM25 ranks every document for every query.
    const records: AdaptRecord[] = Array.from({ length: 60 }, (_, i) => ({
      id: `d${i}`,
      title: `Bicycle chain note ${i}`,
      text: `Bicycle chain care step ${i}: clean, dry and oil the chain number ${i}.`,
      queries: [{ id: `q${i}`, text: `bicycle chain question ${i}` }],
    }));
    const fraction = 0.3;
    const held = new Set(heldOutQueryIds(records, fraction));
    expect(held.size).toBeGreaterThan(5);
    const heldTexts = new Set(records.flatMap((r) => r.queries.filter((q) => held.has(q.id)).map((q) => normKey(q.text))));
    const set = await buildPairs(
      { adapt: records },
      { seed: 3, validationFraction: 0.1, maxValidationPairs: 100, minDocChars: 10, sources: { adapt: { holdoutQueries: fraction } } },
    );
    const stats = await mineHardNegatives(set.train, "adapt", { kinds: ["title->text", "train-query->text"], depth: 5 }, bm25, 7);
    expect(stats.mined).toBeGreaterThan(0);
    for (const p of set.train) expect(heldTexts.has(normKey(p.query)), p.query).toBe(false);
    // The held-out queries' documents are still trained on (title → text) and can be a negative for other queries.
    const heldDocs = new Set(records.filter((r) => r.queries.some((q) => held.has(q.id))).map((r) => r.text));
    const indexedHeld = set.train.filter((p) => p.kind === "title->text" && heldDocs.has(p.doc));
    expect(indexedHeld.length).toBeGreaterThan(0);
    expect(set.train.some((p) => p.negative !== undefined && heldDocs.has(p.negative))).toBe(true);
  });
});

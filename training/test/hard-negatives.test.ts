/**
 * BM25 hard negatives end to end through the data path: mining (which document, never a positive, never a held-out
 * one), the batcher (negatives become extra document rows, a negative that is some row's positive is left out), the
 * loss (query→doc normalises over the negatives, doc→query ignores them), and per-kind oversampling.
 */
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../src/backend.js";
import { PairBatcher, type BatchTokenizer } from "../src/data/batches.js";
import { mineHardNegatives } from "../src/data/hard-negatives.js";
import { buildPairs, heldOutQueryIds, normKey, type AdaptRecord, type TextPair } from "../src/data/pairs.js";
import { infoNce } from "../src/train/loss.js";

const terms = (text: string) => text.toLowerCase().match(/[a-z]+/g) ?? [];

function adaptPair(query: string, doc: string, group: string, kind = "train-query->text"): TextPair {
  return { query, doc, source: "adapt", kind, group };
}

describe("mineHardNegatives", () => {
  const chain = adaptPair("how to clean a bicycle chain", "Degrease the bicycle chain, scrub it and dry it before oiling.", "adapt:chain");
  const lube = adaptPair("which oil for a chain", "Chain oil for a bicycle chain: wet lube in rain, dry lube in dust.", "adapt:lube");
  const bread = adaptPair("how to bake bread", "Knead the dough, let it rise, and bake the bread at high heat.", "adapt:bread");

  it("picks a lexically close document that is not the pair's positive", () => {
    const train = [chain, lube, bread].map((p) => ({ ...p }));
    const stats = mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 1 }, terms, 7);
    // Bread shares no term with the other documents: no candidate, no negative.
    expect(stats).toEqual({ mined: 2, none: 1, indexed: 3 });
    expect(train[0]!.negative).toBe(lube.doc);
    expect(train[1]!.negative).toBe(chain.doc);
    expect(train[2]!.negative).toBeUndefined();
  });

  it("never uses a document another pair marks relevant to the same query", () => {
    // The same query judged relevant to two documents: neither may be its negative.
    const twin = adaptPair(chain.query, lube.doc, "adapt:lube");
    const oven = adaptPair("oven care", "How to clean an oven: soak the racks and wipe the walls.", "adapt:oven");
    const train = [{ ...chain }, twin, oven];
    mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 5 }, terms, 7);
    expect(train[0]!.negative).toBe(oven.doc);
    expect(train[1]!.negative).toBe(oven.doc);
  });

  it("indexes only the pairs it is given (the train side), and leaves a pair without a candidate alone", () => {
    const unrelated = adaptPair("quantum chromodynamics", "Quarks and gluons interact via the strong force.", "adapt:qcd");
    const train = [{ ...chain }, { ...unrelated }];
    const stats = mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 3 }, terms, 1);
    expect(stats).toMatchObject({ mined: 0, none: 2, indexed: 2 });
    expect(train.every((p) => p.negative === undefined)).toBe(true);
  });

  it("is deterministic in the seed and draws from the pool of the `depth` best", () => {
    const docs = Array.from({ length: 8 }, (_, i) => adaptPair(`bicycle chain question ${i}`, `bicycle chain answer number ${i} text`, `adapt:${i}`));
    const picks = (seed: number) => {
      const train = docs.map((p) => ({ ...p }));
      mineHardNegatives(train, "adapt", { kinds: ["train-query->text"], depth: 4 }, terms, seed);
      return train.map((p) => p.negative);
    };
    expect(picks(3)).toEqual(picks(3));
    expect(new Set(picks(3)).size).toBeGreaterThan(1);
    picks(3).forEach((negative, i) => expect(negative).not.toBe(docs[i]!.doc));
  });

  it("reports listed kinds the source lacks, and refuses a list of kinds it has none of", () => {
    const train = [{ ...chain }, { ...lube }];
    expect(mineHardNegatives(train, "adapt", { kinds: ["train-query->text", "title->text"], depth: 2 }, terms, 1).missingKinds).toEqual([
      "title->text",
    ]);
    expect(() => mineHardNegatives(train, "adapt", { kinds: ["title->txt"], depth: 2 }, terms, 1)).toThrow(
      /no train pairs of kind "title->txt" \(its kinds: train-query->text\)/,
    );
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
    const stats = mineHardNegatives(set.train, "adapt", { kinds: ["title->text", "train-query->text"], depth: 5 }, terms, 7);
    expect(stats.mined).toBeGreaterThan(0);
    for (const p of set.train) expect(heldTexts.has(normKey(p.query)), p.query).toBe(false);
    // The held-out queries' documents are still trained on (title → text) and can be a negative for other queries.
    const heldDocs = new Set(records.filter((r) => r.queries.some((q) => held.has(q.id))).map((r) => r.text));
    const indexedHeld = set.train.filter((p) => p.kind === "title->text" && heldDocs.has(p.doc));
    expect(indexedHeld.length).toBeGreaterThan(0);
    expect(set.train.some((p) => p.negative !== undefined && heldDocs.has(p.negative))).toBe(true);
  });
});

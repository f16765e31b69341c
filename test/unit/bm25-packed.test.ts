import { describe, expect, it } from "vitest";
import { BM25_DEFAULTS, PackedBm25, bm25Idf, bm25Search, type PackedPostings, type TermPostings } from "../../src/retrieval/index.js";
import { createRng } from "../../training/src/data/random.js";

/** A random corpus as both index forms: Map-of-objects postings (bm25Search) and packed typed arrays (PackedBm25). */
function randomCorpus(seed: number, docs: number, vocabulary: number) {
  const random = createRng(seed);
  const lengths: number[] = [];
  const byTerm = new Map<string, { docs: number[]; tfs: number[] }>();
  for (let doc = 0; doc < docs; doc++) {
    const counts = new Map<string, number>();
    const length = 1 + Math.floor(random() * 40);
    // Skewed draws, so some terms are common (long postings) and most are rare, like word pieces.
    for (let i = 0; i < length; i++) {
      const term = `t${Math.floor(vocabulary * random() ** 3)}`;
      counts.set(term, (counts.get(term) ?? 0) + 1);
    }
    lengths.push(length);
    for (const [term, tf] of counts) {
      let list = byTerm.get(term);
      if (!list) byTerm.set(term, (list = { docs: [], tfs: [] }));
      list.docs.push(doc);
      list.tfs.push(tf);
    }
  }
  const objects = new Map<string, TermPostings<number>>();
  const packed = new Map<string, PackedPostings>();
  for (const [term, list] of byTerm) {
    objects.set(term, { df: list.docs.length, postings: list.docs.map((docId, i) => ({ docId, tf: list.tfs[i]!, docLength: lengths[docId]! })) });
    packed.set(term, { docs: Uint32Array.from(list.docs), tfs: Uint16Array.from(list.tfs) });
  }
  const avgDocLength = lengths.reduce((sum, length) => sum + length, 0) / docs;
  return { lengths, objects, packed, stats: { docCount: docs, avgDocLength } };
}

describe("PackedBm25", () => {
  it("ranks exactly as bm25Search on a random skewed corpus, query after query (the accumulator resets)", () => {
    const corpus = randomCorpus(7, 500, 200);
    const scorer = new PackedBm25(corpus.lengths);
    const random = createRng(11);
    for (let q = 0; q < 25; q++) {
      const query = Array.from({ length: 1 + Math.floor(random() * 8) }, () => `t${Math.floor(200 * random() ** 2)}`);
      const expected = bm25Search(query, corpus.stats, corpus.objects, 20);
      const actual = scorer.search(query, corpus.packed, 20);
      expect(actual.map((hit) => hit.id)).toEqual(expected.map((hit) => hit.id));
      actual.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i]!.score, 10));
    }
  });

  it("prunes exactly: long, many-term queries over a skewed corpus give bm25Search's top k for every k, masked or not", () => {
    const corpus = randomCorpus(19, 3000, 400);
    const scorer = new PackedBm25(corpus.lengths);
    const random = createRng(23);
    const mask = Uint8Array.from(corpus.lengths, () => (random() < 0.7 ? 1 : 0));
    const allowedIds = new Set(corpus.lengths.map((_, doc) => doc).filter((doc) => mask[doc] === 1));
    for (let q = 0; q < 40; q++) {
      // Word-piece-like queries: many terms, several of them very common.
      const query = Array.from({ length: 8 + Math.floor(random() * 18) }, () => `t${Math.floor(400 * random() ** 3)}`);
      for (const k of [1, 3, 10, 100]) {
        const expected = bm25Search(query, corpus.stats, corpus.objects, 3000).slice(0, k);
        const actual = scorer.search(query, corpus.packed, k);
        expect(actual.map((hit) => hit.id), `query ${q}, k ${k}`).toEqual(expected.map((hit) => hit.id));
        actual.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i]!.score, 10));
        const masked = scorer.search(query, corpus.packed, k, { allowed: mask });
        const expectedMasked = bm25Search(query, corpus.stats, corpus.objects, 3000).filter((hit) => allowedIds.has(hit.id)).slice(0, k);
        expect(masked.map((hit) => hit.id), `masked query ${q}, k ${k}`).toEqual(expectedMasked.map((hit) => hit.id));
      }
    }
  });

  it("counts a repeated query term once per occurrence, ignores unknown terms, and returns [] when nothing matches", () => {
    const corpus = randomCorpus(3, 50, 30);
    const scorer = new PackedBm25(corpus.lengths);
    const once = scorer.search(["t0"], corpus.packed, 5);
    const twice = scorer.search(["t0", "t0", "unknown"], corpus.packed, 5);
    expect(twice.map((hit) => hit.id)).toEqual(once.map((hit) => hit.id));
    twice.forEach((hit, i) => expect(hit.score).toBeCloseTo(2 * once[i]!.score, 10));
    expect(scorer.search(["unknown"], corpus.packed, 5)).toEqual([]);
  });

  it("breaks score ties towards the smaller document index", () => {
    const scorer = new PackedBm25([3, 3, 3]);
    const postings = new Map([["x", { docs: Uint32Array.from([2, 0, 1]), tfs: Uint16Array.from([1, 1, 1]) }]]);
    expect(scorer.search(["x"], postings, 2).map((hit) => hit.id)).toEqual([0, 1]);
  });

  it("refuses postings that name a document outside the corpus or disagree in length", () => {
    const scorer = new PackedBm25([2, 2]);
    expect(() => scorer.search(["x"], new Map([["x", { docs: Uint32Array.from([5]), tfs: Uint16Array.from([1]) }]]), 1)).toThrow(/document 5/);
    expect(() => scorer.search(["x"], new Map([["x", { docs: Uint32Array.from([0, 1]), tfs: Uint16Array.from([1]) }]]), 1)).toThrow(/2 documents but 1/);
  });
});

describe("PackedBm25 with corpus-wide statistics and a filter mask", () => {
  it("scores with the statistics it is given, as one index over the whole corpus would", () => {
    const [Scorer, idf, params] = [PackedBm25, bm25Idf, BM25_DEFAULTS];
    // This part of the corpus: two documents; the whole corpus: 10 documents of mean length 4, "tide" in 5 of them.
    const scorer = new Scorer([3, 5]);
    const postings = new Map([["tide", { docs: Uint32Array.of(0, 1), tfs: Uint16Array.of(1, 2) }]]);
    const corpus = { docCount: 10, avgDocLength: 4, df: new Map([["tide", 5]]) };
    const [first, second] = scorer.search(["tide"], postings, 2, { corpus });
    const expected = (tf: number, length: number) =>
      (idf(5, 10) * tf * (params.k1 + 1)) / (tf + params.k1 * (1 - params.b + (params.b * length) / 4));
    expect(first).toEqual({ id: 1, score: expect.closeTo(expected(2, 5), 12), rank: 1 });
    expect(second).toEqual({ id: 0, score: expect.closeTo(expected(1, 3), 12), rank: 2 });
    // A document the mask excludes is never scored, and the next search is unaffected by it.
    expect(scorer.search(["tide"], postings, 2, { corpus, allowed: Uint8Array.of(1, 0) }).map((h) => h.id)).toEqual([0]);
    expect(scorer.search(["tide"], postings, 2).map((h) => h.id)).toEqual([1, 0]);
    expect(() => scorer.search(["tide"], postings, 2, { allowed: Uint8Array.of(1) })).toThrow(/mask has 1 documents/);
  });
});

/**
 * The retrieval core against hand-computed cases: cosine top-k, BM25 (k1 = 0.9, b = 0.4), convex-combination fusion
 * (TM2C2) and weighted RRF (k = 60).
 * Expected numbers are written out as the formula with the case's own values, so a reader can check them by hand.
 */
import { describe, expect, it } from "vitest";
import {
  BM25_DEFAULTS,
  DEFAULT_CONVEX_WEIGHTS,
  DEFAULT_FUSION,
  DEFAULT_RRF_WEIGHTS,
  THEORETICAL_MIN_SCORES,
  TopK,
  bm25Idf,
  bm25Document,
  bm25DocumentScore,
  bm25Scores,
  bm25Search,
  combineRankings,
  convexCombinationFusion,
  bestRowPerOwner,
  denseSearch,
  documentText,
  hybridWeights,
  lexicalTerms,
  listsFor,
  makeSnippet,
  packMatrix,
  prefixNormalize,
  reciprocalRankFusion,
  termFrequencies,
  type RankedHit,
  type TermPostings,
} from "../../src/retrieval/index.js";
import { forEachWord } from "../../src/retrieval/snippet.js";
import { normalize, normalizeAndPreTokenize } from "../../src/tokenizer/normalize.js";
import { createRng } from "../../training/src/data/random.js";

/** Deterministic pseudo-random numbers (mulberry32, the training package's) so the property checks are reproducible. */
const random = createRng;

describe("TopK", () => {
  it("keeps the k best, best first, and breaks ties towards the smaller key", () => {
    const best = new TopK<number>(3);
    [0.1, 0.9, 0.5, 0.9, 0.3, 0.7].forEach((score, key) => best.push(key, score));
    expect(best.sorted()).toEqual([
      { key: 1, score: 0.9 },
      { key: 3, score: 0.9 },
      { key: 5, score: 0.7 },
    ]);
  });

  it("accepts k = 0 and ignores NaN scores", () => {
    const none = new TopK<string>(0);
    none.push("a", 1);
    expect(none.sorted()).toEqual([]);
    const some = new TopK<string>(2);
    some.push("a", Number.NaN);
    some.push("b", 1);
    expect(some.sorted()).toEqual([{ key: "b", score: 1 }]);
  });

  it("rejects a negative or fractional k", () => {
    expect(() => new TopK(-1)).toThrow(RangeError);
    expect(() => new TopK(1.5)).toThrow(RangeError);
  });
});

describe("dense", () => {
  it("normalises a Matryoshka prefix: [3, 4, 12] → first 2 dims → [0.6, 0.8]", () => {
    const prefix = prefixNormalize([3, 4, 12], 2);
    expect(prefix[0]).toBeCloseTo(0.6, 6);
    expect(prefix[1]).toBeCloseTo(0.8, 6);
    expect(Array.from(prefixNormalize([0, 0, 1], 2))).toEqual([0, 0]); // zero prefix stays zero, not NaN
    expect(() => prefixNormalize([1], 2)).toThrow(/fewer than the 2/);
  });

  it("prefix of a normalised vector renormalises to the normalised prefix", () => {
    const raw = [2, -1, 4, 0.5];
    const fromNormalised = prefixNormalize(prefixNormalize(raw, 4), 2);
    const direct = prefixNormalize(raw, 2);
    expect(fromNormalised[0]).toBeCloseTo(direct[0]!, 6);
    expect(fromNormalised[1]).toBeCloseTo(direct[1]!, 6);
  });

  it("ranks rows by cosine: q = [0.8, 0.6] against [1,0], [0.6,0.8], [0,1]", () => {
    const matrix = packMatrix([[1, 0], [0.6, 0.8], [0, 1]], 2);
    const hits = denseSearch(matrix, 2, [0.8, 0.6], 3);
    // dots: row0 0.8·1 = 0.8; row1 0.8·0.6 + 0.6·0.8 = 0.96; row2 0.6·1 = 0.6
    expect(hits.map((hit) => hit.id)).toEqual([1, 0, 2]);
    expect(hits.map((hit) => hit.rank)).toEqual([1, 2, 3]);
    expect(hits[0]!.score).toBeCloseTo(0.96, 6);
    expect(hits[1]!.score).toBeCloseTo(0.8, 6);
    expect(hits[2]!.score).toBeCloseTo(0.6, 6);
    expect(denseSearch(matrix, 2, [0.8, 0.6], 1).map((hit) => hit.id)).toEqual([1]);
  });

  it("caps k at the number of rows, returns nothing for an empty matrix, and orders ties by row", () => {
    const matrix = packMatrix([[0, 1], [1, 0], [0, 1]], 2);
    expect(denseSearch(matrix, 2, [0, 1], 10).map((hit) => hit.id)).toEqual([0, 2, 1]);
    expect(denseSearch(new Float32Array(0), 2, [0, 1], 5)).toEqual([]);
  });

  it("scores a document stored as several rows by its best row (bestRowPerOwner)", () => {
    // Documents 0, 1, 2 as passage rows: 0 → rows 0, 1; 1 → rows 2, 3, 4; 2 → row 5.
    const owners = Int32Array.from([0, 0, 1, 1, 1, 2]);
    const matrix = packMatrix([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6], [-1, 0], [0.96, 0.28]], 2);
    const rows = denseSearch(matrix, 2, [1, 0], 6);
    // Rows by cosine with [1, 0]: 0 (1), 5 (0.96), 3 (0.8), 2 (0.6), 1 (0), 4 (−1).
    const docs = bestRowPerOwner(rows, owners, 3);
    expect(docs.map((hit) => hit.id)).toEqual([0, 2, 1]);
    expect(docs.map((hit) => hit.rank)).toEqual([1, 2, 3]);
    expect(docs[2]!.score).toBeCloseTo(0.8, 6);
    // A document's weaker rows never outrank another's best, and k caps the documents, not the rows.
    expect(bestRowPerOwner(rows, owners, 2).map((hit) => hit.id)).toEqual([0, 2]);
    expect(bestRowPerOwner(denseSearch(matrix, 2, [0, 1], 6), owners, 3).map((hit) => hit.id)).toEqual([0, 1, 2]);
    expect(() => bestRowPerOwner([{ id: 9, score: 1, rank: 1 }], owners, 1)).toThrow(/row 9 has no owner \(6 rows\)/);
  });

  it("rejects a query of the wrong width", () => {
    expect(() => denseSearch(packMatrix([[1, 0]], 2), 2, [1, 0, 0], 1)).toThrow(/3 dimensions, the matrix has 2/);
  });

  it("agrees with a full sort on 500 random rows", () => {
    const next = random(7);
    const dims = 16;
    const vectors = Array.from({ length: 500 }, () => Array.from({ length: dims }, () => next() * 2 - 1));
    const matrix = packMatrix(vectors, dims);
    const query = prefixNormalize(Array.from({ length: dims }, () => next() * 2 - 1), dims);
    const brute = vectors
      .map((_, row) => {
        let dot = 0;
        for (let i = 0; i < dims; i++) dot += matrix[row * dims + i]! * query[i]!;
        return { row, dot };
      })
      .sort((a, b) => b.dot - a.dot)
      .slice(0, 10)
      .map(({ row }) => row);
    expect(denseSearch(matrix, dims, query, 10).map((hit) => hit.id)).toEqual(brute);
  });
});

describe("bm25", () => {
  // Corpus: d1 |d|=4 has "cat"×2; d2 |d|=6 has "cat"×1; d3 |d|=2 has "dog"×1. N = 3, avgdl = (4+6+2)/3 = 4.
  const corpus = { docCount: 3, avgDocLength: 4 };
  const postings = new Map<string, TermPostings>([
    ["cat", { df: 2, postings: [{ docId: "d1", tf: 2, docLength: 4 }, { docId: "d2", tf: 1, docLength: 6 }] }],
    ["dog", { df: 1, postings: [{ docId: "d3", tf: 1, docLength: 2 }] }],
  ]);
  const idfCat = Math.log(1 + (3 - 2 + 0.5) / (2 + 0.5)); // ln 1.6 ≈ 0.4700
  const idfDog = Math.log(1 + (3 - 1 + 0.5) / (1 + 0.5)); // ln 2.667 ≈ 0.9808
  // norm = k1·(1 − b + b·|d|/avgdl): d1 0.9·1.0 = 0.9; d2 0.9·1.2 = 1.08; d3 0.9·0.8 = 0.72
  const d1 = (idfCat * 2 * 1.9) / (2 + 0.9); // ≈ 0.6159
  const d2 = (idfCat * 1 * 1.9) / (1 + 1.08); // ≈ 0.4293
  const d3 = (idfDog * 1 * 1.9) / (1 + 0.72); // ≈ 1.0835

  it("uses k1 = 0.9 and b = 0.4 by default", () => {
    expect(BM25_DEFAULTS).toEqual({ k1: 0.9, b: 0.4 });
  });

  it("computes the Lucene idf, which stays positive for a term in every document", () => {
    expect(bm25Idf(2, 3)).toBeCloseTo(0.470004, 5);
    expect(bm25Idf(3, 3)).toBeGreaterThan(0);
  });

  it("scores the hand-computed corpus", () => {
    const scores = bm25Scores(["cat", "dog"], corpus, postings);
    expect(scores.get("d1")).toBeCloseTo(d1, 10);
    expect(scores.get("d2")).toBeCloseTo(d2, 10);
    expect(scores.get("d3")).toBeCloseTo(d3, 10);
    expect(d1).toBeCloseTo(0.615867, 5);
    expect(d2).toBeCloseTo(0.42933, 5);
    expect(d3).toBeCloseTo(1.083475, 5);
  });

  it("ranks best first, limits to k, and ignores unknown terms", () => {
    const hits = bm25Search(["cat", "dog", "zebra"], corpus, postings, 2);
    expect(hits.map((hit) => [hit.id, hit.rank])).toEqual([["d3", 1], ["d1", 2]]);
    expect(bm25Search(["zebra"], corpus, postings, 5)).toEqual([]);
  });

  it("counts a repeated query term once per occurrence", () => {
    const scores = bm25Scores(["cat", "cat"], corpus, postings);
    expect(scores.get("d1")).toBeCloseTo(2 * d1, 10);
  });

  it("honours custom parameters: b = 0 ignores document length", () => {
    const scores = bm25Scores(["cat"], corpus, postings, { k1: 0.9, b: 0 });
    expect(scores.get("d2")).toBeCloseTo((idfCat * 1.9) / (1 + 0.9), 10);
  });

  it("stays finite on a corpus whose average length is 0", () => {
    const empty = new Map<string, TermPostings>([["x", { df: 1, postings: [{ docId: "a", tf: 1, docLength: 0 }] }]]);
    const score = bm25Scores(["x"], { docCount: 1, avgDocLength: 0 }, empty).get("a");
    expect(Number.isFinite(score)).toBe(true);
  });

  it("counts term frequencies in first-seen order", () => {
    expect([...termFrequencies(["b", "a", "b"])]).toEqual([["b", 2], ["a", 1]]);
  });

  it("scores one document from its own terms exactly as the posting walk does", () => {
    const df = (term: string) => postings.get(term)?.df ?? 0;
    const query = termFrequencies(["cat", "dog", "cat", "zebra"]);
    const walked = bm25Scores(["cat", "dog", "cat", "zebra"], corpus, postings);
    expect(bm25DocumentScore(query, bm25Document(["cat", "x", "cat", "y"]), corpus, df)).toBe(walked.get("d1"));
    expect(bm25DocumentScore(query, bm25Document(["a", "b", "cat", "c", "d", "e"]), corpus, df)).toBe(walked.get("d2"));
    expect(bm25DocumentScore(query, bm25Document(["dog", "z"]), corpus, df)).toBe(walked.get("d3"));
    // A term the index has never seen scores nothing, even when the document has it.
    expect(bm25DocumentScore(termFrequencies(["zebra"]), bm25Document(["zebra"]), corpus, df)).toBe(0);
  });
});

/** A ranked list from [id, score] pairs, best first. */
function ranked(...entries: [string, number][]): RankedHit[] {
  return entries.map(([id, score], index) => ({ id, score, rank: index + 1 }));
}

describe("convex fusion", () => {
  // lexical (BM25, minimum 0): a 10, b 5, c 2 → a 10/10 = 1, b 5/10 = 0.5, c 2/10 = 0.2; lowest 0.2
  // dense (cosine, minimum −1): b 0.6, d 0.2, e −0.2 → (s + 1)/(0.6 + 1): b 1, d 1.2/1.6 = 0.75, e 0.8/1.6 = 0.5; lowest 0.5
  const lexical = ranked(["a", 10], ["b", 5], ["c", 2]);
  const dense = ranked(["b", 0.6], ["d", 0.2], ["e", -0.2]);

  it("defaults to lexical 0.7, dense 0.3, against minima BM25 0 and cosine −1", () => {
    expect(DEFAULT_CONVEX_WEIGHTS).toEqual({ dense: 0.3, lexical: 0.7 });
    expect(THEORETICAL_MIN_SCORES).toEqual({ dense: -1, lexical: 0 });
    expect(DEFAULT_FUSION).toBe("convex");
  });

  it("normalises each list by its theoretical minimum and fills an absent document with the list's lowest", () => {
    const fused = convexCombinationFusion({ dense, lexical }, { weights: DEFAULT_CONVEX_WEIGHTS });
    // a 0.7·1 + 0.3·0.5 (dense fill) = 0.85 · b 0.7·0.5 + 0.3·1 = 0.65 · d 0.7·0.2 (lexical fill) + 0.3·0.75 = 0.365
    // c 0.7·0.2 + 0.3·0.5 (dense fill) = 0.29 · e 0.7·0.2 (lexical fill) + 0.3·0.5 = 0.29 — a tie, broken by id
    expect(fused.map((hit) => hit.id)).toEqual(["a", "b", "d", "c", "e"]);
    const expected = [0.85, 0.65, 0.365, 0.29, 0.29];
    fused.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i]!, 12));
    expect(fused[3]!.score).toBe(fused[4]!.score);
    // Ranks and raw scores are reported for the lists a document was in; a filled-in score is never reported.
    expect(fused[0]).toMatchObject({ ranks: { lexical: 1 }, scores: { lexical: 10 } });
    expect(fused[1]).toMatchObject({ ranks: { dense: 1, lexical: 2 }, scores: { dense: 0.6, lexical: 5 } });
    expect(fused[2]).toMatchObject({ ranks: { dense: 2 }, scores: { dense: 0.2 } });
  });

  it("fills with 0 instead when a list came back shorter than its read depth (it holds every match)", () => {
    // depth 5: both lists have 3 entries, so a missing document's true score is the minimum.
    const fused = convexCombinationFusion({ dense, lexical }, { weights: DEFAULT_CONVEX_WEIGHTS, depth: 5 });
    // a 0.7 · b 0.65 · c 0.14 · d 0.225 · e 0.15
    expect(fused.map((hit) => hit.id)).toEqual(["a", "b", "d", "e", "c"]);
    [0.7, 0.65, 0.225, 0.15, 0.14].forEach((score, i) => expect(fused[i]!.score).toBeCloseTo(score, 12));
    // depth 3: both lists are full, so they may have been cut — the lowest-observed fill again.
    expect(convexCombinationFusion({ dense, lexical }, { weights: DEFAULT_CONVEX_WEIGHTS, depth: 3 })[2]!.score).toBeCloseTo(0.365, 12);
  });

  it("applies the weights (only their ratio matters); a weight-0 list only adds candidates after the scored ones", () => {
    const denseHeavy = convexCombinationFusion({ dense, lexical }, { weights: { dense: 0.9, lexical: 0.1 } });
    // a 0.1 + 0.45 = 0.55 · b 0.05 + 0.9 = 0.95 · d 0.02 + 0.675 = 0.695 · c 0.02 + 0.45 = 0.47 · e 0.02 + 0.45 = 0.47
    expect(denseHeavy.map((hit) => hit.id)).toEqual(["b", "d", "a", "c", "e"]);
    expect(denseHeavy[1]!.score).toBeCloseTo(0.695, 12);
    const scaled = convexCombinationFusion({ dense, lexical }, { weights: { dense: 9, lexical: 1 } });
    expect(scaled.map((hit) => hit.id)).toEqual(denseHeavy.map((hit) => hit.id));
    expect(scaled[0]!.score).toBeCloseTo(10 * denseHeavy[0]!.score, 12);

    const lexicalOnly = convexCombinationFusion({ dense, lexical }, { weights: { dense: 0, lexical: 0.7 } });
    // d and e (dense only) get the lexical fill 0.14, c's score: they still follow c, ordered by their dense score.
    expect(lexicalOnly.map((hit) => [hit.id, hit.ranks])).toEqual([
      ["a", { lexical: 1 }],
      ["b", { dense: 1, lexical: 2 }],
      ["c", { lexical: 3 }],
      ["d", { dense: 2 }],
      ["e", { dense: 3 }],
    ]);
    [0.7, 0.35, 0.14, 0.14, 0.14].forEach((score, i) => expect(lexicalOnly[i]!.score).toBeCloseTo(score, 12));
    // With nothing lexical at all, the zero-weight dense list still answers, in its own order.
    expect(convexCombinationFusion({ dense, lexical: [] }, { weights: { dense: 0, lexical: 1 } }).map((hit) => hit.id)).toEqual(["b", "d", "e"]);
    // Unnamed lists weigh 1.
    expect(convexCombinationFusion({ dense, lexical })[0]!.score).toBeCloseTo(0.5 + 1, 12); // b: 0.5 + 1
  });

  it("keeps magnitudes: a flat dense list stays flat, BM25 is scale-free", () => {
    // Cosines 0.45 and 0.40 normalise to 1 and 1.4/1.45 ≈ 0.966, not to 1 and 0 (no stretching by the observed minimum).
    const flat = convexCombinationFusion({ dense: ranked(["x", 0.45], ["y", 0.4]) });
    expect(flat[1]!.score).toBeCloseTo(1.4 / 1.45, 12);
    const times10 = lexical.map((hit) => ({ ...hit, score: hit.score * 10 }));
    const a = convexCombinationFusion({ dense, lexical }, { weights: DEFAULT_CONVEX_WEIGHTS });
    const b = convexCombinationFusion({ dense, lexical: times10 }, { weights: DEFAULT_CONVEX_WEIGHTS });
    expect(b.map((hit) => hit.id)).toEqual(a.map((hit) => hit.id));
    b.forEach((hit, i) => expect(hit.score).toBeCloseTo(a[i]!.score, 12));
  });

  it("breaks ties by id, counts a repeated document once, limits, and handles empty and floor-only lists", () => {
    // p and q each top one list with equal weight and get the other list's only score as fill: 1 + 1 apiece.
    const tied = convexCombinationFusion({ dense: ranked(["q", 0.3]), lexical: ranked(["p", 4]) });
    expect(tied.map((hit) => [hit.id, hit.score])).toEqual([["p", 2], ["q", 2]]);
    const numeric = convexCombinationFusion({ lexical: [{ id: 10, score: 1, rank: 1 }, { id: 9, score: 1, rank: 2 }] });
    expect(numeric.map((hit) => hit.id)).toEqual([9, 10]); // numeric ids compare as numbers
    const repeated = convexCombinationFusion({ lexical: ranked(["a", 4], ["b", 2], ["a", 1]) });
    expect(repeated.map((hit) => [hit.id, hit.score, hit.ranks.lexical])).toEqual([["a", 1, 1], ["b", 0.5, 2]]);
    expect(convexCombinationFusion({ dense, lexical }, { limit: 2 })).toHaveLength(2);
    // An empty list adds nothing to anyone; a list at its floor carries no signal (all 0), without dividing by 0.
    expect(convexCombinationFusion({ dense: [], lexical }).map((hit) => hit.score)).toEqual([1, 0.5, 0.2]);
    expect(convexCombinationFusion({ dense: ranked(["x", -1], ["y", -1]) }).map((hit) => hit.score)).toEqual([0, 0]);
  });

  it("needs a theoretical minimum for a list it does not know, and rejects negative weights", () => {
    expect(() => convexCombinationFusion({ sparse: lexical })).toThrow(/theoretical minimum score of list "sparse"/);
    expect(convexCombinationFusion({ sparse: lexical }, { minScores: { sparse: 0 } })[1]!.score).toBeCloseTo(0.5, 12);
    expect(() => convexCombinationFusion({ dense }, { weights: { dense: -1 } })).toThrow(/≥ 0/);
  });

  // The local service, query "clean a bicycle chain": lexical puts the bicycle-chain document first by a wide margin
  // (BM25 24.9 against 7.2), the early dense model has it only at #41; documents at middling ranks in both lists (a
  // Debian package at dense #9 + lexical #4) overtake it under RRF, and hybrid showed it 5th.
  describe("regression: a clear lexical winner stays first", () => {
    const bm25 = [24.9, 7.2, 6.8, 6.5, 6.1, 5.9, 5.4, 5.0, 4.7, 4.1];
    const lexicalIds = ["bicycle-chain", "debian-apt", "chain-saw", "debian-dpkg", "bike-tyres", "l6", "l7", "l8", "l9", "l10"];
    const denseAt: Record<number, string> = { 3: "chain-saw", 6: "debian-apt", 9: "debian-dpkg", 12: "bike-tyres", 41: "bicycle-chain" };
    const bicycleLexical = ranked(...lexicalIds.map((id, i): [string, number] => [id, bm25[i]!]));
    // 50 dense candidates with the compressed cosines of a weak model: 0.62 at #1 down to ≈ 0.30 at #50.
    const bicycleDense = ranked(
      ...Array.from({ length: 50 }, (_, i): [string, number] => [denseAt[i + 1] ?? `d${i + 1}`, 0.62 - 0.0065 * i]),
    );
    const lists = { dense: bicycleDense, lexical: bicycleLexical };

    it("RRF (lexical 3, dense 1) demotes it to 5th", () => {
      // bicycle 3/61 + 1/101 ≈ 0.0591 < debian-apt 3/62 + 1/66 ≈ 0.0635, chain-saw 3/63 + 1/63 ≈ 0.0635,
      // debian-dpkg 3/64 + 1/69 ≈ 0.0614, bike-tyres 3/65 + 1/72 ≈ 0.0600
      const fused = combineRankings("hybrid", lists, { topK: 10, fusion: "rrf", candidates: 50 });
      expect(fused.findIndex((hit) => hit.id === "bicycle-chain")).toBe(4);
      expect(fused.slice(0, 4).map((hit) => hit.id)).toContain("debian-dpkg");
    });

    it("convex fusion (the default) keeps it first, with its ranks and scores", () => {
      const fused = combineRankings("hybrid", lists, { topK: 10, candidates: 50 });
      // bicycle 0.7·1 + 0.3·(1.3535/1.62) ≈ 0.951; the runner-up is at most 0.7·(7.2/24.9) + 0.3·1 ≈ 0.502
      expect(fused[0]).toMatchObject({ id: "bicycle-chain", ranks: { dense: 41, lexical: 1 }, scores: { lexical: 24.9 } });
      expect(fused[0]!.score).toBeCloseTo(0.7 + (0.3 * (1.62 - 0.0065 * 40)) / 1.62, 10);
      expect(fused[1]!.score).toBeLessThan(0.51);
      // It stays first even when the dense list does not return it at all.
      const withoutIt = { ...lists, dense: bicycleDense.filter((hit) => hit.id !== "bicycle-chain") };
      expect(combineRankings("hybrid", withoutIt, { topK: 10, candidates: 49 })[0]!.id).toBe("bicycle-chain");
    });

    it("holds in general: a lexical #1 whose runner-up has under 4/7 of its BM25 stays first (0.7·(1 − 4/7) = 0.3)", () => {
      const next = random(11);
      for (let trial = 0; trial < 200; trial++) {
        const top = 5 + 20 * next();
        const lexicalScores = Array.from({ length: 20 }, () => top * 0.57 * next()).sort((x, y) => y - x);
        const lexicalList = ranked(["winner", top], ...lexicalScores.map((score, i): [string, number] => [`l${i}`, score]));
        const denseIds = Array.from({ length: 30 }, (_, i) => (i < 20 && next() < 0.5 ? `l${i}` : `d${i}`));
        const cosines = Array.from({ length: 30 }, () => 2 * next() - 1).sort((x, y) => y - x);
        const denseList = ranked(...denseIds.map((id, i): [string, number] => [id, cosines[i]!]));
        expect(combineRankings("hybrid", { dense: denseList, lexical: lexicalList }, { topK: 1, candidates: 30 })[0]!.id).toBe("winner");
      }
    });
  });
});

describe("reciprocal rank fusion", () => {
  const hits = (...ids: string[]): RankedHit[] => ids.map((id, index) => ({ id, score: 1 / (index + 1), rank: index + 1 }));
  const dense = hits("a", "b", "c");
  const lexical = hits("b", "d");

  it("defaults to lexical × 3, dense × 1", () => {
    expect(DEFAULT_RRF_WEIGHTS).toEqual({ dense: 1, lexical: 3 });
  });

  it("fuses with weights dense 1, lexical 3, k = 60", () => {
    const fused = reciprocalRankFusion({ dense, lexical }, { weights: DEFAULT_RRF_WEIGHTS });
    // a 1/61 ≈ 0.01639 · b 1/62 + 3/61 ≈ 0.06531 · c 1/63 ≈ 0.01587 · d 3/62 ≈ 0.04839
    expect(fused.map((hit) => hit.id)).toEqual(["b", "d", "a", "c"]);
    expect(fused[0]!.score).toBeCloseTo(1 / 62 + 3 / 61, 12);
    expect(fused[1]!.score).toBeCloseTo(3 / 62, 12);
    expect(fused[0]!.ranks).toEqual({ dense: 2, lexical: 1 });
    expect(fused[0]!.scores).toEqual({ dense: 0.5, lexical: 1 });
    expect(fused[1]!.ranks).toEqual({ lexical: 2 });
  });

  it("is classic RRF with equal weights", () => {
    const fused = reciprocalRankFusion({ dense, lexical });
    // a 1/61 ≈ 0.01639 · b 1/62 + 1/61 ≈ 0.03252 · c 1/63 ≈ 0.01587 · d 1/62 ≈ 0.01613
    expect(fused.map((hit) => hit.id)).toEqual(["b", "a", "d", "c"]);
  });

  it("keeps a dense-only hit below lexical hits ranked up to 122 with the default weights", () => {
    const lexicalLong = hits(...Array.from({ length: 122 }, (_, i) => `l${i}`));
    const fused = reciprocalRankFusion({ dense: hits("only-dense"), lexical: lexicalLong }, { weights: DEFAULT_RRF_WEIGHTS });
    expect(fused.at(-1)!.id).toBe("only-dense");
  });

  it("breaks score ties by best rank, then id; limits; a weight-0 list only adds candidates", () => {
    expect(reciprocalRankFusion({ x: hits("q"), y: hits("p") }).map((hit) => hit.id)).toEqual(["p", "q"]);
    expect(reciprocalRankFusion({ dense, lexical }, { limit: 2 })).toHaveLength(2);
    const lexicalOnly = reciprocalRankFusion({ dense, lexical }, { weights: { dense: 0, lexical: 1 } });
    // a and c (dense only) score 0 and follow, by their dense rank.
    expect(lexicalOnly.map((hit) => hit.id)).toEqual(["b", "d", "a", "c"]);
    expect(lexicalOnly[0]!.ranks).toEqual({ dense: 2, lexical: 1 });
    expect(lexicalOnly[2]!.score).toBe(0);
  });

  it("uses the custom k", () => {
    const fused = reciprocalRankFusion({ dense }, { k: 0 });
    expect(fused.map((hit) => hit.score)).toEqual([1, 1 / 2, 1 / 3]);
  });

  it("rejects negative weights and k", () => {
    expect(() => reciprocalRankFusion({ dense }, { weights: { dense: -1 } })).toThrow(/≥ 0/);
    expect(() => reciprocalRankFusion({ dense }, { k: -1 })).toThrow(/k must be/);
  });
});

describe("hybrid policy", () => {
  const dense: RankedHit[] = [
    { id: "a", score: 0.9, rank: 1 },
    { id: "b", score: 0.5, rank: 2 },
  ];
  const lexical: RankedHit[] = [{ id: "b", score: 7.5, rank: 1 }];

  it("names the lists each mode needs", () => {
    expect(listsFor("dense")).toEqual({ dense: true, lexical: false });
    expect(listsFor("lexical")).toEqual({ dense: false, lexical: true });
    expect(listsFor("hybrid")).toEqual({ dense: true, lexical: true });
  });

  it("keeps the list's own score in single-list modes", () => {
    expect(combineRankings("dense", { dense, lexical }, { topK: 1 })).toEqual([
      { id: "a", score: 0.9, ranks: { dense: 1 }, scores: { dense: 0.9 } },
    ]);
    expect(combineRankings("lexical", { lexical }, { topK: 5 })).toEqual([
      { id: "b", score: 7.5, ranks: { lexical: 1 }, scores: { lexical: 7.5 } },
    ]);
  });

  it("fuses in hybrid mode by convex combination, lexical 0.7 and dense 0.3 unless overridden", () => {
    // Read at depth 50, both lists are complete: b 0.7·1 + 0.3·(1.5/1.9) ≈ 0.9368 · a 0.3·(1.9/1.9) + 0 = 0.3
    const fused = combineRankings("hybrid", { dense, lexical }, { topK: 10, candidates: 50 });
    expect(fused.map((hit) => hit.id)).toEqual(["b", "a"]);
    expect(fused[0]!.score).toBeCloseTo(0.7 + (0.3 * 1.5) / 1.9, 12);
    expect(fused[1]!.score).toBeCloseTo(0.3, 12);
    expect(fused[0]).toMatchObject({ ranks: { dense: 2, lexical: 1 }, scores: { dense: 0.5, lexical: 7.5 } });
    // Depth unknown, the lists may have been cut, so a gets lexical's lowest (b's 0.7) as fill: 0.3 + 0.7 = 1.
    expect(combineRankings("hybrid", { dense, lexical }, { topK: 10 })[0]).toMatchObject({ id: "a", score: 1 });
    // An override replaces one list's default and keeps the other's: dense 2.1, lexical 0.7 — a 2.1 · b 0.7 + 2.1·(1.5/1.9)
    const denseHeavy = combineRankings("hybrid", { dense, lexical }, { topK: 10, weights: { dense: 2.1 }, candidates: 50 });
    expect(denseHeavy.map((hit) => hit.id)).toEqual(["b", "a"]);
    expect(denseHeavy[0]!.score).toBeCloseTo(0.7 + (2.1 * 1.5) / 1.9, 12);
    expect(combineRankings("hybrid", { dense }, { topK: 1 }).map((hit) => hit.id)).toEqual(["a"]);
  });

  it("fuses by RRF on request, lexical 3 and dense 1 unless overridden", () => {
    // b: 1/62 + 3/61 ≈ 0.0653 · a: 1/61 ≈ 0.0164
    const fused = combineRankings("hybrid", { dense, lexical }, { topK: 10, fusion: "rrf" });
    expect(fused.map((hit) => hit.id)).toEqual(["b", "a"]);
    expect(fused[0]!.score).toBeCloseTo(1 / 62 + 3 / 61, 12);
    // dense 10, lexical 1 — a: 10/61 ≈ 0.164 · b: 10/62 + 1/61 ≈ 0.178
    const denseHeavy = combineRankings("hybrid", { dense, lexical }, { topK: 10, fusion: "rrf", weights: { dense: 10, lexical: 1 } });
    expect(denseHeavy[0]!.score).toBeCloseTo(10 / 62 + 1 / 61, 12);
    expect(combineRankings("hybrid", { dense }, { topK: 1, fusion: "rrf" }).map((hit) => hit.id)).toEqual(["a"]);
  });

  it("resolves the weights in effect per fusion", () => {
    expect(hybridWeights("convex")).toEqual({ dense: 0.3, lexical: 0.7 });
    expect(hybridWeights("rrf")).toEqual({ dense: 1, lexical: 3 });
    expect(hybridWeights("convex", { dense: 0 })).toEqual({ dense: 0, lexical: 0.7 });
    expect(hybridWeights("rrf", { dense: undefined, lexical: 1 })).toEqual({ dense: 1, lexical: 1 });
  });
});

describe("lexical terms", () => {
  it("drops [UNK] and pieces without a letter or digit, keeps continuation pieces", () => {
    expect(lexicalTerms(["the", "[UNK]", ",", "lens", "##es", "42", "é", "-"])).toEqual(["the", "lens", "##es", "42", "é"]);
  });
});

describe("snippets", () => {
  const filler = "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore. ";
  const text = `${filler.repeat(3)}The lighthouse keeper trimmed the wick at dusk. ${filler.repeat(3)}`;

  it("returns a short text whole, with whitespace collapsed", () => {
    expect(makeSnippet("  a  short\n text ", "short", 50)).toBe("a short text");
  });

  it("centres on the window with the most distinct query words, cut at word boundaries", () => {
    const snippet = makeSnippet(text, "lighthouse wick", 120);
    expect(snippet).toContain("The lighthouse keeper trimmed the wick");
    expect(snippet.startsWith("…")).toBe(true);
    expect(snippet.endsWith("…")).toBe(true);
    expect(snippet.length).toBeLessThanOrEqual(122);
    expect(snippet).toMatch(/^…\S/); // starts on a whole word
  });

  it("matches through normalisation (case, accents)", () => {
    const accented = `${filler.repeat(3)}Un CAFÉ au lait, s'il vous plaît. ${filler.repeat(3)}`;
    expect(makeSnippet(accented, "cafe", 80)).toContain("CAFÉ au lait");
  });

  it("matches ASCII words whatever their case, and keeps the text's own case in the snippet", () => {
    const shouted = `${filler.repeat(3)}THE LIGHTHOUSE Keeper trimmed the WICK at dusk. ${filler.repeat(3)}`;
    expect(makeSnippet(shouted, "lighthouse wick", 120)).toContain("THE LIGHTHOUSE Keeper trimmed the WICK");
    // The same window as the lower-case text: matching depends on the words, not on their case.
    expect(makeSnippet(shouted, "lighthouse wick", 120).toLowerCase()).toBe(makeSnippet(text, "lighthouse wick", 120).toLowerCase());
  });

  it("falls back to the start of the text when nothing matches", () => {
    const snippet = makeSnippet(text, "glacier", 60);
    expect(snippet.startsWith("Lorem ipsum")).toBe(true);
    expect(snippet.endsWith("…")).toBe(true);
  });
});

describe("document text", () => {
  it("puts the title first, on its own line, and omits an empty title", () => {
    expect(documentText({ title: "Glaciers", text: "Ice carves valleys." })).toBe("Glaciers\nIce carves valleys.");
    expect(documentText({ title: "", text: "Untitled." })).toBe("Untitled.");
    expect(documentText({ text: "No title field." })).toBe("No title field.");
  });
});

describe("snippet word scan", () => {
  it("finds exactly the words the Unicode word pattern matches, surrogate pairs and marks included", () => {
    const pattern = /[\p{L}\p{N}][\p{L}\p{N}\p{M}'’]*/gu;
    // Letters, digits, marks, apostrophes, punctuation, spaces, CJK, emoji (surrogate pairs), mathematical letters (astral).
    const alphabet = ["a", "Z", "7", "é", "e\u0301", "'", "’", "-", " ", ".", "ß", "İ", "β", "中", "😀", "𝐀", "\u0301", "٣", "_", "ﬁ", "\ud800"];
    const random = createRng(29);
    for (let n = 0; n < 500; n++) {
      const text = Array.from({ length: Math.floor(random() * 40) }, () => alphabet[Math.floor(random() * alphabet.length)]!).join("");
      const expected = [...text.matchAll(pattern)].map((m) => [m.index, m.index + m[0].length]);
      const got: number[][] = [];
      forEachWord(text, (start, end) => void got.push([start, end]));
      expect(got, JSON.stringify(text)).toEqual(expected);
    }
    const firstTwo: number[][] = [];
    forEachWord("one two three", (start, end) => (firstTwo.push([start, end]), firstTwo.length < 2));
    expect(firstTwo).toEqual([[0, 3], [4, 7]]);
  });
});

describe("snippet windows", () => {
  /** The straightforward version: every word by the regex, a fresh Set per window start. */
  function referenceSnippet(text: string, query: string, maxChars: number): string {
    const flat = text.replace(/\s+/g, " ").trim();
    if (flat.length <= maxChars) return flat;
    const queryWords = new Set(normalizeAndPreTokenize(query));
    const matches: { at: number; end: number; word: string }[] = [];
    for (const match of flat.matchAll(/[\p{L}\p{N}][\p{L}\p{N}\p{M}'’]*/gu)) {
      const word = normalize(match[0]);
      if (queryWords.has(word)) matches.push({ at: match.index, end: match.index + match[0].length, word });
    }
    let bestStart = 0;
    let bestCount = 0;
    for (let i = 0; i < matches.length; i++) {
      const windowEnd = matches[i]!.at + maxChars - 40;
      const distinct = new Set<string>();
      for (let j = i; j < matches.length && matches[j]!.end <= windowEnd; j++) distinct.add(matches[j]!.word);
      if (distinct.size > bestCount) {
        bestCount = distinct.size;
        bestStart = matches[i]!.at;
      }
    }
    let start = bestCount === 0 ? 0 : Math.max(0, bestStart - 40);
    if (start > 0) {
      const space = flat.indexOf(" ", start);
      start = space >= 0 && space < bestStart ? space + 1 : start;
    }
    let end = Math.min(flat.length, start + maxChars);
    if (end < flat.length) {
      const space = flat.lastIndexOf(" ", end);
      if (space > start) end = space;
    }
    return `${start > 0 ? "…" : ""}${flat.slice(start, end).trim()}${end < flat.length ? "…" : ""}`;
  }

  it("choose the same window as the straightforward scan, on random texts dense with query words", () => {
    const vocabulary = ["the", "tide", "Tide", "harbour", "lamp", "CAFÉ", "café", "rope", "of", "a", "gull", "supercalifragilistic", "x", "7"];
    const random = createRng(31);
    for (let n = 0; n < 400; n++) {
      const text = Array.from({ length: 5 + Math.floor(random() * 120) }, () => vocabulary[Math.floor(random() * vocabulary.length)]!).join(random() < 0.5 ? " " : "  ");
      const query = Array.from({ length: 1 + Math.floor(random() * 4) }, () => vocabulary[Math.floor(random() * vocabulary.length)]!).join(" ");
      const maxChars = [30, 60, 120, 220][n % 4]!;
      expect(makeSnippet(text, query, maxChars), `${query} | ${maxChars}`).toBe(referenceSnippet(text, query, maxChars));
    }
  });
});

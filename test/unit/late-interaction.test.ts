/**
 * Late interaction against hand-computed cases: MaxSim over float and int8 token matrices, the quantizer and its
 * storage size, and reranking of first-stage candidates. Expected numbers are written out as the formula with the
 * case's own values, so a reader can check them by hand.
 */
import { describe, expect, it } from "vitest";
import {
  isQuantized,
  lateRerank,
  maxSim,
  quantizeTokenMatrix,
  quantizedTokenMatrixBytes,
  type QuantizedTokenMatrix,
  type RankedHit,
  type TokenMatrix,
} from "../../src/retrieval/index.js";
import { createRng } from "../../training/src/data/random.js";

/** A token matrix from its rows. */
const tokens = (...rows: number[][]): TokenMatrix => ({
  count: rows.length,
  dims: rows[0]?.length ?? 2,
  data: Float32Array.from(rows.flat()),
});

/** Unit-length random rows (deterministic). */
function randomTokens(rng: () => number, count: number, dims: number): TokenMatrix {
  const data = new Float32Array(count * dims);
  for (let t = 0; t < count; t++) {
    let sumSquares = 0;
    for (let i = 0; i < dims; i++) sumSquares += (data[t * dims + i] = rng() * 2 - 1) ** 2;
    for (let i = 0; i < dims; i++) data[t * dims + i]! /= Math.sqrt(sumSquares);
  }
  return { count, dims, data };
}

const query = tokens([1, 0], [0, 1]);

describe("maxSim", () => {
  it("sums, over query tokens, the best dot product with any document token", () => {
    // token [1,0]: max(0.6, 1) = 1; token [0,1]: max(0.8, 0) = 0.8
    expect(maxSim(query, tokens([0.6, 0.8], [1, 0]))).toBeCloseTo(1 + 0.8, 6);
    // token [1,0]: −1; token [0,1]: 0
    expect(maxSim(query, tokens([-1, 0]))).toBeCloseTo(-1 + 0, 6);
    // the document side is not summed over: one good document token serves every query token
    expect(maxSim(tokens([1, 0], [1, 0], [1, 0]), tokens([0, 1], [1, 0]))).toBeCloseTo(3 * 1, 6);
  });

  it("scores an empty query 0 and an empty document −(query tokens)", () => {
    const empty: TokenMatrix = { count: 0, dims: 2, data: new Float32Array(0) };
    expect(maxSim(empty, tokens([1, 0]))).toBe(0);
    expect(maxSim(query, empty)).toBe(-2);
    expect(maxSim(query, quantizeTokenMatrix(empty))).toBe(-2);
    expect(maxSim(empty, empty)).toBe(0);
  });

  it("rejects mismatched or malformed matrices, naming the bad value", () => {
    expect(() => maxSim(query, tokens([1, 0, 0]))).toThrow(/query has 2-dimensional token vectors, the document 3/);
    expect(() => maxSim(query, { count: 2, dims: 2, data: new Float32Array(3) })).toThrow(/doc\.data has 3 values, expected count·dims = 2·2/);
    expect(() => maxSim({ count: -1, dims: 2, data: new Float32Array(0) }, query)).toThrow(/query\.count must be a non-negative integer, got -1/);
    expect(() => maxSim(query, { count: 1, dims: 0, data: new Float32Array(0) })).toThrow(RangeError);
    expect(() => maxSim(quantizeTokenMatrix(query) as unknown as TokenMatrix, query)).toThrow(/query must be a float TokenMatrix/);
    expect(() => maxSim(query, { count: 1, dims: 2, data: [1, 0] as unknown as Float32Array })).toThrow(TypeError);
  });
});

describe("quantizeTokenMatrix", () => {
  it("stores int8 codes with one scale per row: max |v| / 127", () => {
    const q = quantizeTokenMatrix(tokens([0.6, 0.8], [-1, 0], [0, 0]));
    expect(isQuantized(q)).toBe(true);
    expect(isQuantized(query)).toBe(false);
    expect(q.count).toBe(3);
    expect(q.dims).toBe(2);
    // row 0: scale 0.8/127, codes round(0.6·127/0.8) = round(95.25) = 95 and 127; row 1: scale 1/127; zero row: scale 0
    expect(Array.from(q.scales)).toEqual([Math.fround(0.8 / 127), Math.fround(1 / 127), 0]);
    expect(Array.from(q.data)).toEqual([95, 127, -127, 0, 0, 0]);
  });

  it("reports its stored size: count·dims int8 codes plus count float32 scales", () => {
    expect(quantizedTokenMatrixBytes(quantizeTokenMatrix(tokens([0.6, 0.8], [-1, 0], [0, 1])))).toBe(3 * 2 * 1 + 3 * 4);
    const big = quantizeTokenMatrix(randomTokens(createRng(1), 50, 128));
    expect(quantizedTokenMatrixBytes(big)).toBe(50 * 128 + 50 * 4);
  });

  it("keeps every component within half a step of the original", () => {
    const original = randomTokens(createRng(7), 40, 32);
    const q = quantizeTokenMatrix(original);
    for (let t = 0; t < q.count; t++) {
      for (let i = 0; i < q.dims; i++) {
        const error = Math.abs(q.scales[t]! * q.data[t * q.dims + i]! - original.data[t * q.dims + i]!);
        expect(error).toBeLessThanOrEqual(q.scales[t]! / 2 + 1e-7);
      }
    }
  });

  it("rejects non-finite values and quantized input", () => {
    expect(() => quantizeTokenMatrix(tokens([1, Number.NaN]))).toThrow(/row 0 component 1 is NaN/);
    expect(() => quantizeTokenMatrix(quantizeTokenMatrix(query) as unknown as TokenMatrix)).toThrow(/already quantized/);
  });
});

describe("maxSim over a quantized document", () => {
  it("equals MaxSim against the dequantized rows", () => {
    // [1,0]·(0.8/127)·[95,127] = 95·0.8/127 (the float score would be 0.6)
    expect(maxSim(tokens([1, 0]), quantizeTokenMatrix(tokens([0.6, 0.8])))).toBeCloseTo((95 * 0.8) / 127, 6);
    // token [1,0]: max(95·0.8/127, 127/127) = 1; token [0,1]: max(127·0.8/127, 0) = 0.8
    expect(maxSim(query, quantizeTokenMatrix(tokens([0.6, 0.8], [1, 0])))).toBeCloseTo(1 + 0.8, 6);
  });

  it("stays within a small error of the float score on random unit vectors", () => {
    const rng = createRng(42);
    const q = randomTokens(rng, 8, 64);
    for (let trial = 0; trial < 20; trial++) {
      const doc = randomTokens(rng, 30, 64);
      // per query token, |error| ≤ max_j Σ_i |q_i|·scale_j/2 ≤ √64 · (1/127) / 2, so 8 tokens ≤ 8·8/254 ≈ 0.25;
      // the errors are not all of one sign, so the observed error is far below that bound
      const error = Math.abs(maxSim(q, quantizeTokenMatrix(doc)) - maxSim(q, doc));
      expect(error).toBeLessThan((8 * 8) / 254);
      expect(error).toBeLessThan(0.05);
    }
  });

  it("rejects a quantized matrix whose scales do not match its rows", () => {
    const bad: QuantizedTokenMatrix = { ...quantizeTokenMatrix(tokens([1, 0], [0, 1])), scales: new Float32Array(1) };
    expect(() => maxSim(query, bad)).toThrow(/doc\.scales has 1 entries, expected count 2/);
  });
});

describe("lateRerank", () => {
  const hit = <Id extends string | number>(id: Id, rank: number, score = 1 / rank): RankedHit<Id> => ({ id, rank, score });
  const docs: Record<string, TokenMatrix | QuantizedTokenMatrix> = {
    a: tokens([-1, 0]), //                 −1 + 0 = −1
    b: tokens([0.6, 0.8], [1, 0]), //      1 + 0.8 = 1.8
    c: tokens([0.6, 0.8], [1, 0]), //      1.8, tied with b
    w: tokens([0, 1]), //                  0 + 1 = 1
    x: tokens([0, 1]), //                  1, tied with w at the same original rank
    e: tokens([-3, 0]), //                 −3 + 0 = −3 (not unit length: below the floor −2, still scored)
  };
  const candidates = [hit("a", 1), hit("b", 2), hit("c", 3), hit("d", 4), hit("x", 5), hit("w", 5), hit("e", 6)];

  it("orders by MaxSim, ties by original rank then id, candidates without tokens last at the floor score", () => {
    const ranked = lateRerank(candidates, query, (id) => docs[id], 10);
    expect(ranked.map((h) => h.id)).toEqual(["b", "c", "w", "x", "a", "e", "d"]);
    expect(ranked.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const scores = ranked.map((h) => h.score);
    [1.8, 1.8, 1, 1, -1, -3, -2].forEach((expected, i) => expect(scores[i]).toBeCloseTo(expected, 6));
    expect(Object.keys(ranked[0]!).sort()).toEqual(["id", "rank", "score"]);
  });

  it("keeps at most topK, counts a repeated candidate once at its better rank, and accepts numeric ids", () => {
    expect(lateRerank(candidates, query, (id) => docs[id], 2).map((h) => h.id)).toEqual(["b", "c"]);
    expect(lateRerank(candidates, query, (id) => docs[id], 0)).toEqual([]);
    // c named again at rank 1 now outranks b on the tie
    const repeated = lateRerank([...candidates, hit("c", 1)], query, (id) => docs[id], 10);
    expect(repeated.map((h) => h.id)).toEqual(["c", "b", "w", "x", "a", "e", "d"]);
    const byNumber = new Map<number, TokenMatrix>([[7, tokens([1, 0])], [3, tokens([0, 1])]]);
    const numeric = lateRerank([hit(3, 1), hit(7, 2), hit(9, 3)], tokens([1, 0]), (id) => byNumber.get(id), 5);
    expect(numeric).toEqual([
      { id: 7, score: 1, rank: 1 },
      { id: 3, score: 0, rank: 2 },
      { id: 9, score: -1, rank: 3 },
    ]);
    expect(lateRerank([], query, () => undefined, 5)).toEqual([]);
  });

  it("reads quantized document matrices directly", () => {
    const quantized = (id: string) => (docs[id] && !isQuantized(docs[id]) ? quantizeTokenMatrix(docs[id]) : undefined);
    const ranked = lateRerank([hit("a", 1), hit("w", 2), hit("b", 3)], query, quantized, 3);
    expect(ranked.map((h) => h.id)).toEqual(["b", "w", "a"]);
    expect(ranked[0]!.score).toBeCloseTo(1 + 0.8, 6);
  });

  it("rejects a bad topK, a quantized query and a document of the wrong width, naming it", () => {
    expect(() => lateRerank(candidates, query, (id) => docs[id], -1)).toThrow(/topK must be a non-negative integer, got -1/);
    expect(() => lateRerank(candidates, query, (id) => docs[id], 1.5)).toThrow(RangeError);
    expect(() => lateRerank(candidates, quantizeTokenMatrix(query) as unknown as TokenMatrix, (id) => docs[id], 3)).toThrow(
      /queryTokens must be a float TokenMatrix/,
    );
    expect(() => lateRerank([hit("z", 1)], query, () => tokens([1, 0, 0]), 3)).toThrow(/token matrix of "z" has 3-dimensional vectors, the query 2/);
  });
});

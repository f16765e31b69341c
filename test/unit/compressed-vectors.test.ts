/**
 * Compressed vectors (src/retrieval/compressed.ts) and PCA (src/retrieval/pca.ts) against hand-computed cases: sign-bit
 * packing, popcount and Hamming distance, per-vector int8 quantisation and its dot product, the two-stage binary search
 * with int8 rescoring, and the Jacobi eigen-decomposition / PCA on matrices small enough to diagonalise by hand.
 */
import { describe, expect, it } from "vitest";
import {
  binaryRescoreSearch,
  compressedBytesPerVector,
  explainedVariance,
  fitPca,
  hammingDistance,
  hammingSearch,
  int8Dot,
  int8Search,
  packSignBits,
  pcaProject,
  pcaProjectRows,
  popcount32,
  quantizeInt8Rows,
  rescoreInt8,
  signWords,
  symmetricEigen,
} from "../../src/retrieval/index.js";

describe("sign bits and Hamming distance", () => {
  it("packs bit i of a row into word ⌊i/32⌋ at position i mod 32, set only for components > 0", () => {
    // Row 0: + − 0 + → bits 0 and 3 → 0b1001 = 9. Row 1: − + + − → bits 1 and 2 → 0b0110 = 6.
    expect([...packSignBits([0.5, -1, 0, 2, -0.1, 3, 0.2, -4], 4)]).toEqual([9, 6]);
    // 33 dims need two words; component 32 lands in bit 0 of the second word, component 31 in the top bit of the first.
    const wide = new Float32Array(33);
    wide[31] = 1;
    wide[32] = 1;
    expect([...packSignBits(wide, 33)]).toEqual([0x80000000, 1]);
    expect(signWords(128)).toBe(4);
    expect(() => packSignBits([1, 2, 3], 2)).toThrow(RangeError);
  });

  it("counts bits with popcount and XORs rows for the Hamming distance", () => {
    expect(popcount32(0)).toBe(0);
    expect(popcount32(0b1011)).toBe(3);
    expect(popcount32(0xffffffff)).toBe(32);
    expect(popcount32(0x80000001)).toBe(2);
    // 9 = 1001, 6 = 0110: every one of the 4 bits differs.
    const bits = new Uint32Array([9, 6, 9]);
    expect(hammingDistance(bits, 0, bits, 1, 1)).toBe(4);
    expect(hammingDistance(bits, 0, bits, 2, 1)).toBe(0);
  });

  it("ranks rows by Hamming distance, scored 1 − 2·hamming/dims, ties to the lower row", () => {
    // 4 dims. Query signs + + − − (bits 0, 1 → 3).
    const rows = [
      [1, 1, -1, -1], // identical signs: distance 0 → score 1
      [-1, -1, 1, 1], // all differ: distance 4 → score −1
      [1, -1, -1, -1], // one differs: distance 1 → score 0.5
      [1, 1, -1, 1], // one differs: distance 1 → score 0.5 (tie with row 2; row 2 first)
    ].flat();
    const hits = hammingSearch(packSignBits(rows, 4), 4, packSignBits([0.3, 0.9, -0.2, -0.4], 4), 3);
    expect(hits).toEqual([
      { id: 0, score: 1, rank: 1 },
      { id: 2, score: 0.5, rank: 2 },
      { id: 3, score: 0.5, rank: 3 },
    ]);
    // A mask keeps excluded rows out entirely: the list is made of allowed rows only, still k long when it can be.
    const masked = hammingSearch(packSignBits(rows, 4), 4, packSignBits([0.3, 0.9, -0.2, -0.4], 4), 2, Uint8Array.of(0, 1, 1, 0));
    expect(masked.map((h) => h.id)).toEqual([2, 1]);
    expect(() => hammingSearch(packSignBits(rows, 4), 4, packSignBits([1, 1, 1, 1], 4), 2, Uint8Array.of(1))).toThrow(/mask has 1 rows/);
  });

  it("selects exactly what sorting every allowed row by (distance, row) and taking k gives, on random matrices", () => {
    // A seeded LCG keeps the cases reproducible.
    let state = 0x9e3779b9;
    const nextWord = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
    const random = (): number => nextWord() / 2 ** 32;
    /** The straightforward reference: every allowed row's distance, sorted by distance then row, the first k. */
    const reference = (bits: Uint32Array, dims: number, query: Uint32Array, k: number, allowed?: Uint8Array) => {
      const words = signWords(dims);
      const all: { row: number; distance: number }[] = [];
      for (let row = 0; row < bits.length / words; row++) {
        if (allowed && allowed[row] === 0) continue;
        all.push({ row, distance: hammingDistance(bits, row * words, query, 0, words) });
      }
      all.sort((a, b) => a.distance - b.distance || a.row - b.row);
      return all.slice(0, k).map(({ row, distance }, index) => ({ id: row, score: 1 - (2 * distance) / dims, rank: index + 1 }));
    };
    let cases = 0;
    for (const dims of [7, 64, 128, 130]) {
      const words = signWords(dims);
      for (const rows of [0, 1, 50, 3000]) {
        // Sign bits of random floats (padding bits clear), and raw random words (padding bits set too, so distances can
        // exceed dims, as they can for any caller-built matrix); few distinct rows make long runs of ties.
        const matrix = Float32Array.from({ length: rows * dims }, () => random() - 0.5);
        const packed = packSignBits(matrix, dims);
        const raw = Uint32Array.from({ length: rows * words }, nextWord);
        const fewDistinct = Uint32Array.from({ length: rows * words }, (_, i) => packed[(i % (3 * words)) % Math.max(1, packed.length)] ?? 0);
        const masks: (Uint8Array | undefined)[] = [
          undefined,
          Uint8Array.from({ length: rows }, () => (random() < 0.5 ? 1 : 0)),
          Uint8Array.from({ length: rows }, (_, row) => (row % 997 === 3 ? 7 : 0)), // ≤ 4 rows allowed: fewer than k
          new Uint8Array(rows), // none allowed
        ];
        for (const bits of [packed, raw, fewDistinct]) {
          const query = packSignBits(Float32Array.from({ length: dims }, () => random() - 0.5), dims);
          const rawQuery = Uint32Array.from({ length: words }, nextWord);
          for (const k of [0, 1, 10, rows, rows + 5]) {
            for (const allowed of masks) {
              for (const q of [query, rawQuery]) {
                expect(hammingSearch(bits, dims, q, k, allowed)).toEqual(reference(bits, dims, q, k, allowed));
                cases++;
              }
            }
          }
        }
      }
    }
    expect(cases).toBe(4 * 4 * 3 * 5 * 4 * 2);
  });

  it("keeps hammingSearch's argument checks: a whole k ≥ 0 (k beyond the rows returns them all)", () => {
    // Rows + −, − +, + +; query + +: distances 1, 1, 0.
    const bits = packSignBits([1, -1, -1, 1, 1, 1], 2);
    const query = packSignBits([1, 1], 2);
    expect(() => hammingSearch(bits, 2, query, -1)).toThrow(/non-negative integer k, got -1/);
    expect(() => hammingSearch(bits, 2, query, 1.5)).toThrow(/non-negative integer k, got 1.5/);
    expect(() => hammingSearch(bits, 2, query, Number.NaN)).toThrow(/non-negative integer k, got NaN/);
    expect(() => hammingSearch(bits, 2, new Uint32Array(2), 1)).toThrow(/query has 2 words/);
    expect(() => hammingSearch(bits, 0, query, 1)).toThrow(/dims must be a positive integer/);
    expect(hammingSearch(bits, 2, query, Number.POSITIVE_INFINITY).map((h) => [h.id, h.score])).toEqual([
      [2, 1],
      [0, 0],
      [1, 0],
    ]);
    expect(hammingSearch(bits, 2, query, 0)).toEqual([]);
  });
});

describe("int8 vectors", () => {
  it("quantises each row with scale max|x|/127 and rounds to the nearest code", () => {
    // Row 0: max |x| = 1 → scale 1/127; 0.3·127 = 38.1 → 38, −1 → −127, 0.25·127 = 31.75 → 32.
    // Row 1: all zeros → scale 0, codes 0.
    const q = quantizeInt8Rows([0.3, -1, 0.25, 0, 0, 0], 3);
    expect([...q.codes]).toEqual([38, -127, 32, 0, 0, 0]);
    expect(q.scales[0]).toBeCloseTo(1 / 127, 9);
    expect(q.scales[1]).toBe(0);
    expect(q.dims).toBe(3);
  });

  it("computes the dequantised dot product scale · Σ code·q against a float query", () => {
    const q = quantizeInt8Rows([0.3, -1, 0.25], 3);
    // (38·1 + (−127)·0.5 + 32·2) / 127 = (38 − 63.5 + 64) / 127 = 38.5 / 127; the float dot is 0.3 − 0.5 + 0.5 = 0.3.
    expect(int8Dot(q, 0, [1, 0.5, 2])).toBeCloseTo(38.5 / 127, 6);
    expect(Math.abs(int8Dot(q, 0, [1, 0.5, 2]) - 0.3)).toBeLessThan(0.01);
  });

  it("searches int8 rows and rescores candidates, best first", () => {
    const rows = quantizeInt8Rows([1, 0, 0, 1, 0.6, 0.8], 2);
    const query = [0.6, 0.8];
    // Dots: row 0 → 0.6, row 1 → 0.8, row 2 → 0.36 + 0.64 = 1 (up to the int8 step).
    const hits = int8Search(rows, query, 2);
    expect(hits.map((h) => h.id)).toEqual([2, 1]);
    expect(hits[0]!.score).toBeCloseTo(1, 2);
    expect(rescoreInt8([{ id: 0 }, { id: 1 }], rows, query, 5).map((h) => [h.id, h.rank])).toEqual([
      [1, 1],
      [0, 2],
    ]);
  });

  it("two-stage search: Hamming candidates (factor · k), then int8 rescoring picks the true nearest among them", () => {
    // Query (1, 0.1, 1, 1). Rows 0 and 1 have the query's signs (Hamming 0) but row 1 has the larger dot product;
    // row 2 has every sign flipped (Hamming 4).
    const matrix = [
      [1, 1, 0.1, 0.1], // signs + + + +, dot with query = 1 + 0.1 + 0.1 + 0.1 = 1.3
      [1, 0.1, 1, 1], //   signs + + + +, dot = 1 + 0.01 + 1 + 1 = 3.01
      [-1, -1, -1, -1], // signs − − − −, dot = −3.1
    ].flat();
    const query = [1, 0.1, 1, 1];
    const bits = packSignBits(matrix, 4);
    const codes = quantizeInt8Rows(matrix, 4);
    // k = 1, factor 2: the Hamming stage keeps rows 0 and 1 (distance 0), rescoring puts row 1 first.
    const hits = binaryRescoreSearch(bits, codes, query, 1, 2);
    expect(hits.map((h) => h.id)).toEqual([1]);
    expect(hits[0]!.score).toBeCloseTo(3.01, 1);
    // factor 1: only row 0 survives the Hamming stage (tie broken to the lower row), so rescoring cannot recover row 1.
    expect(binaryRescoreSearch(bits, codes, query, 1, 1).map((h) => h.id)).toEqual([0]);
  });

  it("reports stored bytes per vector", () => {
    expect(compressedBytesPerVector(128)).toEqual({ float32: 512, int8: 132, binary: 16 });
    expect(compressedBytesPerVector(64)).toEqual({ float32: 256, int8: 68, binary: 8 });
  });
});

describe("Jacobi eigen-decomposition and PCA", () => {
  it("diagonalises [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/√2 and (1, −1)/√2", () => {
    const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
    expect(values[0]).toBeCloseTo(3, 12);
    expect(values[1]).toBeCloseTo(1, 12);
    const r = Math.SQRT1_2;
    // Signs: the largest-magnitude component is made positive (ties: the first one).
    expect(Math.abs(vectors[0]!)).toBeCloseTo(r, 12);
    expect(vectors[1]! / vectors[0]!).toBeCloseTo(1, 12);
    expect(vectors[3]! / vectors[2]!).toBeCloseTo(-1, 12);
  });

  it("reconstructs a 3 × 3 symmetric matrix from its eigenpairs (A = Σ λ v vᵀ), orthonormal vectors", () => {
    // [[4, 1, 0], [1, 3, 1], [0, 1, 2]]: eigenvalues 3 + √3, 3, 3 − √3 (characteristic polynomial (3−λ)(λ² − 6λ + 6)).
    const a = [4, 1, 0, 1, 3, 1, 0, 1, 2];
    const { values, vectors } = symmetricEigen(a, 3);
    expect([...values].map((v) => Number(v.toFixed(10)))).toEqual([3 + Math.sqrt(3), 3, 3 - Math.sqrt(3)].map((v) => Number(v.toFixed(10))));
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let sum = 0;
        let dot = 0;
        for (let k = 0; k < 3; k++) {
          sum += values[k]! * vectors[k * 3 + i]! * vectors[k * 3 + j]!;
          dot += vectors[i * 3 + k]! * vectors[j * 3 + k]!;
        }
        expect(sum).toBeCloseTo(a[i * 3 + j]!, 10);
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
  });

  it("finds the direction of largest variance of points on the line y = x", () => {
    // Points (1,1), (−1,−1), (2,2), (−2,−2): mean 0, covariance (population) [[2.5, 2.5], [2.5, 2.5]] →
    // eigenvalues 5 and 0, first component (1, 1)/√2; all variance explained by it.
    const pca = fitPca([1, 1, -1, -1, 2, 2, -2, -2], 2, 1);
    expect([...pca.mean]).toEqual([0, 0]);
    expect(pca.variances[0]).toBeCloseTo(5, 12);
    expect(pca.totalVariance).toBeCloseTo(5, 12);
    expect(explainedVariance(pca)).toBeCloseTo(1, 12);
    expect(pca.components[0]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(pca.components[1]).toBeCloseTo(Math.SQRT1_2, 12);
    // (2, 2) centred = (2, 2), projected = 2√2; normalised → 1. (−1, −1) → −1. Unnormalised on request.
    expect([...pcaProjectRows(pca, [2, 2, -1, -1])].map((v) => Number(v.toFixed(6)))).toEqual([1, -1]);
    expect(pcaProject(pca, [2, 2], { normalize: false })[0]).toBeCloseTo(2 * Math.SQRT2, 6);
  });

  it("centres with the mean and orders components by variance", () => {
    // Points (2,0)+(1,1), (−2,0)+(1,1), (0,1)+(1,1), (0,−1)+(1,1): mean (1,1), variances x: 8/4 = 2, y: 2/4 = 0.5.
    const pca = fitPca([3, 1, -1, 1, 1, 2, 1, 0], 2, 2);
    expect([...pca.mean]).toEqual([1, 1]);
    expect([...pca.variances].map((v) => Number(v.toFixed(12)))).toEqual([2, 0.5]);
    expect(Math.abs(pca.components[0]!)).toBeCloseTo(1, 12); // x axis first
    expect(Math.abs(pca.components[3]!)).toBeCloseTo(1, 12); // then y
    expect(explainedVariance(pca)).toBeCloseTo(1, 12);
    expect(() => fitPca([1, 2], 2, 3)).toThrow(RangeError);
  });
});

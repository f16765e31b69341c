/**
 * queryFlops against a hand-computed small case (H 4, 2 heads, F 8, T 3, outputDim 6), each term of the module doc's
 * table written out with the case's own values, plus how the count scales with depth and length.
 */
import { describe, expect, it } from "vitest";
import { queryFlops, type TaesrArchitecture } from "../../src/model/index.js";

const small: TaesrArchitecture = {
  vocabSize: 32,
  hidden: 4,
  heads: 2,
  ffn: 8,
  maxLength: 16,
  outputDim: 6,
  matryoshkaDims: [6],
  depths: { easy: 1, medium: 2, hard: 3 },
};

describe("queryFlops", () => {
  it("counts the hand-computed small case (H 4, heads 2, F 8, T 3, D 6)", () => {
    const T = 3;
    const H = 4;
    const TH = T * H; // 12
    const perStep =
      TH + //                          u = h + x                                       12
      3 * 7 * TH + //                  LN1, LN2, LNout                                  252
      4 * (2 * T * H * H + TH) + //    Q, K, V, O projections with biases               4 · (96 + 12) = 432
      2 * (2 * T * T * H) + //         scores QKᵀ and weighted sum P·V                  2 · 72 = 144
      7 * 2 * T * T + //               scale, mask, softmax on 2 heads × 3 × 3 scores   126
      TH + //                          v = u + a                                        12
      (2 * T * H * 8 + T * 8) + //     W1 + b1                                          192 + 24
      9 * T * 8 + //                   gelu_tanh                                        216
      (2 * T * 8 * H + TH) + //        W2 + b2                                          192 + 12
      2 * TH + //                      h = h + a + m                                    24
      (2 * TH + H) + //                masked mean                                      28
      (2 * H * 6 + 6); //              output projection                                54
    expect(perStep).toBe(1720);
    expect(queryFlops(small, 3, 1)).toEqual({ embed: 12, perStep: 1720, total: 12 + 1720 });
    expect(queryFlops(small, 3, 3)).toEqual({ embed: 12, perStep: 1720, total: 12 + 3 * 1720 });
  });

  it("grows linearly with depth and super-linearly with length (attention's T² terms)", () => {
    const one = queryFlops(small, 8, 1);
    expect(queryFlops(small, 8, 6).total - one.total).toBe(5 * one.perStep);
    expect(queryFlops(small, 16, 1).perStep).toBeGreaterThan(2 * queryFlops(small, 8, 1).perStep);
  });

  it("counts the edge-small architecture's matrix products as the bulk of a step", () => {
    const edge: TaesrArchitecture = { ...small, vocabSize: 8192, hidden: 128, heads: 4, ffn: 256, maxLength: 128, outputDim: 384, matryoshkaDims: [64, 128, 256, 384] };
    const T = 10;
    const matmuls = 4 * 2 * T * 128 * 128 + 2 * 2 * T * T * 128 + 2 * 2 * T * 128 * 256 + 2 * 128 * 384;
    const { perStep } = queryFlops(edge, T, 1);
    expect(perStep).toBeGreaterThan(matmuls);
    expect(matmuls / perStep).toBeGreaterThan(0.9);
  });

  it("rejects impossible inputs, naming the value", () => {
    expect(() => queryFlops(small, 0, 1)).toThrow(/tokens must be an integer from 1 to maxLength 16, got 0/);
    expect(() => queryFlops(small, 17, 1)).toThrow(/got 17/);
    expect(() => queryFlops(small, 3, 0)).toThrow(/depth must be a positive integer, got 0/);
    expect(() => queryFlops(small, 3, 1.5)).toThrow(RangeError);
    expect(() => queryFlops({ ...small, heads: 3 }, 3, 1)).toThrow(/hidden 4 is not divisible by architecture\.heads 3/);
    expect(() => queryFlops({ ...small, ffn: 0 }, 3, 1)).toThrow(/architecture\.ffn must be a positive integer, got 0/);
  });
});

/**
 * The served rerank stage (src/retrieval/late.ts fuseLateInteraction, prefixMaxSims) on hand-made cases: the fused
 * score is w_first · s/M + w_late · (MaxSim + |q|)/(M_late + |q|) over the top k, the tail keeps first-stage order below
 * every prefix score, a missing token matrix counts as no late evidence, and the reranked prefix does not depend on how
 * far the first-stage ranking was read (so every page of a search sees the same rerank).
 */
import { describe, expect, it } from "vitest";
import {
  fuseLateInteraction,
  prefixMaxSims,
  quantizeTokenMatrix,
  type FusedHit,
  type TokenMatrix,
} from "../../src/retrieval/index.js";

type Hit = FusedHit<string, "dense" | "lexical">;

/** A first-stage ranking with these fused scores, ids d1, d2, … in order. */
function firstStage(...scores: number[]): Hit[] {
  return scores.map((score, i) => ({ id: `d${i + 1}`, score, ranks: { lexical: i + 1 }, scores: { lexical: 10 - i } }));
}

const ids = (hits: readonly { id: string }[]) => hits.map((hit) => hit.id);

describe("fuseLateInteraction", () => {
  it("normalises both scores against their theoretical minimum and the prefix maximum, then mixes them", () => {
    // |q| = 2 → MaxSim ∈ [−2, 2]; prefix max MaxSim 1.5 → late(d) = (x + 2) / 3.5. First stage max 0.8 → first = s / 0.8.
    const ranking = firstStage(0.8, 0.6, 0.4);
    const late = [0.5, 1.5, -2];
    const fused = fuseLateInteraction(ranking, late, 2, { k: 3, weights: { first: 0.5, late: 0.5 } });
    const expected = {
      d1: 0.5 * (0.8 / 0.8) + 0.5 * ((0.5 + 2) / 3.5), // 0.857
      d2: 0.5 * (0.6 / 0.8) + 0.5 * ((1.5 + 2) / 3.5), // 0.875
      d3: 0.5 * (0.4 / 0.8) + 0.5 * 0, // 0.25
    };
    expect(ids(fused)).toEqual(["d2", "d1", "d3"]);
    for (const hit of fused) expect(hit.score).toBeCloseTo(expected[hit.id as keyof typeof expected], 12);
    // ranks.late is the rank by MaxSim alone; scores.late is MaxSim; the first stage's ranks and scores are kept.
    expect(fused.map((hit) => [hit.id, hit.ranks.late, hit.scores.late, hit.ranks.lexical])).toEqual([
      ["d2", 1, 1.5, 2],
      ["d1", 2, 0.5, 1],
      ["d3", 3, -2, 3],
    ]);
  });

  it("reproduces the first stage at late weight 0 and orders by MaxSim alone at first weight 0; only the ratio matters", () => {
    const ranking = firstStage(0.9, 0.7, 0.5, 0.3);
    const late = [1, 3, 2, 4];
    expect(ids(fuseLateInteraction(ranking, late, 4, { k: 4, weights: { first: 1, late: 0 } }))).toEqual(["d1", "d2", "d3", "d4"]);
    expect(ids(fuseLateInteraction(ranking, late, 4, { k: 4, weights: { first: 0, late: 1 } }))).toEqual(["d4", "d2", "d3", "d1"]);
    const a = fuseLateInteraction(ranking, late, 4, { k: 4, weights: { first: 0.3, late: 0.7 } });
    const b = fuseLateInteraction(ranking, late, 4, { k: 4, weights: { first: 3, late: 7 } });
    expect(ids(a)).toEqual(ids(b));
  });

  it("rescores only the top k: the tail keeps first-stage order, scored w_first · s/M, never above a prefix document", () => {
    const ranking = firstStage(1, 0.9, 0.8, 0.7, 0.6);
    const late = [0, 2]; // only the prefix needs scores
    const fused = fuseLateInteraction(ranking, late, 2, { k: 2, weights: { first: 0.5, late: 0.5 } });
    expect(ids(fused)).toEqual(["d2", "d1", "d3", "d4", "d5"]);
    expect(fused.slice(2).map((hit) => hit.score)).toEqual([0.5 * 0.8, 0.5 * 0.7, 0.5 * 0.6]);
    expect(fused.slice(2).every((hit) => hit.ranks.late === undefined && hit.scores.late === undefined)).toBe(true);
    for (let i = 1; i < fused.length; i++) expect(fused[i]!.score).toBeLessThanOrEqual(fused[i - 1]!.score);
    // k beyond the ranking reranks all of it.
    expect(ids(fuseLateInteraction(firstStage(1, 0.5), [-1, 2], 2, { k: 100, weights: { first: 0.5, late: 0.5 } }))).toEqual(["d2", "d1"]);
  });

  it("gives a document without a token matrix no late evidence (late 0) and no late rank", () => {
    const ranking = firstStage(1, 0.95, 0.9);
    const fused = fuseLateInteraction(ranking, [undefined, 1, 1], 1, { k: 3, weights: { first: 0.5, late: 0.5 } });
    expect(ids(fused)).toEqual(["d2", "d3", "d1"]);
    expect(fused.find((hit) => hit.id === "d1")).toMatchObject({ score: 0.5, ranks: { lexical: 1 } });
    expect(fused.find((hit) => hit.id === "d1")!.ranks.late).toBeUndefined();
    expect(fused.filter((hit) => hit.id !== "d1").map((hit) => hit.ranks.late)).toEqual([1, 2]);
  });

  it("breaks ties on the fused score by first-stage position", () => {
    const fused = fuseLateInteraction(firstStage(0.5, 0.5, 0.5), [1, 1, 1], 1, { k: 3, weights: { first: 1, late: 1 } });
    expect(ids(fused)).toEqual(["d1", "d2", "d3"]);
    expect(fused.map((hit) => hit.ranks.late)).toEqual([1, 2, 3]);
  });

  it("reranks the same prefix however far the first stage was read (pages tile one ranking)", () => {
    const scores = Array.from({ length: 40 }, (_, i) => 1 - i / 50);
    const late = Array.from({ length: 20 }, (_, i) => Math.sin(i * 7));
    const options = { k: 20, weights: { first: 0.4, late: 0.6 } };
    const full = fuseLateInteraction(firstStage(...scores), late, 3, options);
    // A page at offset 0 reads max(topK + 1, k) = 20 first-stage hits; a page at offset 30 reads 41 (here: all 40).
    for (const readTo of [20, 21, 31, 40]) {
      const partial = fuseLateInteraction(firstStage(...scores).slice(0, readTo), late, 3, options);
      expect(partial).toEqual(full.slice(0, readTo));
    }
    const pages = [0, 10, 20, 30].flatMap((offset) => ids(fuseLateInteraction(firstStage(...scores).slice(0, Math.max(offset + 11, 20)), late, 3, options).slice(offset, offset + 10)));
    expect(pages).toEqual(ids(full));
    expect(new Set(pages).size).toBe(40);
  });

  it("handles an empty ranking and a flat or empty late list", () => {
    expect(fuseLateInteraction([], [], 2, { k: 10, weights: { first: 1, late: 1 } })).toEqual([]);
    // A query with no tokens scores every MaxSim 0 against a range of 0: late contributes nothing.
    expect(ids(fuseLateInteraction(firstStage(1, 0.5), [0, 0], 0, { k: 2, weights: { first: 1, late: 1 } }))).toEqual(["d1", "d2"]);
  });

  it("rejects a bad k, bad weights and too few MaxSim scores", () => {
    const ranking = firstStage(1, 0.5);
    expect(() => fuseLateInteraction(ranking, [1, 1], 1, { k: 0, weights: { first: 1, late: 1 } })).toThrow(/k must be a positive integer/);
    expect(() => fuseLateInteraction(ranking, [1, 1], 1, { k: 2, weights: { first: 0, late: 0 } })).toThrow(/must not both be 0/);
    expect(() => fuseLateInteraction(ranking, [1, 1], 1, { k: 2, weights: { first: -1, late: 1 } })).toThrow(/"first" must be finite and ≥ 0/);
    expect(() => fuseLateInteraction(ranking, [1], 1, { k: 2, weights: { first: 1, late: 1 } })).toThrow(/1 MaxSim scores for a prefix of 2/);
  });
});

describe("prefixMaxSims", () => {
  const query: TokenMatrix = { count: 2, dims: 2, data: Float32Array.of(1, 0, 0, 1) };

  it("scores the first k documents by MaxSim (int8 matrices too), leaving missing or other-width matrices undefined", () => {
    const stored = new Map<string, TokenMatrix | ReturnType<typeof quantizeTokenMatrix>>([
      ["a", { count: 1, dims: 2, data: Float32Array.of(1, 0) }],
      ["b", quantizeTokenMatrix({ count: 2, dims: 2, data: Float32Array.of(0.6, 0.8, 0, 1) })],
      ["c", { count: 1, dims: 3, data: Float32Array.of(1, 0, 0) }],
    ]);
    const ranking = ["a", "b", "c", "missing", "a"].map((id) => ({ id }));
    const sims = prefixMaxSims(ranking, query, (id) => stored.get(id), 4);
    expect(sims).toHaveLength(4);
    expect(sims[0]).toBeCloseTo(1 + 0, 12);
    expect(sims[1]).toBeCloseTo(0.6 + 1, 2);
    expect(sims.slice(2)).toEqual([undefined, undefined]);
  });
});

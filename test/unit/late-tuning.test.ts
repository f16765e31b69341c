/**
 * Tuning the late rerank (bench/eval/late-tuning.ts) and where it is stored (manifest `retrieval.late`): the choice
 * rule on hand-made grids, and the manifest's validation of the tuned record.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/index.js";
import { chooseLateFusion, manifestTextWithLateFusion, type LateTuningPoint } from "../../bench/eval/late-tuning.js";

const point = (k: number, late: number, perQuery: number[]): LateTuningPoint => ({
  k,
  weights: { first: Math.round((1 - late) * 100) / 100, late },
  "ndcg@10": perQuery.reduce((a, b) => a + b, 0) / perQuery.length,
  perQuery,
});

describe("chooseLateFusion", () => {
  it("ships late 0 when the best point beats it by less than a paired standard error", () => {
    const off = point(10, 0, [0.5, 0.6, 0.7, 0.8]);
    const noisy = point(20, 0.8, [0.9, 0.3, 0.9, 0.6]); // higher mean, but the per-query differences swing widely
    const { chosen, best } = chooseLateFusion([off, noisy], off["ndcg@10"]);
    expect(best).toBe(noisy);
    expect(chosen).toBe(off);
  });

  it("ships a late weight that wins on every query, and among ties the smaller share, then the smaller k", () => {
    const off = point(10, 0, [0.5, 0.6, 0.7, 0.8]);
    const gain = point(50, 0.4, [0.6, 0.7, 0.8, 0.9]);
    const sameGainBiggerK = point(100, 0.4, [0.6, 0.7, 0.8, 0.9]);
    const sameGainMoreLate = point(20, 0.6, [0.6, 0.7, 0.8, 0.9]);
    expect(chooseLateFusion([off, sameGainMoreLate, sameGainBiggerK, gain], off["ndcg@10"]).chosen).toBe(gain);
  });
});

describe("manifest retrieval.late", async () => {
  const dir = "model-artifacts/taesr-edge-scifact@0.3.0";
  const text = await readFile(`${dir}/manifest.json`, "utf8");
  const late = {
    k: 20,
    weights: { first: 0.6, late: 0.4 },
    tunedOn: {
      dataset: "scifact",
      split: "train",
      queries: 22,
      ndcg10: 0.7,
      firstStageOnly: 0.69,
      lateOnly: 0.17,
      fusion: { method: "convex" as const, weights: { lexical: 0.4, dense: 0.6 } },
      date: "2026-11-26",
    },
  };

  it("is written beside the tuned fusion, changing nothing else, and validates", () => {
    const edited = manifestTextWithLateFusion(text, late);
    const parsed = parseManifest(edited);
    expect(parsed.retrieval?.late).toEqual(late);
    expect(parsed.retrieval?.fusion).toEqual(parseManifest(text).retrieval?.fusion);
    expect(parsed.files).toEqual(parseManifest(text).files);
  });

  it("refuses a test-split tuning, a k above 100, zero weights, and a late fusion without a late head", () => {
    const raw = JSON.parse(text) as Record<string, unknown> & { retrieval: Record<string, unknown>; architecture: Record<string, unknown> };
    const withLate = (value: unknown) => ({ ...raw, retrieval: { ...raw.retrieval, late: value } });
    expect(() => parseManifest(withLate({ ...late, tunedOn: { ...late.tunedOn, split: "test" } }))).toThrow(/must not be tuned on the test split/);
    expect(() => parseManifest(withLate({ ...late, k: 101 }))).toThrow(/retrieval\.late\.k/);
    expect(() => parseManifest(withLate({ ...late, weights: { first: 0, late: 0 } }))).toThrow(/at least one late fusion weight/);
    const { lateHead: _, ...noHead } = raw.architecture;
    const variants = Object.fromEntries(
      Object.entries(raw.variants as Record<string, Record<string, string>>).map(([name, { late: _late, ...graphs }]) => [name, graphs]),
    );
    expect(() => parseManifest({ ...withLate(late), architecture: noHead, variants })).toThrow(/a tuned late fusion without architecture\.lateHead/);
  });
});

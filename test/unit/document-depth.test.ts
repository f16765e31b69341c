/**
 * Manifest `retrieval.documentDepth` (bench/document-depth.ts writes it; the indexer embeds documents at it): validated
 * like the tuned fusion — one of the architecture's depths, never chosen on the test split — or recorded by the export of
 * a run that trained documents at that one depth.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/index.js";

describe("manifest retrieval.documentDepth", async () => {
  const text = await readFile("model-artifacts/taesr-edge-scifact@0.3.0/manifest.json", "utf8");
  const raw = JSON.parse(text) as Record<string, unknown> & { retrieval?: Record<string, unknown> };
  const documentDepth = {
    depth: 1,
    tunedOn: {
      dataset: "scifact",
      split: "train",
      queries: 809,
      ndcg10: 0.68,
      ndcg10Auto: 0.67,
      standardError: 0.004,
      meanStepsAuto: 5.3,
      date: "2026-11-26",
      dims: 128,
      variant: "int8",
    },
  };
  const withDepth = (value: unknown) => ({ ...raw, retrieval: { ...raw.retrieval, documentDepth: value } });

  it("validates beside the other retrieval defaults", () => {
    const parsed = parseManifest(withDepth(documentDepth));
    expect(parsed.retrieval?.documentDepth).toEqual(documentDepth);
    expect(parsed.retrieval?.fusion).toEqual(parseManifest(text).retrieval?.fusion);
  });

  it("refuses a depth the architecture does not have, a test-split choice and unknown fields", () => {
    expect(() => parseManifest(withDepth({ ...documentDepth, depth: 2 }))).toThrow(/must be one of the architecture's depths \(1, 3, 6\)[\s\S]*retrieval\.documentDepth\.depth/);
    expect(() => parseManifest(withDepth({ ...documentDepth, tunedOn: { ...documentDepth.tunedOn, split: "test" } }))).toThrow(/must not be chosen on the test split/);
    expect(() => parseManifest(withDepth({ ...documentDepth, extra: true }))).toThrow(/documentDepth/);
  });

  it("takes the depth a run trained its documents at (training.documentSteps) in place of a tuned choice, and nothing less", () => {
    const trained = { depth: 1, trainedWith: { documentSteps: [1] } };
    expect(parseManifest(withDepth(trained)).retrieval?.documentDepth).toEqual(trained);
    expect(() => parseManifest(withDepth({ depth: 1 }))).toThrow(/needs tunedOn \(a measured choice\) or trainedWith/);
    expect(() => parseManifest(withDepth({ depth: 3, trainedWith: { documentSteps: [1] } }))).toThrow(/trainedWith\.documentSteps must be \[depth\]/);
    expect(() => parseManifest(withDepth({ depth: 1, trainedWith: { documentSteps: [1, 3] } }))).toThrow(/documentSteps/);
  });
});

/**
 * Learned sparse retrieval at run time: TaesrEncoder's sparse terms from an artifact with the SPLADE-style head (the
 * real exporter, onnxruntime-node) against TAESRModel.sparse, the option's validation, and the in-memory sparse
 * inverted index (src/retrieval/sparse.ts) on a toy corpus against hand-computed dot products.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TaesrEncoder, weightNames } from "../../src/model/index.js";
import { SparseIndex } from "../../src/retrieval/index.js";
import { initWeights, mulberry32 } from "../../training/src/model/params.js";
import { fixtureArchitecture, writeFixtureArtifact } from "../support/fixture-artifact.js";
import { readArtifactFiles, useFixtureEncoder } from "../support/fixture-encoder.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

const FIXTURE = { name: "taesr-sparse", hidden: 32, vocabSize: 256, sparseHead: true };
const ARCH = fixtureArchitecture(FIXTURE);

describe("TaesrEncoder sparse terms", () => {
  const fixture = useFixtureEncoder(() => {
    const weights = initWeights(ARCH, 5);
    // A livelier token table than the init's, so a fair share of terms fire and the comparison has content.
    const rand = mulberry32(6);
    for (const name of weightNames(ARCH)) if (name === "embed.token") weights[name] = weights[name].map(() => (rand() * 2 - 1) * 0.3);
    return { ...FIXTURE, weights };
  });

  it("returns {tokenId: weight} per text, equal to TAESRModel.sparse on the same final state", async () => {
    const { tokenizer, encoder, model } = fixture;
    const texts = ["how fast is the edge model", "vector search", ""];
    const r = await encoder.embed(texts, { depth: 3, earlyExit: false, sparse: { threshold: 0, maxTerms: 10_000 } });
    expect(encoder.hasSparse).toBe(true);
    expect(r.sparse).toHaveLength(3);
    for (const [i, text] of texts.entries()) {
      const ids = tokenizer.encode(text, { maxLength: ARCH.maxLength });
      const row = ids.length > 0 ? ids : [tokenizer.unkId];
      const out = model.forward({ inputIds: [row] }, { depth: 3, earlyExit: false });
      const expected = model.sparse(out.lastHiddenState[0]!);
      const got = r.sparse![i]!;
      const nonZero = [...expected.keys()].filter((v) => expected[v]! > 0);
      expect(Object.keys(got).map(Number).sort((a, b) => a - b)).toEqual(nonZero);
      for (const v of nonZero) expect(Math.abs(got[v]! - expected[v]!)).toBeLessThan(1e-4);
      expect(nonZero.length).toBeGreaterThan(0);
      expect(nonZero.length).toBeLessThan(ARCH.vocabSize);
    }
  });

  it("keeps the largest maxTerms weights above the threshold, and validates the option", async () => {
    const { encoder } = fixture;
    const all = (await encoder.embed(["vector search"], { depth: 1, sparse: true })).sparse![0]!;
    const weights = Object.values(all).sort((a, b) => b - a);
    const threshold = weights[Math.floor(weights.length / 2)]!;
    const cut = (await encoder.embed(["vector search"], { depth: 1, sparse: { threshold, maxTerms: 3 } })).sparse![0]!;
    expect(Object.values(cut).sort((a, b) => b - a)).toEqual(weights.slice(0, 3));
    expect(Object.values(cut).every((w) => w > threshold)).toBe(true);
    await expect(encoder.embed(["x"], { sparse: { maxTerms: 0 } })).rejects.toThrow(/maxTerms/);
    await expect(encoder.embed(["x"], { sparse: { threshold: -1 } })).rejects.toThrow(/threshold/);
    // Without the option nothing sparse is computed or returned.
    expect((await encoder.embed(["x"])).sparse).toBeUndefined();
  });

  it("an artifact without the head refuses the option; without its sparse graph the encoder still embeds", async () => {
    const { manifest, files, tokenizer, encoder } = fixture;
    const plainDir = await mkdtemp(path.join(tmpdir(), "taesr-plain-"));
    try {
      const plain = await writeFixtureArtifact({ outDir: plainDir, hidden: 32, vocabSize: 256 });
      expect(plain.manifest.variants.fp32.sparse).toBeUndefined();
      const plainFiles = await readArtifactFiles(plain.dir, plain.manifest);
      const e = await TaesrEncoder.create({ ort: ortNode, manifest: plain.manifest, files: plainFiles, variant: "int8", tokenizer });
      await expect(e.embed(["x"], { sparse: true })).rejects.toThrow(/has no sparse head/);
      await e.release();
    } finally {
      await rm(plainDir, { recursive: true, force: true });
    }
    const { ["fp32/sparse.onnx"]: _, ...withoutSparse } = files;
    const e = await TaesrEncoder.create({ ort: ortNode, manifest, files: withoutSparse, variant: "fp32", tokenizer });
    expect(e.hasSparse).toBe(false);
    expect((await e.embed(["vector search"])).embeddings).toHaveLength(1);
    await expect(e.embed(["x"], { sparse: true })).rejects.toThrow(/fp32\/sparse\.onnx/);
    await e.release();
  });
});

describe("SparseIndex", () => {
  const docs: Record<string, Record<number, number>> = {
    a: { 1: 1.0, 2: 0.5 },
    b: { 2: 2.0, 3: 1.0 },
    c: { 4: 3.0 },
    d: { 1: 0.5, 3: 0.5, 9: 0 }, // a zero weight is not indexed
  };

  function build(): SparseIndex<string> {
    const index = new SparseIndex<string>();
    for (const [id, v] of Object.entries(docs)) index.add(id, v);
    return index;
  }

  it("scores by the dot product over shared terms, best first, documents without a shared term left out", () => {
    const index = build();
    expect(index.size).toBe(4);
    expect(index.postingCount).toBe(7);
    const hits = index.search({ 1: 2, 2: 1, 3: 1 }, 10);
    // a: 2·1 + 1·0.5 = 2.5; b: 1·2 + 1·1 = 3; d: 2·0.5 + 1·0.5 = 1.5; c shares nothing
    expect(hits).toEqual([
      { id: "b", score: 3, rank: 1 },
      { id: "a", score: 2.5, rank: 2 },
      { id: "d", score: 1.5, rank: 3 },
    ]);
    expect(index.search({ 1: 2, 2: 1, 3: 1 }, 2).map((h) => h.id)).toEqual(["b", "a"]);
    expect(index.search({ 7: 1 }, 5)).toEqual([]);
    expect(index.search(new Map([[4, 1]]), 5)).toEqual([{ id: "c", score: 3, rank: 1 }]);
  });

  it("breaks ties towards the earlier document and rejects bad input", () => {
    const index = new SparseIndex<number>();
    index.add(10, { 5: 1 });
    index.add(11, { 5: 1 });
    expect(index.search({ 5: 1 }, 2).map((h) => h.id)).toEqual([10, 11]);
    expect(() => index.add(10, { 5: 1 })).toThrow(/already/);
    expect(() => index.add(12, { 5: Number.NaN })).toThrow(/non-finite/);
    expect(() => index.search({ 5: 1 }, -1)).toThrow(/non-negative/);
    expect(() => index.add(13, { [-1]: 1 } as Record<number, number>)).toThrow(/non-negative integers/);
  });
});

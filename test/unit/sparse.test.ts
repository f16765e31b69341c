/**
 * Learned sparse retrieval at run time: TaesrEncoder's sparse terms from an artifact with the SPLADE-style head (the
 * real exporter, onnxruntime-node) against TAESRModel.sparse, the option's validation, and the in-memory sparse
 * inverted index (src/retrieval/sparse.ts) on a toy corpus against hand-computed dot products; the packed search the
 * index shards run against that index, the sparse list in the hybrid policy (hybrid.ts), and when the edge reads the
 * sparse list (workers/edge/src/sparse-plan.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TaesrEncoder, weightNames } from "../../src/model/index.js";
import {
  SparseIndex,
  combineRankings,
  convexCombinationFusion,
  listsFor,
  packedSparseSearch,
  reciprocalRankFusion,
  sparsePairs,
  sparseWeight,
  type PackedSparsePostings,
  type RankedHit,
} from "../../src/retrieval/index.js";
import { ApiError } from "../../workers/edge/src/errors.js";
import { planSparse } from "../../workers/edge/src/sparse-plan.js";
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

describe("packedSparseSearch", () => {
  /** A random corpus over a small vocabulary: some terms shared widely, some rare, some documents with no terms. */
  function corpus(seed: number, docs: number, vocab: number): Record<number, number>[] {
    const rand = mulberry32(seed);
    return Array.from({ length: docs }, () => {
      const terms: Record<number, number> = {};
      const count = Math.floor(rand() * 8);
      for (let i = 0; i < count; i++) terms[Math.floor(rand() * rand() * vocab)] = Math.fround(rand() * 2 + 1e-3);
      return terms;
    });
  }

  function pack(docs: readonly Record<number, number>[]): Map<number, PackedSparsePostings> {
    const lists = new Map<number, { docs: number[]; weights: number[] }>();
    docs.forEach((terms, row) => {
      for (const [term, weight] of sparsePairs(terms)) {
        let list = lists.get(term);
        if (!list) lists.set(term, (list = { docs: [], weights: [] }));
        list.docs.push(row);
        list.weights.push(weight);
      }
    });
    return new Map([...lists].map(([term, list]) => [term, { docs: Uint32Array.from(list.docs), weights: Float64Array.from(list.weights) }]));
  }

  it("ranks exactly as SparseIndex over the same terms, with and without a filter mask", () => {
    const docs = corpus(3, 400, 60);
    const postings = pack(docs);
    const rand = mulberry32(4);
    const mask = Uint8Array.from(docs, () => (rand() < 0.5 ? 1 : 0));
    const all = new SparseIndex<number>();
    const masked = new SparseIndex<number>();
    docs.forEach((terms, row) => {
      all.add(row, terms);
      if (mask[row]) masked.add(row, terms);
    });
    for (const query of corpus(5, 20, 60)) {
      const pairs = sparsePairs(query);
      for (const k of [1, 10, 500]) {
        expect(packedSparseSearch(pairs, postings, docs.length, k)).toEqual(all.search(query, k));
        expect(packedSparseSearch(pairs, postings, docs.length, k, mask)).toEqual(masked.search(query, k));
      }
    }
    // A query sharing no term with any document finds nothing.
    expect(packedSparseSearch([[59_999, 1]], postings, docs.length, 10)).toEqual([]);
  });

  it("refuses bad query weights, a negative k and a mask of another size", () => {
    const postings = pack([{ 1: 1 }]);
    expect(() => packedSparseSearch([[1, 0]], postings, 1, 5)).toThrow(/finite and > 0/);
    expect(() => packedSparseSearch([[1, Number.NaN]], postings, 1, 5)).toThrow(/finite and > 0/);
    expect(() => packedSparseSearch([[1, 1]], postings, 1, -1)).toThrow(/non-negative/);
    expect(() => packedSparseSearch([[1, 1]], postings, 1, 5, new Uint8Array(2))).toThrow(/mask covers 2 rows/);
  });

  it("sparsePairs: positive entries only, ascending by term, validated", () => {
    expect(sparsePairs({ 9: 0.5, 2: 1, 4: 0 })).toEqual([
      [2, 1],
      [9, 0.5],
    ]);
    expect(sparsePairs(new Map([[3, 2]]))).toEqual([[3, 2]]);
    expect(() => sparsePairs({ 1: Number.POSITIVE_INFINITY }, "query")).toThrow(/query: term 1 has a non-finite weight/);
  });
});

describe("the sparse list in hybrid ranking", () => {
  const hits = (...entries: [string, number][]): RankedHit[] => entries.map(([id, score], i) => ({ id, score, rank: i + 1 }));
  const dense = hits(["a", 0.9], ["b", 0.5], ["c", 0.1]);
  const lexical = hits(["b", 7], ["d", 2]);
  const sparse = hits(["c", 4], ["e", 1]);

  it("listsFor: sparse mode reads only the sparse list; hybrid adds it only when asked", () => {
    expect(listsFor("sparse")).toEqual({ dense: false, lexical: false, sparse: true });
    expect(listsFor("hybrid", { sparse: true })).toEqual({ dense: true, lexical: true, sparse: true });
    expect(listsFor("hybrid", { sparse: false })).toStrictEqual({ dense: true, lexical: true });
    expect(listsFor("dense", { sparse: true })).toStrictEqual({ dense: true, lexical: false });
    expect(listsFor("lexical", { sparse: true })).toStrictEqual({ dense: false, lexical: true });
  });

  it("sparse mode keeps the list's own scores and ranks", () => {
    expect(combineRankings("sparse", { sparse }, { topK: 5 })).toEqual([
      { id: "c", score: 4, ranks: { sparse: 1 }, scores: { sparse: 4 } },
      { id: "e", score: 1, ranks: { sparse: 2 }, scores: { sparse: 1 } },
    ]);
  });

  it("hybrid without a sparse list fuses exactly as the two-list fusion", () => {
    expect(combineRankings("hybrid", { dense, lexical }, { topK: 10, candidates: 50 })).toEqual(
      convexCombinationFusion({ dense, lexical }, { weights: { dense: 0.3, lexical: 0.7 }, depth: 50 }),
    );
  });

  it("hybrid with one fuses three lists, sparse weighted like the lexical default (min score 0) unless overridden", () => {
    const tuned = { method: "convex" as const, weights: { dense: 0.6, lexical: 0.4 } };
    expect(combineRankings("hybrid", { dense, lexical, sparse }, { topK: 10, candidates: 50, defaults: tuned })).toEqual(
      convexCombinationFusion({ dense, lexical, sparse }, { weights: { dense: 0.6, lexical: 0.4, sparse: 0.4 }, minScores: { dense: -1, lexical: 0, sparse: 0 }, depth: 50 }),
    );
    const overridden = combineRankings("hybrid", { dense, lexical, sparse }, { topK: 10, fusion: "rrf", weights: { sparse: 5, lexical: 0 } });
    expect(overridden).toEqual(reciprocalRankFusion({ dense, lexical, sparse }, { weights: { dense: 1, lexical: 0, sparse: 5 } }));
    expect(overridden[0]!.id).toBe("c");
    // Sparse alone weighted: its order leads, the other lists' hits follow as candidates.
    const sparseOnly = combineRankings("hybrid", { dense, lexical, sparse }, { topK: 10, candidates: 50, weights: { dense: 0, lexical: 0, sparse: 1 } });
    expect(sparseOnly.slice(0, 2).map((h) => h.id)).toEqual(["c", "e"]);
    expect(sparseOnly.map((h) => h.ranks.sparse)).toEqual([1, 2, undefined, undefined, undefined]);
  });

  it("sparseWeight: the caller's, else the chosen fusion's default lexical weight, whatever the lexical override", () => {
    expect(sparseWeight("convex")).toBe(0.7);
    expect(sparseWeight("rrf")).toBe(3);
    expect(sparseWeight("convex", { lexical: 0 })).toBe(0.7);
    expect(sparseWeight("convex", { sparse: 0 })).toBe(0);
    const tuned = { method: "convex" as const, weights: { dense: 0, lexical: 1 } };
    expect(sparseWeight("convex", undefined, tuned)).toBe(1);
    expect(sparseWeight("rrf", undefined, tuned)).toBe(3);
  });

  it("sparseWeight: a fusion tuned with the sparse list gives it its tuned weight, 0 included; the caller's still wins", () => {
    const tuned = { method: "convex" as const, weights: { dense: 0.3, lexical: 0.5, sparse: 0.2 } };
    expect(sparseWeight("convex", undefined, tuned)).toBe(0.2);
    expect(sparseWeight("convex", { sparse: 0.6 }, tuned)).toBe(0.6);
    expect(sparseWeight("rrf", undefined, tuned)).toBe(3); // tuned weights of the other method do not apply
    expect(sparseWeight("convex", undefined, { method: "convex", weights: { dense: 0.4, lexical: 0.6, sparse: 0 } })).toBe(0);
  });

  it("combineRankings fuses the three lists with the tuned sparse weight", () => {
    const hit = (id: string, score: number, rank: number): RankedHit<string> => ({ id, score, rank });
    const lists = {
      dense: [hit("d", 0.9, 1), hit("s", 0.1, 2)],
      lexical: [hit("l", 9, 1), hit("s", 1, 2)],
      sparse: [hit("s", 5, 1), hit("l", 1, 2)],
    };
    const top = (sparse: number) =>
      combineRankings("hybrid", lists, { topK: 1, candidates: 2, defaults: { method: "convex", weights: { dense: 0.3, lexical: 0.3, sparse } } })[0]!.id;
    expect(top(0.6)).toBe("s");
    expect(top(0)).not.toBe("s");
  });
});

describe("planSparse (workers/edge/src/sparse-plan.ts)", () => {
  const withHead = { info: { name: "m", version: "1" }, sparse: { threshold: 0, maxTerms: 256 } };
  const noHead = { info: { name: "m", version: "1" } };
  const shards = { learnedSparse: true };
  const upstash = {};

  it("reads the list in sparse and hybrid mode when model and index allow, never in dense or lexical", () => {
    expect(planSparse({ mode: "sparse" }, withHead, shards)).toEqual({ threshold: 0, maxTerms: 256 });
    expect(planSparse({ mode: "hybrid" }, withHead, shards)).toEqual({ threshold: 0, maxTerms: 256 });
    expect(planSparse({ mode: "dense" }, withHead, shards)).toBeNull();
    expect(planSparse({ mode: "lexical", weights: { sparse: 1 } }, withHead, shards)).toBeNull();
    // Hybrid without a head, or on a backend without sparse postings, is the two-list hybrid: no error, no list.
    expect(planSparse({ mode: "hybrid" }, noHead, shards)).toBeNull();
    expect(planSparse({ mode: "hybrid" }, withHead, upstash)).toBeNull();
    expect(planSparse({ mode: "hybrid", weights: { sparse: 0 } }, noHead, shards)).toBeNull();
  });

  it("skips the list in hybrid mode when the weight in force is 0, and reads it when a request raises it", () => {
    const tunedOff = { method: "convex" as const, weights: { dense: 0.5, lexical: 0.5, sparse: 0 } };
    const tunedOn = { method: "convex" as const, weights: { dense: 0.3, lexical: 0.5, sparse: 0.2 } };
    expect(planSparse({ mode: "hybrid" }, withHead, shards, tunedOff)).toBeNull();
    expect(planSparse({ mode: "hybrid", weights: { sparse: 0.1 } }, withHead, shards, tunedOff)).toEqual({ threshold: 0, maxTerms: 256 });
    expect(planSparse({ mode: "hybrid" }, withHead, shards, tunedOn)).toEqual({ threshold: 0, maxTerms: 256 });
    expect(planSparse({ mode: "hybrid", weights: { sparse: 0 } }, withHead, shards, tunedOn)).toBeNull();
    // RRF asked for, while the tuned fusion is convex: RRF's own default applies (lexical 3), so the list is read.
    expect(planSparse({ mode: "hybrid", fusion: "rrf" }, withHead, shards, tunedOff)).toEqual({ threshold: 0, maxTerms: 256 });
    // "sparse" mode ranks by the list alone whatever the fusion says.
    expect(planSparse({ mode: "sparse" }, withHead, shards, tunedOff)).toEqual({ threshold: 0, maxTerms: 256 });
  });

  it("answers an explicit request it cannot honour with a 400 naming the field and why", () => {
    const refused = (request: Parameters<typeof planSparse>[0], model: Parameters<typeof planSparse>[1], index: Parameters<typeof planSparse>[2]) => {
      try {
        planSparse(request, model, index);
      } catch (error) {
        expect(error).toBeInstanceOf(ApiError);
        return (error as ApiError).toBody().error;
      }
      throw new Error("planSparse did not refuse");
    };
    expect(refused({ mode: "sparse" }, noHead, shards)).toMatchObject({ code: "invalid_request", param: "mode", message: expect.stringMatching(/m@1 has no sparse head/) });
    expect(refused({ mode: "hybrid", weights: { sparse: 0.5 } }, noHead, shards)).toMatchObject({ param: "weights.sparse", message: expect.stringMatching(/a sparse weight above 0/) });
    expect(refused({ mode: "sparse" }, withHead, upstash)).toMatchObject({ param: "mode", message: expect.stringMatching(/stores no learned sparse postings/) });
  });
});

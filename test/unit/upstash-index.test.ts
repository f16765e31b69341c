/**
 * The Upstash adapter through the real `@upstash/vector` SDK, its HTTP answered by a fake Upstash on loopback
 * (test/support/fake-upstash.ts). No live Upstash index was reachable from CI: these tests check our mapping and the
 * SDK's requests against Upstash's documented behaviour, not Upstash itself.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { combineRankings } from "../../src/retrieval/hybrid.js";
import { ApiError } from "../../workers/edge/src/errors.js";
import type { SearchIndex } from "../../workers/edge/src/search-index.js";
import type { PreparedDocument } from "../../workers/edge/src/shard-api.js";
import { UpstashIndexError, UpstashSearchIndex, upstashIndexFromEnv } from "../../workers/edge/src/upstash-index.js";
import { DEFAULT_LEXICAL_WEIGHTING, termIndex } from "../../workers/edge/src/upstash-sparse.js";
import { FakeUpstash } from "../support/fake-upstash.js";

const DIMS = 128;
const NOW = 1_700_000_000_000;
const MODEL = "taesr-edge-small@0.2.0";

/** A unit vector with the given components (the rest 0). */
function unit(components: Record<number, number>): Float32Array {
  const vector = new Float32Array(DIMS);
  for (const [i, value] of Object.entries(components)) vector[Number(i)] = value;
  const norm = Math.hypot(...vector);
  return vector.map((x) => x / norm);
}

function doc(id: string, options: { words: string; vector: Float32Array; metadata?: unknown; hash?: string; model?: string; title?: string }): PreparedDocument {
  const counts = new Map<string, number>();
  const words = options.words.split(/\s+/).filter(Boolean);
  for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
  return {
    id,
    title: options.title ?? `Title of ${id}`,
    text: options.words,
    metadataJson: options.metadata === undefined ? null : JSON.stringify(options.metadata),
    contentHash: options.hash ?? `hash-${id}`,
    modelVersion: options.model ?? MODEL,
    vector: options.vector,
    terms: [...counts],
    length: words.length,
  };
}

const fake = new FakeUpstash("secret-token", DIMS);
let index: UpstashSearchIndex;

beforeAll(async () => {
  await fake.start();
});
afterAll(async () => {
  await fake.stop();
});
beforeEach(() => {
  fake.reset();
  index = new UpstashSearchIndex({ url: fake.url, token: fake.token, now: () => NOW, retries: 0 });
});

describe("upstashIndexFromEnv", () => {
  it("is null when Upstash is not configured", () => {
    expect(upstashIndexFromEnv({})).toBeNull();
    expect(upstashIndexFromEnv({ UPSTASH_VECTOR_REST_URL: "", UPSTASH_VECTOR_REST_TOKEN: " " })).toBeNull();
  });

  it("names the missing half of a half configuration", () => {
    expect(() => upstashIndexFromEnv({ UPSTASH_VECTOR_REST_URL: "https://x.upstash.io" })).toThrow(/UPSTASH_VECTOR_REST_TOKEN is not set/);
    expect(() => upstashIndexFromEnv({ UPSTASH_VECTOR_REST_TOKEN: "t" })).toThrow(/UPSTASH_VECTOR_REST_URL is not set/);
    expect(() => upstashIndexFromEnv({ UPSTASH_VECTOR_REST_URL: "not a url", UPSTASH_VECTOR_REST_TOKEN: "t" })).toThrow(/not a URL/);
  });

  it("builds an index that talks to the configured URL with the token, in the configured namespace", async () => {
    const configured = upstashIndexFromEnv({
      UPSTASH_VECTOR_REST_URL: fake.url,
      UPSTASH_VECTOR_REST_TOKEN: fake.token,
      UPSTASH_VECTOR_NAMESPACE: "tenant-a",
    });
    await configured!.upsert([doc("a", { words: "alpha", vector: unit({ 0: 1 }) })]);
    expect(fake.calls("upsert/tenant-a")).toHaveLength(1);
    expect(fake.stored("tenant-a").has("a")).toBe(true);
    expect(fake.stored("").has("a")).toBe(false);
    expect((await configured!.stats()).documents).toBe(1);
    expect((await index.stats()).documents).toBe(0);
  });
});

describe("writes", () => {
  it("maps a document onto one hybrid vector and reads it back unchanged", async () => {
    const input = doc("d1", { words: "lens lens optics", vector: unit({ 0: 1, 5: 2 }), metadata: { lang: "en", tags: ["a"], n: { x: 1 } } });
    expect(await index.upsert([input])).toEqual({ upserted: ["d1"], unchanged: [] });

    const stored = fake.stored().get("d1")!;
    expect(stored.vector).toEqual(Array.from(input.vector));
    expect(stored.data).toBe("lens lens optics");
    const { k1, b, avgDocLength } = DEFAULT_LEXICAL_WEIGHTING;
    const norm = k1 * (1 - b + (b * 3) / avgDocLength);
    const weights = new Map([
      [termIndex("lens"), (2 * (k1 + 1)) / (2 + norm)],
      [termIndex("optics"), (k1 + 1) / (1 + norm)],
    ]);
    expect(stored.sparseVector.indices).toEqual([...weights.keys()].sort((x, y) => x - y));
    stored.sparseVector.indices.forEach((i, at) => expect(stored.sparseVector.values[at]).toBeCloseTo(weights.get(i)!, 10));
    expect(stored.metadata).toEqual({
      meta: { lang: "en", tags: ["a"], n: { x: 1 } },
      _taesr: {
        title: "Title of d1",
        contentHash: "hash-d1",
        modelVersion: MODEL,
        dims: DIMS,
        length: 3,
        updatedAt: NOW,
        lexical: "fnv1a31;bm25 k1=0.9 b=0.4 avgdl=256",
      },
    });

    expect(await index.get("d1")).toEqual({
      id: "d1",
      title: "Title of d1",
      text: "lens lens optics",
      metadataJson: input.metadataJson,
      contentHash: "hash-d1",
      modelVersion: MODEL,
      dims: DIMS,
      length: 3,
      updatedAt: NOW,
    });
    expect(await index.get("nope")).toBeNull();
  });

  it("keeps user metadata apart from ours: a user key named _taesr neither collides nor confuses", async () => {
    const input = doc("d2", { words: "x", vector: unit({ 1: 1 }), metadata: { _taesr: { contentHash: "forged" }, title: "user title" } });
    await index.upsert([input]);
    const got = await index.get("d2");
    expect(got?.contentHash).toBe("hash-d2");
    expect(got?.title).toBe("Title of d2");
    expect(JSON.parse(got!.metadataJson!)).toEqual({ _taesr: { contentHash: "forged" }, title: "user title" });
  });

  it("skips identical documents, re-writes changed ones, and says which are pending", async () => {
    const a = doc("a", { words: "alpha", vector: unit({ 0: 1 }) });
    const b = doc("b", { words: "beta", vector: unit({ 1: 1 }) });
    await index.upsert([a, b]);
    fake.requests.length = 0;

    expect(await index.upsert([a, b])).toEqual({ upserted: [], unchanged: ["a", "b"] });
    expect(fake.calls("upsert")).toHaveLength(0);

    const a2 = { ...a, contentHash: "hash-a-2", text: "alpha two" };
    const b2 = { ...b, modelVersion: "other@1" };
    expect(await index.pending([a2, b2, { id: "c", contentHash: "h", modelVersion: MODEL }, a])).toEqual(["a", "b", "c"]);
    expect(await index.upsert([a2, b])).toEqual({ upserted: ["a"], unchanged: ["b"] });
    expect(fake.calls("upsert").at(-1)!.body.map((record: { id: string }) => record.id)).toEqual(["a"]);
    expect((await index.get("a"))?.text).toBe("alpha two");
    expect(await index.pending([a2, b])).toEqual([]);
    expect(await index.upsert([b2])).toEqual({ upserted: ["b"], unchanged: [] });
  });

  it("re-writes a document whose sparse weighting changed", async () => {
    const a = doc("a", { words: "alpha", vector: unit({ 0: 1 }) });
    await index.upsert([a]);
    const reweighted = new UpstashSearchIndex({ url: fake.url, token: fake.token, lexical: { ...DEFAULT_LEXICAL_WEIGHTING, avgDocLength: 64 } });
    expect(await reweighted.pending([a])).toEqual(["a"]);
    expect(await reweighted.upsert([a])).toEqual({ upserted: ["a"], unchanged: [] });
  });

  it("refuses, before writing anything, a batch holding a document Upstash cannot store", async () => {
    const fine = doc("fine", { words: "ok", vector: unit({ 0: 1 }) });
    const tooManyTerms = doc("wide", { words: Array.from({ length: 1001 }, (_, i) => `w${i}`).join(" "), vector: unit({ 1: 1 }) });
    const hugeMetadata = doc("heavy", { words: "ok", vector: unit({ 2: 1 }), metadata: { blob: "x".repeat(50_000) } });
    const badVector = doc("nan", { words: "ok", vector: new Float32Array(DIMS).fill(Number.NaN) });
    for (const [bad, message] of [
      [tooManyTerms, /"wide" cannot be stored in Upstash Vector: it has 1001 distinct lexical terms/],
      [hugeMetadata, /"heavy" cannot be stored.*over Upstash's 48000-byte metadata limit/],
      [badVector, /"nan" cannot be stored.*not finite/],
    ] as const) {
      const attempt = index.upsert([fine, bad]);
      await expect(attempt).rejects.toBeInstanceOf(ApiError);
      await expect(index.upsert([fine, bad])).rejects.toThrow(message);
    }
    expect(fake.calls("upsert")).toHaveLength(0);
    expect(fake.stored().size).toBe(0);
  });

  it("deletes existing documents and reports the others missing", async () => {
    await index.upsert([doc("a", { words: "alpha", vector: unit({ 0: 1 }) }), doc("b", { words: "beta", vector: unit({ 1: 1 }) })]);
    expect(await index.delete(["a", "zzz", "a"])).toEqual({ deleted: ["a"], missing: ["zzz"] });
    expect(fake.calls("delete").map((call) => call.body)).toEqual([{ ids: ["a"] }]);
    expect(await index.get("a")).toBeNull();
    expect(await index.get("b")).not.toBeNull();
    expect(await index.delete(["zzz"])).toEqual({ deleted: [], missing: ["zzz"] });
    expect(fake.calls("delete")).toHaveLength(1);
  });

  it("counts documents from Upstash's info", async () => {
    await index.upsert([doc("a", { words: "alpha", vector: unit({ 0: 1 }) }), doc("b", { words: "beta", vector: unit({ 1: 1 }) })]);
    expect(await index.stats()).toEqual({ backend: "upstash", documents: 2, shards: 1, modelVersions: {} });
  });
});

describe("search", () => {
  // q is close to "near" (dense only: no shared word), "exact" shares the rare query word (lexical only: orthogonal).
  const query = { vector: unit({ 0: 1, 1: 0.2 }), terms: ["zygote"], modelVersion: MODEL };
  const corpus = [
    doc("near", { words: "embryo development cells", vector: unit({ 0: 1, 1: 0.25 }), metadata: { lang: "en", year: 2020 } }),
    doc("exact", { words: "zygote formation", vector: unit({ 60: 1 }), metadata: { lang: "fr", year: 2010 } }),
    doc("both", { words: "zygote embryo embryo", vector: unit({ 0: 1, 3: 1 }), metadata: { lang: "en", tags: ["bio"] } }),
    doc("far", { words: "stock market prices", vector: unit({ 0: -0.1, 90: 1 }), metadata: { lang: "en", year: 2024 } }),
    doc("old-model", { words: "zygote", vector: unit({ 0: 1, 1: 0.2 }), model: "taesr-edge-small@0.1.0" }),
    doc("mid", { words: "cells and tissue", vector: unit({ 0: 1, 2: 1.2 }), metadata: { year: 2015 } }),
    // Without these, "zygote" would be in half the documents, where Upstash's IDF is 0.
    doc("filler-1", { words: "weather report", vector: unit({ 0: -0.3, 100: 1 }) }),
    doc("filler-2", { words: "garden tools", vector: unit({ 0: -0.5, 101: 1 }) }),
  ];
  const cos = (a: Float32Array, b: Float32Array): number => a.reduce((sum, x, i) => sum + x * b[i]!, 0);

  beforeEach(async () => {
    await index.upsert(corpus);
    fake.requests.length = 0;
  });

  it("dense: cosine scores of the query's model version only, via a vector-only query", async () => {
    const result = await index.search({ mode: "dense", topK: 10, offset: 0, ...query });
    expect(result.hits.map((hit) => hit.id)).toEqual(["near", "both", "mid", "exact", "far", "filler-1", "filler-2"]);
    for (const hit of result.hits) {
      const source = corpus.find((d) => d.id === hit.id)!;
      expect(hit.score).toBeCloseTo(cos(query.vector, source.vector), 5);
      expect(hit.scores.dense).toBe(hit.score);
      expect(hit).toMatchObject({ title: source.title, text: source.text, metadataJson: source.metadataJson });
    }
    expect(result.hits.map((hit) => hit.ranks.dense)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const [call] = fake.calls("query");
    expect(call!.body.sparseVector).toBeUndefined();
    expect(call!.body.filter).toBe(`_taesr.modelVersion = '${MODEL}'`);
    expect(call!.body.includeData).toBeUndefined();
    expect(result.timings).toEqual({ denseMs: expect.any(Number), lexicalMs: 0, fuseMs: expect.any(Number), fetchMs: expect.any(Number) });
  });

  it("lexical: BM25 with Upstash's IDF, via a sparse-only IDF-weighted query, over every model version", async () => {
    const result = await index.search({ mode: "lexical", topK: 10, offset: 0, terms: ["zygote"] });
    expect(new Set(result.hits.map((hit) => hit.id))).toEqual(new Set(["exact", "both", "old-model"]));
    const { k1, b, avgDocLength } = DEFAULT_LEXICAL_WEIGHTING;
    const idf = Math.log((corpus.length - 3 + 0.5) / (3 + 0.5));
    for (const hit of result.hits) {
      const length = corpus.find((d) => d.id === hit.id)!.length;
      expect(hit.score).toBeCloseTo((idf * (k1 + 1)) / (1 + k1 * (1 - b + (b * length) / avgDocLength)), 6);
    }
    const [call] = fake.calls("query");
    expect(call!.body).toMatchObject({ weightingStrategy: "IDF", sparseVector: { indices: [termIndex("zygote")], values: [1] } });
    expect(call!.body.vector).toBeUndefined();
    expect(call!.body.filter).toBeUndefined();
  });

  it("clamps Upstash's negative IDF scores at BM25's floor of 0", async () => {
    // "zygote" in 6 of 11 documents, over half: Upstash's IDF ln((11 − 6 + 0.5)/(6 + 0.5)) is negative.
    await index.upsert(["x", "y", "z"].map((id, i) => doc(id, { words: "zygote", vector: unit({ [10 + i]: 1 }) })));
    const result = await index.search({ mode: "lexical", topK: 10, offset: 0, terms: ["zygote"] });
    expect(result.hits.length).toBe(6);
    for (const hit of result.hits) expect(hit.score).toBe(0);
  });

  it("hybrid: finds the lexical-only and the dense-only match and fuses exactly as combineRankings does", async () => {
    const request = { mode: "hybrid" as const, topK: 10, offset: 0, ...query };
    const result = await index.search(request);
    const ids = result.hits.map((hit) => hit.id);
    const ranksOf = (id: string) => result.hits.find((hit) => hit.id === id)?.ranks;
    // Found by one list only: "near" by meaning, "old-model" by its word (its vector is another model's).
    expect(ranksOf("near")).toEqual({ dense: 1 });
    expect(ranksOf("old-model")).toEqual({ lexical: 1 });
    // The rare shared word lifts "exact" (cosine 0) over "mid" (cosine 0.63, no shared word).
    expect(ids.indexOf("exact")).toBeLessThan(ids.indexOf("mid"));
    expect(fake.calls("query")).toHaveLength(2);

    const depth = 50;
    const dense = (await index.search({ ...request, mode: "dense", topK: depth })).hits;
    const lexical = (await index.search({ ...request, mode: "lexical", topK: depth })).hits;
    const asList = (hits: typeof dense, list: "dense" | "lexical") => hits.map((hit) => ({ id: hit.id, score: hit.scores[list]!, rank: hit.ranks[list]! }));
    const expected = combineRankings("hybrid", { dense: asList(dense, "dense"), lexical: asList(lexical, "lexical") }, { topK: 10, candidates: depth });
    expect(result.hits.map(({ id, score, ranks, scores }) => ({ id, score, ranks, scores }))).toEqual(expected);
    expect(result.candidates).toEqual({ dense: 7, lexical: 3 });

    const rrf = await index.search({ ...request, fusion: "rrf", weights: { dense: 2 } });
    const expectedRrf = combineRankings("hybrid", { dense: asList(dense, "dense"), lexical: asList(lexical, "lexical") }, { topK: 10, fusion: "rrf", weights: { dense: 2 } });
    expect(rrf.hits.map(({ id, score }) => ({ id, score }))).toEqual(expectedRrf.map(({ id, score }) => ({ id, score })));

    const tuned = { method: "convex" as const, weights: { dense: 0.9, lexical: 0.1 } };
    const withDefault = await index.search({ ...request, fusionDefault: tuned });
    const expectedTuned = combineRankings("hybrid", { dense: asList(dense, "dense"), lexical: asList(lexical, "lexical") }, { topK: 10, candidates: depth, defaults: tuned });
    expect(withDefault.hits.map((hit) => hit.id)).toEqual(expectedTuned.map((hit) => hit.id));
  });

  it("pages through one ranking and says when it continues", async () => {
    const all = await index.search({ mode: "dense", topK: 7, offset: 0, ...query });
    expect(all.hits).toHaveLength(7);
    const pages = [];
    for (const offset of [0, 2, 4, 6]) pages.push(await index.search({ mode: "dense", topK: 2, offset, ...query }));
    expect(pages.flatMap((page) => page.hits.map((hit) => hit.id))).toEqual(all.hits.map((hit) => hit.id));
    expect(pages.map((page) => page.hasMore)).toEqual([true, true, true, false]);
    expect(pages[1]!.hits.map((hit) => hit.ranks.dense)).toEqual([3, 4]);
    const hybridPage = await index.search({ mode: "hybrid", topK: 2, offset: 1, ...query });
    const hybridAll = await index.search({ mode: "hybrid", topK: 3, offset: 0, ...query });
    expect(hybridPage.hits.map((hit) => hit.id)).toEqual(hybridAll.hits.slice(1).map((hit) => hit.id));
    expect(hybridPage.hasMore).toBe(true);
  });

  it("filters by metadata inside Upstash, on both lists, with the translated filter", async () => {
    const filter = { lang: "en", year: { $gte: 2015 } };
    const result = await index.search({ mode: "hybrid", topK: 10, offset: 0, filter, ...query });
    expect(result.hits.map((hit) => hit.id).sort()).toEqual(["far", "near"]);
    const user = "((meta.lang = 'en' OR meta.lang CONTAINS 'en') AND meta.year >= 2015)";
    const filters = fake.calls("query").map((call) => call.body.filter).sort();
    expect(filters).toEqual([`(${user} AND _taesr.modelVersion = '${MODEL}')`, user].sort());

    const tagged = await index.search({ mode: "lexical", topK: 10, offset: 0, terms: ["zygote"], filter: { tags: "bio" } });
    expect(tagged.hits.map((hit) => hit.id)).toEqual(["both"]);
    const missingOk = await index.search({ mode: "dense", topK: 10, offset: 0, ...query, filter: { lang: { $ne: "fr" } } });
    expect(missingOk.hits.map((hit) => hit.id)).toContain("mid");
    expect(missingOk.hits.map((hit) => hit.id)).not.toContain("exact");
  });

  it("asks Upstash nothing when the filter cannot match", async () => {
    const result = await index.search({ mode: "hybrid", topK: 10, offset: 0, filter: { lang: { $in: [] } }, ...query });
    expect(result).toMatchObject({ hits: [], hasMore: false, candidates: { dense: 0, lexical: 0 } });
    expect(fake.calls("query")).toHaveLength(0);
    expect(fake.calls("fetch")).toHaveLength(0);
  });

  it("refuses a filter Upstash cannot express as a 400", async () => {
    const attempt = index.search({ mode: "dense", topK: 10, offset: 0, filter: { date: { $gt: "2024" } }, ...query });
    await expect(attempt).rejects.toMatchObject({ status: 400, code: "invalid_request", message: expect.stringMatching(/^filter: date\.\$gt: Upstash Vector compares numbers only/) });
    expect(fake.calls("query")).toHaveLength(0);
  });

  it("refuses the learned sparse list as a 400 — mode sparse, a sparse weight, query sparse terms — asking Upstash nothing", async () => {
    expect((index as SearchIndex).learnedSparse).toBeUndefined();
    const refused = { status: 400, code: "invalid_request", message: expect.stringMatching(/sparse slot holds BM25 weights/) };
    await expect(index.search({ mode: "sparse", topK: 10, offset: 0, sparseTerms: [[3, 0.5]], ...query })).rejects.toMatchObject({
      ...refused,
      issues: [{ path: "mode", message: expect.any(String) }],
    });
    await expect(index.search({ mode: "hybrid", topK: 10, offset: 0, weights: { sparse: 1 }, ...query })).rejects.toMatchObject({
      ...refused,
      issues: [{ path: "weights.sparse", message: expect.any(String) }],
    });
    await expect(index.search({ mode: "hybrid", topK: 10, offset: 0, sparseTerms: [[3, 0.5]], ...query })).rejects.toMatchObject(refused);
    expect(fake.calls("query")).toHaveLength(0);
    // A zero sparse weight asks for nothing Upstash lacks.
    await expect(index.search({ mode: "hybrid", topK: 10, offset: 0, weights: { sparse: 0 }, ...query })).resolves.toBeDefined();
  });

  it("writes hostile filter strings so that Upstash reads back the same value", async () => {
    const hostile = `O'Brien "the" \\ hacker' OR '1' = '1`;
    await index.upsert([doc("h", { words: "zygote", vector: unit({ 4: 1 }), metadata: { author: hostile } })]);
    const result = await index.search({ mode: "lexical", topK: 10, offset: 0, terms: ["zygote"], filter: { author: hostile } });
    expect(result.hits.map((hit) => hit.id)).toEqual(["h"]);
    const [call] = fake.calls("query");
    expect(call!.body.filter).toBe(`(meta.author = 'O\\'Brien "the" \\\\ hacker\\' OR \\'1\\' = \\'1' OR meta.author CONTAINS 'O\\'Brien "the" \\\\ hacker\\' OR \\'1\\' = \\'1')`);
  });
});

describe("scan and documents", () => {
  const docs = ["m", "c", "x", "a", "q", "h", "t"].map((id, i) =>
    doc(id, { words: `word${i} shared`, vector: unit({ [i]: 1 }), metadata: i % 2 === 0 ? { n: i } : undefined, model: i === 2 ? "older@0.1" : MODEL }),
  );
  const expected = docs.map((d) => ({ id: d.id, contentHash: d.contentHash, modelVersion: d.modelVersion })).sort((a, b) => (a.id < b.id ? -1 : 1));

  /** Every page of a full scan, checking that no page is empty while a cursor follows it. */
  async function scanAll(target: UpstashSearchIndex, limit: number) {
    const pages: { id: string; contentHash: string; modelVersion: string }[][] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<UpstashSearchIndex["scan"]>> = await target.scan(cursor, limit);
      expect(page.documents.length).toBeLessThanOrEqual(limit);
      if (page.cursor !== null) expect(page.documents.length).toBeGreaterThan(0);
      pages.push(page.documents);
      cursor = page.cursor;
      expect(pages.length).toBeLessThan(100);
    } while (cursor !== null);
    return pages;
  }

  /** A vector some other writer put in the namespace: no fields of ours. */
  function foreign(id: string, metadata?: Record<string, unknown>) {
    return { id, vector: Array.from(unit({ 7: 1 })), sparseVector: { indices: [1], values: [1] }, metadata, data: "not ours" };
  }

  it("scans every document once through Upstash's range cursor, with its stored hash and model version", async () => {
    await index.upsert(docs);
    for (const limit of [1, 2, 3, 7, 1_000]) {
      fake.requests.length = 0;
      const pages = await scanAll(index, limit);
      expect(pages.flat().sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(expected);
      expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
      const ranges = fake.calls("range").map((call) => call.body);
      // Starts at Upstash's "0", then passes each nextCursor back; metadata only (the hash lives there), no text.
      expect(ranges[0]).toEqual({ cursor: "0", limit, includeMetadata: true });
      for (const body of ranges.slice(1)) expect(body.cursor).not.toBe("0");
    }
  });

  it("skips vectors it did not write and still fills every page but the last", async () => {
    await index.upsert(docs);
    // Sorted among ours, so foreign vectors fall inside pages (the fake ranges in id order).
    for (const id of ["b", "d", "e", "n"]) fake.stored().set(id, foreign(id));
    fake.stored().set("r", foreign("r", { _taesr: { title: "no hash" } }));
    const pages = await scanAll(index, 2);
    expect(pages.flat().sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(expected);
    expect(pages.map((page) => page.length)).toEqual([2, 2, 2, 1]);
    // A namespace of foreign vectors only scans to one empty, final page.
    fake.reset();
    for (const id of ["b", "d", "e"]) fake.stored().set(id, foreign(id));
    expect(await index.scan(null, 2)).toEqual({ documents: [], cursor: null });
  });

  it("scans an empty index, and only its own namespace", async () => {
    expect(await index.scan(null, 10)).toEqual({ documents: [], cursor: null });
    const tenant = new UpstashSearchIndex({ url: fake.url, token: fake.token, namespace: "tenant-a", now: () => NOW, retries: 0 });
    await tenant.upsert(docs.slice(0, 3));
    await index.upsert(docs.slice(3));
    const scanned = (await scanAll(tenant, 2)).flat();
    expect(scanned.map((d) => d.id).sort()).toEqual(docs.slice(0, 3).map((d) => d.id).sort());
    expect(fake.calls("range/tenant-a").length).toBeGreaterThan(0);
    expect(await index.scan(null, 10)).toEqual({ documents: expected.filter((d) => !["m", "c", "x"].includes(d.id)), cursor: null });
  });

  it("refuses bad page sizes and the ended cursor, and names range when Upstash refuses a cursor", async () => {
    for (const limit of [0, 1_001, 1.5]) await expect(index.scan(null, limit)).rejects.toThrow(/scan limit must be a whole number from 1 to 1000/);
    await expect(index.scan("", 5)).rejects.toThrow(/malformed scan cursor ""/);
    expect(fake.calls("range")).toHaveLength(0);
    await expect(index.scan("not-a-cursor", 5)).rejects.toThrow(/^Upstash Vector range failed: Invalid cursor/);
  });

  it("documents: the stored ones among present, missing and foreign ids, exactly as get reads them", async () => {
    await index.upsert(docs);
    fake.stored().set("alien", foreign("alien"));
    const asked = ["q", "missing", "a", "alien", "q", "x"];
    const found = await index.documents(asked);
    expect(found.map((d) => d.id).sort()).toEqual(["a", "q", "x"]);
    for (const document of found) expect(document).toEqual(await index.get(document.id));
    expect(found.find((d) => d.id === "x")).toEqual({
      id: "x",
      title: "Title of x",
      text: "word2 shared",
      metadataJson: JSON.stringify({ n: 2 }),
      contentHash: "hash-x",
      modelVersion: "older@0.1",
      dims: DIMS,
      length: 2,
      updatedAt: NOW,
    });
    expect(found.find((d) => d.id === "a")!.metadataJson).toBeNull();
  });

  it("documents: fetches in batches of at most 1,000 ids with metadata and text, and asks nothing for no ids", async () => {
    await index.upsert(docs);
    fake.requests.length = 0;
    expect(await index.documents([])).toEqual([]);
    expect(fake.requests).toHaveLength(0);
    const ids = [...Array.from({ length: 1_500 }, (_, i) => `absent-${i}`), ...docs.map((d) => d.id)];
    const found = await index.documents(ids);
    expect(found.map((d) => d.id).sort()).toEqual(expected.map((d) => d.id));
    const fetches = fake.calls("fetch").map((call) => call.body);
    expect(fetches.map((body) => body.ids.length)).toEqual([1_000, 507]);
    for (const body of fetches) expect(body).toMatchObject({ includeMetadata: true, includeData: true });
  });
});

describe("Upstash failures", () => {
  const probe = doc("a", { words: "alpha", vector: unit({ 0: 1 }) });

  it("turns a refused token into an error naming the operation and Upstash's reason", async () => {
    const wrong = new UpstashSearchIndex({ url: fake.url, token: "wrong", retries: 0 });
    const attempt = wrong.upsert([probe]);
    await expect(attempt).rejects.toBeInstanceOf(UpstashIndexError);
    await expect(wrong.get("a")).rejects.toThrow("Upstash Vector fetch failed: Unauthorized: Invalid auth token");
  });

  it("reports a server error with Upstash's message", async () => {
    await index.upsert([probe]);
    fake.failNext(500, "Internal error: index is being rebuilt");
    await expect(index.search({ mode: "lexical", topK: 5, offset: 0, terms: ["alpha"] })).rejects.toThrow(
      "Upstash Vector sparse query failed: Internal error: index is being rebuilt",
    );
  });

  it("reports a non-JSON answer (a proxy's HTML error page) without crashing on it", async () => {
    fake.failNext(502, "", "<html>Bad Gateway</html>");
    const attempt = index.stats();
    await expect(attempt).rejects.toBeInstanceOf(UpstashIndexError);
    await expect(attempt).rejects.toThrow(/^Upstash Vector info failed: .*JSON/);
  });

  it("reports an unreachable Upstash", async () => {
    const closed = new FakeUpstash();
    await closed.start();
    const url = closed.url;
    await closed.stop();
    const gone = new UpstashSearchIndex({ url, token: "t", retries: 0 });
    await expect(gone.pending([probe])).rejects.toThrow(/^Upstash Vector fetch failed: /);
  });
});

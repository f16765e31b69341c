/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * The learned sparse list end to end in workerd: a model with the sparse head (the committed random-weight
 * taesr-sparse fixture, real exporter, onnxruntime-web) makes the indexer store every document's sparse terms as
 * postings in its shard's SQLite (replaced and deleted with the document's other traces), and mode "sparse" over 3
 * shards ranks exactly as an in-memory SparseIndex over the same terms (ids and scores), filters applied first. Hybrid
 * fuses the sparse list in (ranks.sparse, shard.sparseMs), the query's terms are cached with its vector, and a model
 * without the head answers mode "sparse" or a sparse weight with 400 while its hybrid stays the two-list one.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SparseIndex, documentText, sparsePairs } from "../../src/retrieval/index.js";
import { normalize } from "../../src/tokenizer/normalize.js";
import type { IndexShard } from "../../workers/edge/src/index-shard.js";
import { createEdgeModel, type LoadedEdgeModel } from "../../workers/edge/src/model-loader.js";
import { ShardStore } from "../../workers/edge/src/shard-store.js";
import { shardTables, writeLegacyShard } from "./support/legacy-shard-schema.js";
import { harness, json, type Harness } from "./support/edge-harness.js";
import { fixtureSparseBundle } from "./support/fixture-model.js";

const WORDS = ["the", "edge", "model", "query", "fast", "vector", "search", "how", "what", "is", "of", "and", "to", "in"];

/** 30 documents of fixture-vocabulary words, in three metadata groups. */
const documents = Array.from({ length: 30 }, (_, i) => ({
  id: `doc-${String(i).padStart(2, "0")}`,
  title: `${WORDS[i % WORDS.length]} ${WORDS[(i * 3 + 1) % WORDS.length]}`,
  text: Array.from({ length: 8 + (i % 11) }, (_, j) => WORDS[(i * 5 + j * 3 + (i % 4) * j) % WORDS.length]).join(" "),
  metadata: { group: i % 3 },
}));

const QUERIES = ["fast vector search at the edge", "how is the model", "what query", "vector"];

let sparseModel: Promise<LoadedEdgeModel> | undefined;
function model(): Promise<LoadedEdgeModel> {
  sparseModel ??= createEdgeModel(fixtureSparseBundle);
  return sparseModel;
}

async function seeded(): Promise<Harness> {
  const h = await harness({ model: await model() });
  expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
  return h;
}

interface SearchBody {
  results: { id: string; score: number; ranks: { dense?: number; lexical?: number; sparse?: number; late?: number } }[];
  page: { hasMore: boolean };
  model: { depth: number; route: string };
  timings: { cache: string; stages: Record<string, number> };
}

async function search(h: Harness, body: Record<string, unknown>): Promise<SearchBody> {
  const response = await h.request("/v1/search", { method: "POST", json: body });
  expect(response.status, await response.clone().text()).toBe(200);
  return json<SearchBody>(response);
}

/** Sparse postings per document id over every shard of a harness, read straight from SQLite. */
async function storedPostings(h: Harness): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  for (const name of h.shardNames) {
    const stub = env.INDEX.get(env.INDEX.idFromName(name)) as DurableObjectStub<IndexShard>;
    const rows = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql.exec<{ id: string; sparse: string }>("SELECT id, sparse FROM documents WHERE sparse IS NOT NULL").toArray(),
    );
    for (const row of rows) out.set(row.id, new Map(JSON.parse(row.sparse) as [number, number][]));
  }
  return out;
}

/**
 * Texts' sparse terms straight from the model, embedded together as the indexer embeds one batch (documents) or alone
 * as the search path does (a query, ranking "hybrid"). The batch matters: the int8 graphs quantise activations with
 * one scale per batch tensor, so a text's weights move slightly with its batch companions.
 */
async function modelTerms(m: LoadedEdgeModel, texts: string[], ranking?: "hybrid"): Promise<Map<number, number>[]> {
  const result = await m.embedder.embed(texts, { dims: 128, depth: "auto", sparse: { ...m.sparse! }, ...(ranking ? { ranking } : {}) });
  return result.sparse!.map((terms) => new Map(sparsePairs(terms)));
}

async function queryTerms(m: LoadedEdgeModel, query: string): Promise<Map<number, number>> {
  return (await modelTerms(m, [normalize(query)], "hybrid"))[0]!;
}

/** The in-memory reference: a SparseIndex over the terms the index holds, of the documents `keep` accepts. */
async function reference(h: Harness, keep: (id: string) => boolean = () => true): Promise<SparseIndex<string>> {
  const index = new SparseIndex<string>();
  for (const [id, terms] of [...(await storedPostings(h))].sort(([a], [b]) => (a < b ? -1 : 1))) if (keep(id)) index.add(id, terms);
  return index;
}

function expectSameRanking(got: SearchBody["results"], expected: { id: string; score: number }[]): void {
  expect(got.map((r) => r.id)).toEqual(expected.map((hit) => hit.id));
  got.forEach((r, i) => expect(Math.abs(r.score - expected[i]!.score)).toBeLessThan(1e-6));
}

describe("sparse postings: storage", () => {
  it("stores each document's sparse terms, exactly the model's, and counts them in the shard stats", async () => {
    const m = await model();
    expect(m.sparse).toEqual({ threshold: 0, maxTerms: 256 });
    const h = await seeded();
    const stored = await storedPostings(h);
    expect([...stored.keys()].sort()).toEqual(documents.map((d) => d.id));
    // The indexer's batches: documents sorted by text length (stable), 16 at a time.
    const batches = [...documents].sort((a, b) => documentText(a).length - documentText(b).length);
    let total = 0;
    for (let start = 0; start < batches.length; start += 16) {
      const batch = batches.slice(start, start + 16);
      const expected = await modelTerms(m, batch.map((d) => documentText(d)));
      batch.forEach((d, i) => {
        const got = stored.get(d.id)!;
        expect([...got.keys()].sort((a, b) => a - b)).toEqual([...expected[i]!.keys()]);
        for (const [term, weight] of expected[i]!) expect(Math.abs(got.get(term)! - weight)).toBeLessThan(1e-6);
        total += got.size;
      });
    }
    // A handful of terms per document, not the whole vocabulary: a sparse list.
    expect(total / documents.length).toBeGreaterThan(2);
    expect(total / documents.length).toBeLessThan(64);
    const perShard = await Promise.all(h.shardNames.map((name) => (env.INDEX.get(env.INDEX.idFromName(name)) as DurableObjectStub<IndexShard>).stats()));
    expect(perShard.reduce((sum, stats) => sum + (stats.sparsePostings ?? 0), 0)).toBe(total);
    expect((await json<{ model: { sparse?: unknown } }>(await h.request("/v1/health"))).model.sparse).toEqual({ threshold: 0, maxTerms: 256 });
  });

  it("a delete and a replace leave no sparse posting of the old version", async () => {
    const m = await model();
    const h = await seeded();
    expect((await h.request("/v1/documents/doc-03", { method: "DELETE" })).status).toBe(200);
    const replaced = { ...documents[4]!, title: "what", text: "query query of the fast fast vector and how" };
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: [replaced] } })).status).toBe(200);
    const stored = await storedPostings(h);
    expect(stored.has("doc-03")).toBe(false);
    // Replaced alone, the document is its own batch.
    const [now] = await modelTerms(m, [documentText(replaced)]);
    const [before] = await modelTerms(m, [documentText(documents[4]!)]);
    expect([...now!.keys()]).not.toEqual([...before!.keys()]); // the replacement has other terms, so the check can fail
    expect([...stored.get("doc-04")!].sort(([a], [b]) => a - b)).toEqual([...now!]);
    // Nor does search find the old ones: the shard's in-memory view went with the writes.
    const found = await search(h, { query: QUERIES[0], mode: "sparse", topK: 50 });
    expect(found.results.map((r) => r.id)).not.toContain("doc-03");
    expectSameRanking(found.results, (await reference(h)).search(await queryTerms(m, QUERIES[0]!), 50));
  });

  it("migrates a schema-v3 database in place: per-pair postings become each document's own, nothing is lost", async () => {
    const stub = env.INDEX.get(env.INDEX.idFromName(`sparse-migrate-${crypto.randomUUID()}`)) as DurableObjectStub<IndexShard>;
    const old = { id: "old", title: "", text: "edge", metadataJson: null, contentHash: "h", modelVersion: "m1", vector: Float32Array.of(1, 0), terms: [["edge", 1]] as [string, number][], length: 1 };
    const migrated = await runInDurableObject(stub, (_i, state) => {
      writeLegacyShard(state.storage.sql, 3, [
        { id: "old", text: "edge", modelVersion: "m1", vector: Float32Array.of(1, 0), terms: [["edge", 1]] },
        { id: "older", text: "edge edge fast", modelVersion: "m1", vector: Float32Array.of(0, 1), terms: [["edge", 2], ["fast", 1]], sparse: [[7, 0.25], [11, 2]] },
      ]);
      new ShardStore(state.storage.sql, (closure) => state.storage.transactionSync(closure)); // the next object start
      return {
        tables: shardTables(state.storage.sql),
        rows: state.storage.sql.exec<{ id: string; terms: string; sparse: string | null }>("SELECT id, terms, sparse FROM documents ORDER BY id").toArray(),
      };
    });
    expect(migrated.tables).toEqual(["documents", "token_matrices"]);
    expect(migrated.rows.map((row) => ({ id: row.id, terms: JSON.parse(row.terms) as unknown, sparse: row.sparse && (JSON.parse(row.sparse) as unknown) }))).toEqual([
      { id: "old", terms: [["edge", 1]], sparse: null },
      { id: "older", terms: expect.arrayContaining([["edge", 2], ["fast", 1]]) as unknown, sparse: expect.arrayContaining([[7, 0.25], [11, 2]]) as unknown },
    ]);
    expect((await stub.candidates({ lists: { dense: false, lexical: true }, depth: 10, terms: ["edge"] })).lexical?.map((hit) => hit.id)).toEqual(["older", "old"]);
    expect((await stub.stats())).toMatchObject({ documents: 2, terms: 2, postings: 3, sparsePostings: 2 });
    await stub.upsert([{ ...old, id: "new", contentHash: "h2", sparse: [[7, 0.5], [9, 1.5]] }]);
    const found = await stub.candidates({ lists: { dense: false, lexical: false, sparse: true }, depth: 10, modelVersion: "m1", sparseTerms: [[9, 2], [11, 1]] });
    expect(found.sparse).toEqual([{ id: "new", score: 3 }, { id: "older", score: 2 }]);
    // Another model version's terms live in another space: not ranked for this query's version.
    expect((await stub.candidates({ lists: { dense: false, lexical: false, sparse: true }, depth: 10, modelVersion: "m2", sparseTerms: [[9, 2]] })).sparse).toEqual([]);
    // Called inside the object: an error thrown across RPC would also surface as an unhandled rejection in the pool.
    await runInDurableObject(stub, (instance) =>
      expect(() => instance.upsert([{ ...old, id: "bad", sparse: [[7, 0.5], [7, 1]] }])).toThrow(/malformed sparse terms: term 7 appears twice/),
    );
  });
});

describe("sparse list: search", () => {
  it("mode sparse over 3 shards ranks exactly as SparseIndex over the same document and query terms", async () => {
    const m = await model();
    const h = await seeded();
    expect(h.shardNames).toHaveLength(3);
    const expected = await reference(h);
    let compared = 0;
    for (const query of QUERIES) {
      const body = await search(h, { query, mode: "sparse", topK: 50 });
      const want = expected.search(await queryTerms(m, query), 50);
      expectSameRanking(body.results, want);
      compared += want.length;
      expect(body.results.map((r) => r.ranks)).toEqual(want.map((_, i) => ({ sparse: i + 1 })));
      expect(body.timings.stages["shard.sparseMs"]).toBeGreaterThanOrEqual(0);
      expect(body.model.depth).toBeGreaterThanOrEqual(1);
    }
    // The comparison has content: several documents per query, yet not every document for every query.
    expect(compared).toBeGreaterThan(2 * QUERIES.length);
    expect(compared).toBeLessThan(documents.length * QUERIES.length);
  });

  it("applies a metadata filter before ranking the sparse list", async () => {
    const m = await model();
    const h = await seeded();
    const inGroup = new Set(documents.filter((d) => d.metadata.group === 1).map((d) => d.id));
    const expected = await reference(h, (id) => inGroup.has(id));
    for (const query of QUERIES.slice(0, 2)) {
      const body = await search(h, { query, mode: "sparse", topK: 20, filter: { group: 1 } });
      expectSameRanking(body.results, expected.search(await queryTerms(m, query), 20));
      expect(body.results.length).toBeGreaterThan(0);
    }
  });

  it("hybrid fuses the sparse list in: ranks.sparse, shard.sparseMs, and the sparse weight alone orders by it", async () => {
    const m = await model();
    const h = await seeded();
    const query = QUERIES[0]!;
    const hybrid = await search(h, { query, topK: 30 });
    expect(hybrid.results.some((r) => r.ranks.sparse !== undefined)).toBe(true);
    expect(hybrid.results.some((r) => r.ranks.dense !== undefined && r.ranks.lexical !== undefined)).toBe(true);
    expect(hybrid.timings.stages).toHaveProperty("shard.sparseMs");
    const sparseOnly = await search(h, { query, mode: "sparse", topK: 30 });
    // Weighted alone, the sparse list's documents come first, in its order, the other lists' hits after them.
    const weighted = await search(h, { query, topK: 30, weights: { dense: 0, lexical: 0, sparse: 1 } });
    const led = weighted.results.slice(0, sparseOnly.results.length);
    expect(led.map((r) => r.id)).toEqual(sparseOnly.results.map((r) => r.id));
    expect(led.map((r) => r.ranks.sparse)).toEqual(sparseOnly.results.map((_, i) => i + 1));
    // A sparse weight of 0 keeps it out of the score: the ranking moves (this query's sparse list is not empty).
    const without = await search(h, { query, topK: 30, weights: { sparse: 0 } });
    expect(without.results.map((r) => r.id)).not.toEqual(hybrid.results.map((r) => r.id));
    expect(m.sparse).toBeDefined();
  });

  it("a fusion tuned with the sparse list: hybrid fuses with its three weights, a search without the list gets its two-list tuning", async () => {
    const fusion = {
      method: "convex" as const,
      weights: { lexical: 0.2, dense: 0.2, sparse: 0.6 },
      withoutSparse: { method: "rrf" as const, weights: { lexical: 0.3, dense: 0.7 }, ndcg10: 0.5 },
      tunedOn: { dataset: "fixture", split: "train", queries: 30, ndcg10: 0.5, lexicalOnly: 0.4, denseOnly: 0.3, sparseOnly: 0.45, date: "2026-11-27" },
    };
    const tuned = await createEdgeModel({ ...fixtureSparseBundle, manifest: { ...fixtureSparseBundle.manifest, retrieval: { fusion } } });
    const h = await harness({ model: tuned });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    const health = await json<{ model: { fusion: Record<string, unknown> } }>(await h.request("/v1/health"));
    expect(health.model.fusion).toMatchObject({ method: "convex", weights: fusion.weights, withoutSparse: { method: "rrf", weights: fusion.withoutSparse.weights } });
    const query = QUERIES[0]!;
    const scored = (body: SearchBody) => body.results.map((r) => [r.id, r.score]);
    // The default is the three-list tuning…
    const byDefault = await search(h, { query, topK: 30, rerank: false });
    expect(byDefault.results.some((r) => r.ranks.sparse !== undefined)).toBe(true);
    expect(scored(byDefault)).toEqual(scored(await search(h, { query, topK: 30, rerank: false, fusion: "convex", weights: fusion.weights })));
    // …and a search that leaves the sparse list out gets the two-list tuning, method included (RRF here), not the
    // three-list weights without their third.
    const withoutList = await search(h, { query, topK: 30, rerank: false, weights: { sparse: 0 } });
    expect(withoutList.results.every((r) => r.ranks.sparse === undefined)).toBe(true);
    const twoListTuning = await search(h, { query, topK: 30, rerank: false, fusion: "rrf", weights: { ...fusion.withoutSparse.weights, sparse: 0 } });
    expect(scored(withoutList)).toEqual(scored(twoListTuning));
    const threeListRatio = await search(h, { query, topK: 30, rerank: false, fusion: "convex", weights: { lexical: 0.2, dense: 0.2, sparse: 0 } });
    expect(scored(withoutList)).not.toEqual(scored(threeListRatio));
  });

  it("caches the query's sparse terms with its vector: a repeat is a hit, ranks the same and runs no model", async () => {
    const h = await seeded();
    const query = `vector search ${crypto.randomUUID().slice(0, 4).replace(/[0-9]/g, "a")}`;
    const first = await search(h, { query, mode: "sparse", topK: 20 });
    expect(first.timings.cache).toBe("miss");
    const calls = h.embedder.calls;
    const again = await search(h, { query, mode: "sparse", topK: 20 });
    expect(again.timings.cache).toBe("hit");
    expect(h.embedder.calls).toBe(calls);
    expect(again.results).toEqual(first.results);
    // Hybrid shares the entry (same routing), and reads its sparse terms from it.
    const hybrid = await search(h, { query, topK: 20 });
    expect(hybrid.timings.cache).toBe("hit");
    expect(hybrid.results.some((r) => r.ranks.sparse !== undefined)).toBe(true);
    expect(h.embedder.calls).toBe(calls);
  });

  it("an entry cached without sparse terms is a miss for a search that needs them", async () => {
    const h = await seeded();
    const query = "edge model query";
    const { queryCacheKey } = await import("../../workers/edge/src/embed-cache.js");
    const key = await queryCacheKey(`${h.model.info.name}@${h.model.info.version}`, 128, "auto", normalize(query), "hybrid", "edge");
    await h.deps.cache.put(key, { vector: new Float32Array(128).fill(1 / Math.sqrt(128)), depth: 1, route: "easy", earlyExit: false });
    const calls = h.embedder.calls;
    const body = await search(h, { query, mode: "sparse", topK: 5 });
    expect(body.timings.cache).toBe("miss");
    expect(h.embedder.calls).toBe(calls + 1);
    expect((await h.deps.cache.get(key))?.sparse?.length).toBeGreaterThan(0);
  });
});

/**
 * The bundled model with its sparse graph left out of the bundle: what `npm run bundle` makes of an artifact without
 * the head (the loader enables the list only when the graph is there), with every other part real.
 */
async function withoutSparseGraph(): Promise<LoadedEdgeModel> {
  const bundled = await import("../../workers/edge/src/bundled-model.js");
  const files = Object.fromEntries(Object.entries(bundled.files).filter(([file]) => !file.endsWith("/sparse.onnx")));
  return createEdgeModel({ ...bundled, files });
}

describe("a model without the sparse head", () => {
  it("answers mode sparse and a sparse weight with 400, stores no sparse postings, and keeps its two-list hybrid", async () => {
    const h = await harness({ model: await withoutSparseGraph() });
    expect(h.model.sparse).toBeUndefined();
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: documents.slice(0, 10) } })).status).toBe(200);
    expect((await storedPostings(h)).size).toBe(0);

    const byMode = await h.request("/v1/search", { method: "POST", json: { query: "edge", mode: "sparse" } });
    expect(byMode.status).toBe(400);
    const modeError = (await json<{ error: { code: string; message: string; param?: string } }>(byMode)).error;
    expect(modeError).toMatchObject({ code: "invalid_request", param: "mode" });
    expect(modeError.message).toMatch(/has no sparse head/);
    const byWeight = await h.request("/v1/search", { method: "POST", json: { query: "edge", weights: { sparse: 0.5 } } });
    expect(byWeight.status).toBe(400);
    expect((await json<{ error: { param?: string } }>(byWeight)).error.param).toBe("weights.sparse");
    const badWeight = await h.request("/v1/search", { method: "POST", json: { query: "edge", weights: { sparse: -1 } } });
    expect((await json<{ error: { message: string } }>(badWeight)).error.message).toMatch(/weights\.sparse: weights must be ≥ 0/);

    const hybrid = await search(h, { query: "fast vector search", topK: 10 });
    expect(hybrid.results.length).toBeGreaterThan(0);
    expect(hybrid.results.every((r) => r.ranks.sparse === undefined)).toBe(true);
    expect(hybrid.timings.stages).not.toHaveProperty("shard.sparseMs");
    // A zero sparse weight asks for nothing the model lacks, and changes nothing.
    const zero = await search(h, { query: "fast vector search", topK: 10, weights: { sparse: 0 } });
    expect(zero.results).toEqual(hybrid.results);
    expect((await json<{ model: Record<string, unknown> }>(await h.request("/v1/health"))).model).not.toHaveProperty("sparse");
  });
});

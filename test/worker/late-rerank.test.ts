/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * The late-interaction rerank stage end to end in workerd: a model with a trained late head (the committed random-
 * weight taesr-late fixture, real exporter, onnxruntime-web) makes the indexer store every document's int8 token matrix
 * beside its other traces (replaced and deleted with them, in each shard's SQLite), and a hybrid search reranks the
 * fused top k by MaxSim fused with the hybrid score: on or off per request, on by default only with a tuned late
 * fusion in the manifest, with its stage timings, and with pages that tile one reranked ranking. A model without a
 * head, or another mode, answers an explicit rerank with 400.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ArtifactManifest } from "../../src/model/index.js";
import type { IndexShard } from "../../workers/edge/src/index-shard.js";
import { createEdgeModel, type LoadedEdgeModel } from "../../workers/edge/src/model-loader.js";
import { ShardStore } from "../../workers/edge/src/shard-store.js";
import { shardTables, writeLegacyShard } from "./support/legacy-shard-schema.js";
import type { PreparedDocument } from "../../workers/edge/src/shard-api.js";
import { harness, json, type Harness } from "./support/edge-harness.js";
import { fixtureBundle, fixtureLateBundle } from "./support/fixture-model.js";

const WORDS = ["the", "edge", "model", "query", "fast", "vector", "search", "how", "what", "is", "of", "and", "to", "in"];

/** 30 documents of fixture-vocabulary words (every one shares some word with the queries below). */
const documents = Array.from({ length: 30 }, (_, i) => ({
  id: `doc-${String(i).padStart(2, "0")}`,
  title: `${WORDS[i % WORDS.length]} ${WORDS[(i * 3 + 1) % WORDS.length]}`,
  text: Array.from({ length: 4 + (i % 7) }, (_, j) => WORDS[(i * 5 + j * 3) % WORDS.length]).join(" "),
}));

const tunedLate = {
  k: 20,
  weights: { first: 0.6, late: 0.4 },
  tunedOn: {
    dataset: "fixture",
    split: "train",
    queries: 30,
    ndcg10: 0.5,
    firstStageOnly: 0.45,
    lateOnly: 0.3,
    fusion: { method: "convex" as const, weights: { lexical: 0.7, dense: 0.3 } },
    date: "2026-01-01",
  },
};

function lateModel(late?: typeof tunedLate): Promise<LoadedEdgeModel> {
  const manifest = late ? ({ ...fixtureLateBundle.manifest, retrieval: { late } } as ArtifactManifest) : fixtureLateBundle.manifest;
  return createEdgeModel({ ...fixtureLateBundle, manifest });
}

async function seeded(late?: typeof tunedLate): Promise<Harness> {
  const h = await harness({ model: await lateModel(late) });
  expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
  return h;
}

interface SearchBody {
  results: { id: string; title: string; score: number; ranks: { dense?: number; lexical?: number; late?: number } }[];
  page: { hasMore: boolean };
  timings: { stages: Record<string, number> };
}

async function search(h: Harness, body: Record<string, unknown>): Promise<SearchBody> {
  const response = await h.request("/v1/search", { method: "POST", json: { query: "fast vector search at the edge", ...body } });
  expect(response.status, await response.clone().text()).toBe(200);
  return json<SearchBody>(response);
}

/** Token-matrix rows per document id over every shard of a harness, read straight from SQLite. */
async function storedTokens(h: Harness): Promise<Map<string, { count: number; dims: number; bytes: number }>> {
  const out = new Map<string, { count: number; dims: number; bytes: number }>();
  for (const name of h.shardNames) {
    const stub = env.INDEX.get(env.INDEX.idFromName(name)) as DurableObjectStub<IndexShard>;
    const rows = await runInDurableObject(stub, (_instance, state) =>
      state.storage.sql
        .exec<{ doc_id: string; count: number; dims: number; bytes: number }>(
          "SELECT doc_id, count, dims, length(codes) + length(scales) AS bytes FROM token_matrices",
        )
        .toArray(),
    );
    for (const row of rows) out.set(row.doc_id, { count: row.count, dims: row.dims, bytes: row.bytes });
  }
  return out;
}

describe("late-interaction rerank: storage", () => {
  it("stores each document's int8 token matrix with a late-head model, and deletes it with the document", async () => {
    const h = await seeded();
    const stored = await storedTokens(h);
    expect([...stored.keys()].sort()).toEqual(documents.map((d) => d.id).sort());
    for (const { count, dims, bytes } of stored.values()) {
      expect(dims).toBe(8);
      expect(count).toBeGreaterThan(0);
      expect(bytes).toBe(count * dims + 4 * count); // int8 codes + one float32 scale per token
    }
    expect((await h.request("/v1/documents/doc-03", { method: "DELETE" })).status).toBe(200);
    const after = await storedTokens(h);
    expect(after.has("doc-03")).toBe(false);
    expect(after.size).toBe(documents.length - 1);
  });

  it("stores none with a model that has no late head", async () => {
    const h = await harness({ model: await createEdgeModel(fixtureBundle) });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: documents.slice(0, 5) } })).status).toBe(200);
    expect((await storedTokens(h)).size).toBe(0);
  });

  it("replaces the matrix with the document, drops it when the new version has none, and skips unchanged ones", async () => {
    const stub = env.INDEX.get(env.INDEX.idFromName(`late-shard-${crypto.randomUUID()}`)) as DurableObjectStub<IndexShard>;
    const tokens = (count: number, fill: number) => ({ count, dims: 2, data: new Int8Array(count * 2).fill(fill), scales: new Float32Array(count).fill(0.01) });
    const doc = (contentHash: string, extra: Partial<PreparedDocument> = {}): PreparedDocument => ({
      id: "a",
      title: "",
      text: "edge",
      metadataJson: null,
      contentHash,
      modelVersion: "m1",
      vector: Float32Array.of(1, 0),
      terms: [["edge", 1]],
      length: 1,
      ...extra,
    });
    await stub.upsert([doc("h1", { tokens: tokens(3, 5) })]);
    let got = (await stub.tokenMatrices(["a", "missing"], "m1"))["a"]!;
    expect(got.count).toBe(3);
    expect(Array.from(got.data)).toEqual([5, 5, 5, 5, 5, 5]);
    expect(got.scales[0]).toBeCloseTo(0.01, 6);
    // Another model version's head is another space: not returned for this query's version.
    expect(await stub.tokenMatrices(["a"], "m2")).toEqual({});
    expect(await stub.upsert([doc("h1", { tokens: tokens(1, 9) })])).toEqual({ upserted: [], unchanged: ["a"] });
    await stub.upsert([doc("h2", { tokens: tokens(2, -7) })]);
    got = (await stub.tokenMatrices(["a"], "m1"))["a"]!;
    expect(Array.from(got.data)).toEqual([-7, -7, -7, -7]);
    await stub.upsert([doc("h3")]);
    expect(await stub.tokenMatrices(["a"], "m1")).toEqual({});
    await stub.upsert([doc("h4", { tokens: tokens(1, 1) })]);
    expect(await stub.deleteMany(["a"])).toEqual({ deleted: ["a"], missing: [] });
    const left = await runInDurableObject(stub, (_i, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM token_matrices").one().n);
    expect(left).toBe(0);
    // Called inside the object: an error thrown across RPC would also surface as an unhandled rejection in the pool.
    const malformed = doc("h5", { tokens: { ...tokens(2, 1), scales: new Float32Array(1) } });
    await runInDurableObject(stub, (instance) => expect(() => instance.upsert([malformed])).toThrow(/malformed token matrix/));
  });

  it("migrates a schema-v1 database: its documents stay searchable and the token table appears", async () => {
    const stub = env.INDEX.get(env.INDEX.idFromName(`late-migrate-${crypto.randomUUID()}`)) as DurableObjectStub<IndexShard>;
    const tables = await runInDurableObject(stub, (_i, state) => {
      writeLegacyShard(state.storage.sql, 1, [{ id: "old", text: "edge", modelVersion: "m1", vector: Float32Array.of(1, 0), terms: [["edge", 1]] }]);
      new ShardStore(state.storage.sql, (closure) => state.storage.transactionSync(closure)); // the next object start
      return shardTables(state.storage.sql);
    });
    expect(tables).toEqual(["documents", "token_matrices"]);
    expect((await stub.get("old"))?.id).toBe("old");
    expect(await stub.tokenMatrices(["old"], "m1")).toEqual({});
    expect((await stub.candidates({ lists: { dense: false, lexical: true }, depth: 10, terms: ["edge"] })).lexical?.map((hit) => hit.id)).toEqual(["old"]);
  });
});

describe("late-interaction rerank: search", () => {
  it("reranks on request: ranks.late and the rerank timings appear; off, neither does", async () => {
    const h = await seeded();
    const off = await search(h, { topK: 10 });
    expect(off.results.every((r) => r.ranks.late === undefined)).toBe(true);
    expect(off.timings.stages.rerankMs).toBeUndefined();

    const on = await search(h, { topK: 10, rerank: true });
    expect(on.results).toHaveLength(10);
    expect(on.results.every((r) => typeof r.ranks.late === "number")).toBe(true);
    expect(on.timings.stages).toHaveProperty("rerankFetchMs");
    expect(on.timings.stages).toHaveProperty("rerankMs");
    for (let i = 1; i < on.results.length; i++) expect(on.results[i]!.score).toBeLessThanOrEqual(on.results[i - 1]!.score);
    // MaxSim alone (weight 1) orders the prefix by ranks.late.
    const lateOnly = await search(h, { topK: 10, rerank: { k: 10, weight: 1 } });
    expect(lateOnly.results.map((r) => r.ranks.late)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    // Weight 0 keeps the hybrid order.
    expect((await search(h, { topK: 10, rerank: { weight: 0 } })).results.map((r) => r.id)).toEqual(off.results.map((r) => r.id));
  });

  it("pages tile one reranked ranking: the top k is reranked once, whatever the page", async () => {
    const h = await seeded();
    const rerank = { k: 12, weight: 0.7 };
    const whole = await search(h, { topK: 25, rerank });
    const pages: string[] = [];
    for (let offset = 0; offset < 25; offset += 5) pages.push(...(await search(h, { topK: 5, offset, rerank })).results.map((r) => r.id));
    expect(pages).toEqual(whole.results.map((r) => r.id));
    // Past k the ranking continues in hybrid order, without late ranks.
    expect(whole.results.slice(0, 12).every((r) => r.ranks.late !== undefined)).toBe(true);
    expect(whole.results.slice(12).every((r) => r.ranks.late === undefined)).toBe(true);
    // A page wholly past k: the rerank cannot change it, so no token matrix is fetched.
    const past = await search(h, { topK: 5, offset: 15, rerank });
    expect(past.timings.stages.rerankFetchMs).toBeUndefined();
    expect(past.timings.stages).toHaveProperty("fieldsMs");
  });

  it("fetches a page's fields with the token matrices when the page lies within the top k, and the ranking is the same", async () => {
    const h = await seeded();
    const rerank = { k: 10, weight: 0.7 };
    // Page = the top k: one round trip brings the matrices and the fields.
    const together = await search(h, { topK: 10, rerank });
    expect(together.timings.stages).toHaveProperty("rerankFetchMs");
    expect(together.timings.stages.fieldsMs).toBeUndefined();
    expect(together.results).toHaveLength(10);
    // Page of 2 out of a top 10: fetching ten documents' fields for two is more than twice the page, so the fields
    // come afterwards, for the page alone — the same documents, fields and order as the first two above.
    const apart = await search(h, { topK: 2, rerank });
    expect(apart.timings.stages).toHaveProperty("rerankFetchMs");
    expect(apart.timings.stages).toHaveProperty("fieldsMs");
    expect(apart.results).toEqual(together.results.slice(0, 2));
    const titles = new Map(documents.map((d) => [d.id, d.title]));
    for (const result of together.results) expect(result.title).toBe(titles.get(result.id));
  });

  it("is on by default only when the manifest ships a tuned late fusion (hybrid mode)", async () => {
    const tuned = await seeded(tunedLate);
    const byDefault = await search(tuned, { topK: 25 });
    expect(byDefault.results.filter((r) => r.ranks.late !== undefined)).toHaveLength(tunedLate.k);
    expect((await search(tuned, { topK: 10, rerank: false })).results.every((r) => r.ranks.late === undefined)).toBe(true);
    expect((await search(tuned, { topK: 10, mode: "dense" })).results.every((r) => r.ranks.late === undefined)).toBe(true);
    expect(tuned.model.late).toMatchObject({ source: "manifest", k: 20, weights: { first: 0.6, late: 0.4 } });
  });

  it("answers an explicit rerank it cannot honour with 400: no late head, or not hybrid mode", async () => {
    const plain = await harness({ model: await createEdgeModel(fixtureBundle) });
    const noHead = await plain.request("/v1/search", { method: "POST", json: { query: "edge", rerank: true } });
    expect(noHead.status).toBe(400);
    const body = await json<{ error: { code: string; message: string; param?: string } }>(noHead);
    expect(body.error).toMatchObject({ code: "invalid_request", param: "rerank" });
    expect(body.error.message).toMatch(/has no late-interaction head/);
    // Off (explicitly or by default) is fine for such a model.
    expect((await plain.request("/v1/search", { method: "POST", json: { query: "edge", rerank: false } })).status).toBe(200);

    const h = await seeded();
    const dense = await h.request("/v1/search", { method: "POST", json: { query: "edge", mode: "dense", rerank: true } });
    expect(dense.status).toBe(400);
    expect((await json<{ error: { message: string } }>(dense)).error.message).toMatch(/hybrid mode/);
    const badK = await h.request("/v1/search", { method: "POST", json: { query: "edge", rerank: { k: 101 } } });
    expect(badK.status).toBe(400);
    expect((await json<{ error: { message: string } }>(badK)).error.message).toMatch(/rerank\.k must be at most 100/);
  });
});

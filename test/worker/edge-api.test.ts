/**
 * The edge API end to end inside workerd: Hono routes → search/indexing services → the real IndexShard Durable Object
 * (SQLite), the real KV embedding cache and the bundled model (see support/edge-harness.ts). The assertions hold for
 * any trained artifact, so re-bundling a better model never breaks them: rankings are checked only where the lexical
 * side decides them, and dense-side checks use topK ≥ corpus size (presence, not order).
 */
import { describe, expect, it } from "vitest";
import { fusionDefaultOf } from "../../workers/edge/src/search-service.js";
import { harness, json, type Harness } from "./support/edge-harness.js";

interface SearchBody {
  results: { id: string; score: number; title: string; snippet: string; metadata: unknown; ranks: { dense?: number; lexical?: number; sparse?: number; late?: number } }[];
  page: { offset: number; topK: number; hasMore: boolean; nextOffset: number | null };
  model: { version: string; dims: number; depth: number; route: string; earlyExit: boolean; cached: boolean };
  timings: { embedMs: number; searchMs: number; totalMs: number; cache: string; stages: Record<string, number> };
}
interface ErrorBody {
  error: { code: string; message: string; issues?: { path: string; message: string }[] };
}

const documents = [
  {
    id: "lighthouse",
    title: "Keepers of the lighthouse",
    text: "The lighthouse keeper trimmed the wick and wound the clockwork that turned the great lens every night.",
    metadata: { topic: "history", year: 1890 },
  },
  { id: "glacier", title: "Glaciers carve valleys", text: "Over thousands of years a glacier grinds the bedrock beneath it and leaves a U-shaped valley behind." },
  { id: "espresso", title: "Pulling an espresso shot", text: "Finely ground coffee is tamped into the basket and hot water is forced through it at nine bars of pressure." },
];

async function seeded(): Promise<Harness> {
  const h = await harness();
  const response = await h.request("/v1/documents", { method: "POST", json: { documents } });
  expect(response.status).toBe(200);
  return h;
}

async function searchIds(h: Harness, query: string, extra: Record<string, unknown> = {}): Promise<string[]> {
  const response = await h.request("/v1/search", { method: "POST", json: { query, topK: 100, ...extra } });
  expect(response.status).toBe(200);
  return (await json<SearchBody>(response)).results.map((r) => r.id);
}

async function expectError(response: Response, status: number, code: string, message?: RegExp): Promise<ErrorBody> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toContain("application/json");
  const body = await json<ErrorBody>(response);
  expect(body.error.code).toBe(code);
  if (message) expect(body.error.message).toMatch(message);
  return body;
}

describe("POST /v1/search", () => {
  it("returns results with ranks, model facts and timings", async () => {
    const h = await seeded();
    const response = await h.request("/v1/search", { method: "POST", json: { query: "lighthouse keeper wick", topK: 2 } });
    expect(response.status).toBe(200);
    const body = await json<SearchBody>(response);
    // The dense list takes part unless the model's tuned default weighs it 0: fusion then leaves it out (ranks too),
    // and only documents sharing a word piece with the query can be returned.
    // A zero dense weight keeps the dense list out of the score, but its hits still follow the lexical ones.
    expect(body.results).toHaveLength(2);
    expect(body.results[0]).toMatchObject({
      id: "lighthouse",
      title: "Keepers of the lighthouse",
      metadata: { topic: "history", year: 1890 },
    });
    expect(body.results[0]!.ranks.lexical).toBe(1);
    expect(body.results[0]!.ranks.dense).toBeGreaterThanOrEqual(1);
    expect(body.results[0]!.snippet).toContain("lighthouse keeper trimmed the wick");
    expect(body.model).toMatchObject({ version: h.model.info.version, dims: 128, cached: false });
    expect(["easy", "medium", "hard"]).toContain(body.model.route);
    expect(body.model.depth).toBeGreaterThanOrEqual(1);
    expect(body.timings.cache).toBe("miss");
    for (const key of ["embedMs", "searchMs", "totalMs"] as const) expect(body.timings[key]).toBeGreaterThanOrEqual(0);
    // Per-stage timings of the index: the corpus statistics, the shards' fan-out, fusion, the page's fields (timed
    // with the token matrices when the default rerank fetched both in one round trip).
    for (const stage of ["statsMs", "shardsMs", "fuseMs", "shard.denseMs", "shard.lexicalMs"]) {
      expect(body.timings.stages[stage]).toBeGreaterThanOrEqual(0);
    }
    expect(body.timings.stages.fieldsMs ?? body.timings.stages.rerankFetchMs).toBeGreaterThanOrEqual(0);
    expect(body.page).toEqual({ offset: 0, topK: 2, hasMore: true, nextOffset: 2 });
  });

  it("filters by metadata before ranking and pages through the ranking", async () => {
    const h = await harness();
    const many = Array.from({ length: 12 }, (_, i) => ({
      id: `tide-${i}`,
      title: `Tide table ${i}`,
      text: `High tide and low tide times for harbour ${i}, with the moon's phase.`,
      metadata: { region: i % 3 === 0 ? "north" : "south", year: 2000 + i, source: { site: i < 6 ? "almanac" : "port" } },
    }));
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: many } })).status).toBe(200);

    const north = await searchIds(h, "tide times", { filter: { region: "north" } });
    expect(north.sort()).toEqual(["tide-0", "tide-3", "tide-6", "tide-9"]);
    const recentPort = await searchIds(h, "tide times", { filter: { "source.site": "port", year: { $gte: 2010 } } });
    expect(recentPort.sort()).toEqual(["tide-10", "tide-11"]);
    const either = await searchIds(h, "tide times", { filter: { $or: [{ year: 2001 }, { year: { $in: [2004, 2007] } }] } });
    expect(either.sort()).toEqual(["tide-1", "tide-4", "tide-7"]);

    const whole = await searchIds(h, "tide times");
    const pages: string[] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const response = await h.request("/v1/search", { method: "POST", json: { query: "tide times", topK: 5, offset } });
      const body = await json<SearchBody>(response);
      expect(body.page.offset).toBe(offset);
      pages.push(...body.results.map((r) => r.id));
      offset = body.page.nextOffset;
    }
    expect(pages).toEqual(whole);
    expect(pages).toHaveLength(12);
  });

  it("rejects malformed filters and pages past the deepest one, saying what is wrong", async () => {
    const h = await harness();
    const post = (body: unknown) => h.request("/v1/search", { method: "POST", json: { query: "ok", ...(body as object) } });
    await expectError(await post({ filter: "region=north" }), 400, "invalid_request", /filter must be an object/);
    await expectError(await post({ filter: { region: { $like: "n%" } } }), 400, "invalid_request", /\$like/);
    await expectError(await post({ filter: { $not: { region: "north" } } }), 400, "invalid_request", /unknown filter operator "\$not"/);
    await expectError(await post({ filter: { "region[0]": "north" } }), 400, "invalid_request", /not a metadata path/);
    await expectError(await post({ filter: { year: { $gt: true } } }), 400, "invalid_request", /\$gt, \$gte, \$lt and \$lte take a number or a string/);
    await expectError(await post({ filter: { $or: [] } }), 400, "invalid_request", /\$or takes a non-empty array/);
    await expectError(await post({ filter: { tags: ["a"] } }), 400, "invalid_request", /filter values must be/);
    const deep = { $and: [{ $and: [{ $and: [{ $and: [{ a: 1 }] }] }] }] };
    await expectError(await post({ filter: deep }), 400, "invalid_request", /at most 4 deep/);
    await expectError(await post({ offset: -1 }), 400, "invalid_request", /offset must be ≥ 0/);
    await expectError(await post({ offset: 95, topK: 10 }), 400, "invalid_request", /offset \+ topK must be at most 100/);
  });

  it("answers a repeated query from the KV cache without calling the model", async () => {
    const h = await seeded();
    const query = `glacier bedrock ${crypto.randomUUID()}`;
    // Reranked, so the cached entry must carry the query's token vectors too (asked for: whether the bundled model
    // reranks by default depends on its tuned late weight).
    const reranked = { query, rerank: { weight: 0.5 } };
    const first = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: reranked }));
    const callsAfterFirst = h.embedder.calls;
    expect(first.timings.cache).toBe("miss");
    expect(first.results.some((r) => r.ranks.late !== undefined), "the search reranked").toBe(true);

    const second = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: reranked }));
    expect(second.timings.cache).toBe("hit");
    expect(second.model.cached).toBe(true);
    expect(second.model.depth).toBe(first.model.depth);
    expect(second.model.route).toBe(first.model.route);
    expect(second.results).toEqual(first.results);
    expect(h.embedder.calls).toBe(callsAfterFirst);

    // The key is the normalised query: case and spacing do not matter…
    const respelled = await json<SearchBody>(
      await h.request("/v1/search", { method: "POST", json: { query: `  ${query.toUpperCase()}  ` } }),
    );
    expect(respelled.timings.cache).toBe("hit");
    // …but dims and depth do.
    const other = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query, dims: 64 } }));
    expect(other.timings.cache).toBe("miss");
    expect(h.embedder.calls).toBe(callsAfterFirst + 1);
    // …and so does the ranking it is embedded for: a router labelled on hybrid retrieval routes dense-only queries by
    // its length rule (encoder.ts `ranking`), so a dense search never reuses a hybrid search's vector.
    const denseOnly = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query, mode: "dense" } }));
    expect(denseOnly.timings.cache).toBe("miss");
    const denseAgain = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query, mode: "dense" } }));
    expect(denseAgain.timings.cache).toBe("hit");
    expect(h.embedder.calls).toBe(callsAfterFirst + 2);
    // …and so does the model's name, not only its version: two models may share a version, and live model updates
    // can serve either from one KV namespace.
    const namesake = await harness({ model: { ...h.model, info: { ...h.model.info, name: `${h.model.info.name}-other` } } });
    const otherModel = await json<SearchBody>(await namesake.request("/v1/search", { method: "POST", json: { query } }));
    expect(otherModel.timings.cache).toBe("miss");
  });

  it("serves dense-only, lexical-only (no model call) and 64-d searches", async () => {
    const h = await seeded();
    const dense = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query: "coffee", mode: "dense", topK: 3 } }));
    expect(dense.results).toHaveLength(3);
    expect(dense.results.every((r) => r.ranks.dense !== undefined && r.ranks.lexical === undefined)).toBe(true);

    const calls = h.embedder.calls;
    const lexical = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query: "nine bars of pressure", mode: "lexical" } }));
    expect(lexical.results[0]!.id).toBe("espresso");
    expect(lexical.results.every((r) => r.ranks.lexical !== undefined && r.ranks.dense === undefined)).toBe(true);
    expect(lexical.model).toMatchObject({ depth: 0, route: "none", cached: false });
    expect(lexical.timings.cache).toBe("none");
    expect(h.embedder.calls).toBe(calls);

    const small = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query: "glacier", dims: 64, depth: 1 } }));
    expect(small.model).toMatchObject({ dims: 64, route: "fixed" });
    expect(small.model.depth).toBeLessThanOrEqual(1);
    expect(small.results.map((r) => r.id)).toContain("glacier");
  });

  it("takes the fusion and its weights per request", async () => {
    const h = await seeded();
    // The fused scores themselves, so without a late rerank (which a bundled model with a tuned late weight applies by default).
    const search = async (extra: Record<string, unknown>) =>
      json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query: "glacier", rerank: false, ...extra } }));
    // The default reads the learned sparse list exactly when the bundled model has the head and its tuned weight for
    // the list is above 0 (taesr-edge-small@0.4.0: 0.3); otherwise it is the two-list fusion.
    const defaults = await search({});
    const readsSparse = h.model.sparse !== undefined && (h.model.fusion?.weights.sparse ?? h.model.fusion?.weights.lexical ?? 0.7) > 0;
    expect(defaults.results.some((r) => r.ranks.sparse !== undefined)).toBe(readsSparse);
    expect(Object.keys(defaults.timings.stages).includes("shard.sparseMs")).toBe(readsSparse);
    // Convex (the default), BM25 alone (sparse 0 keeps the learned list out): the lexical top hit normalises to 1, times its weight 1.
    const convex = await search({ weights: { dense: 0, lexical: 1, sparse: 0 } });
    expect(convex.results.every((r) => r.ranks.sparse === undefined)).toBe(true);
    expect(convex.timings.stages).not.toHaveProperty(["shard.sparseMs"]);
    expect(convex.results[0]!.id).toBe("glacier");
    expect(convex.results[0]!.score).toBeCloseTo(1, 10);
    // Dense weight 0: documents without the word follow, scored by the lexical fill alone, never above a lexical hit.
    expect(convex.results.filter((r) => r.ranks.lexical !== undefined).map((r) => r.id)).toEqual(["glacier"]);
    expect(convex.results.slice(1).every((r) => r.ranks.lexical === undefined && r.ranks.dense !== undefined)).toBe(true);
    expect(await search({ fusion: "convex", weights: { dense: 0, lexical: 1, sparse: 0 } })).toMatchObject({ results: convex.results });
    // RRF: 1/(60 + 1).
    const rrf = await search({ fusion: "rrf", weights: { dense: 0, lexical: 1, sparse: 0 } });
    expect(rrf.results[0]!.id).toBe("glacier");
    expect(rrf.results[0]!.score).toBeCloseTo(1 / 61, 10);
    expect(rrf.results.slice(1).every((r) => r.score === 0 && r.ranks.lexical === undefined)).toBe(true);
  });

  it("puts the document a phrase comes from first in hybrid mode, whatever the dense side says", async () => {
    const h = await seeded();
    const phrases = { lighthouse: "wound the clockwork", glacier: "a U-shaped valley", espresso: "nine bars of pressure" };
    // Convex fusion keeps the lexical winner on top when the runner-up's BM25 is under (1 − dense/lexical) of its own:
    // at lexical 0.7 / dense 0.3 that is 4/7 (0.7 · (1 − 4/7) = 0.3, the most dense can add). The bundled model's
    // tuned default (three lists) promises nothing of the kind, so the weights are the request's, without rerank.
    const weights = { lexical: 0.7, dense: 0.3, sparse: 0 };
    const margin = 1 - weights.dense / weights.lexical;
    for (const [id, query] of Object.entries(phrases)) {
      const lexical = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query, mode: "lexical" } }));
      expect(lexical.results[0]!.id).toBe(id);
      expect(lexical.results[1]?.score ?? 0).toBeLessThan(Math.min(4 / 7, margin) * lexical.results[0]!.score);
      const hybrid = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query, fusion: "convex", weights, rerank: false } }));
      expect(hybrid.results[0]).toMatchObject({ id, ranks: { lexical: 1 } });
    }
  });

  it("returns no results from an empty index", async () => {
    const h = await harness();
    const body = await json<SearchBody>(await h.request("/v1/search", { method: "POST", json: { query: "anything at all" } }));
    expect(body.results).toEqual([]);
  });

  it("rejects bad input with a 4xx JSON error naming the problem", async () => {
    const h = await harness();
    const post = (body: unknown) => h.request("/v1/search", { method: "POST", json: body });
    await expectError(await post({ query: 42 }), 400, "invalid_request", /query: query must be a string/);
    await expectError(await post({}), 400, "invalid_request", /query is required/);
    await expectError(await post({ query: "   " }), 400, "invalid_request", /query must contain some text/);
    await expectError(await post({ query: "x".repeat(2001) }), 400, "invalid_request", /at most 2000 characters/);
    await expectError(await post({ query: "ok", topK: 0 }), 400, "invalid_request", /topK: topK must be at least 1/);
    await expectError(await post({ query: "ok", topK: 101 }), 400, "invalid_request", /topK must be at most 100/);
    await expectError(await post({ query: "ok", topK: 2.5 }), 400, "invalid_request", /whole number/);
    await expectError(await post({ query: "ok", dims: 256 }), 400, "invalid_request", /dims must be 64 or 128/);
    await expectError(await post({ query: "ok", depth: 2 }), 400, "invalid_request", /depth must be 1, 3, 6 or "auto"/);
    await expectError(await post({ query: "ok", mode: "fuzzy" }), 400, "invalid_request", /mode must be/);
    await expectError(await post({ query: "ok", fusion: "linear" }), 400, "invalid_request", /fusion: fusion must be "convex" or "rrf"/);
    await expectError(await post({ query: "ok", fusion: 1 }), 400, "invalid_request", /fusion must be "convex" or "rrf"/);
    await expectError(await post({ query: "ok", weights: { dense: -1 } }), 400, "invalid_request", /weights must be ≥ 0/);
    const typo = await expectError(await post({ query: "ok", top_k: 5 }), 400, "invalid_request", /top_k/);
    expect(typo.error.issues?.[0]?.message).toMatch(/Unrecognized key/i);
    await expectError(await post([1, 2]), 400, "invalid_request");
    await expectError(
      await h.request("/v1/search", { method: "POST", body: "{not json", headers: { "content-type": "application/json" } }),
      400,
      "invalid_json",
      /not valid JSON/,
    );
    await expectError(await h.request("/v1/search", { method: "POST" }), 400, "invalid_json", /empty/);
    await expectError(await post({ query: "x".repeat(20_000) }), 413, "payload_too_large", /exceeds 16384 bytes/);
  });
});

describe("POST /v1/embed", () => {
  it("embeds one text or a batch, L2-normalised at the requested width", async () => {
    const h = await harness();
    const one = await json<{ embeddings: number[][]; dims: number; depth: number; route: string; model: { version: string } }>(
      await h.request("/v1/embed", { method: "POST", json: { input: "lighthouse keeper" } }),
    );
    expect(one.embeddings).toHaveLength(1);
    expect(one.embeddings[0]).toHaveLength(128);
    expect(one.dims).toBe(128);
    expect(one.model.version).toBe(h.model.info.version);
    expect(Math.hypot(...one.embeddings[0]!)).toBeCloseTo(1, 4);

    const batch = await json<{ embeddings: number[][]; dims: number; depth: number; route: string }>(
      await h.request("/v1/embed", { method: "POST", json: { input: ["a glacier", "an espresso"], dims: 64, depth: 3 } }),
    );
    expect(batch.embeddings.map((v) => v.length)).toEqual([64, 64]);
    expect(batch.route).toBe("fixed");
    expect(batch.depth).toBeLessThanOrEqual(3);
    for (const vector of batch.embeddings) expect(Math.hypot(...vector)).toBeCloseTo(1, 4);
  });

  it("rejects bad input", async () => {
    const h = await harness();
    const post = (body: unknown) => h.request("/v1/embed", { method: "POST", json: body });
    await expectError(await post({ input: [] }), 400, "invalid_request", /empty array/);
    await expectError(await post({ input: Array.from({ length: 65 }, () => "x") }), 400, "invalid_request", /at most 64 texts/);
    await expectError(await post({ input: "" }), 400, "invalid_request", /input/);
    await expectError(await post({ input: 7 }), 400, "invalid_request", /input must be a string or an array of strings/);
    await expectError(await post({ input: "x", dims: 100 }), 400, "invalid_request", /dims must be 64, 128, 256 or 384/);
  });
});

describe("POST /v1/documents", () => {
  it("requires the API key", async () => {
    const h = await harness();
    const missing = await h.request("/v1/documents", { method: "POST", json: { documents }, apiKey: null });
    await expectError(missing, 401, "unauthorized", /Authorization: Bearer/);
    expect(missing.headers.get("www-authenticate")).toContain("Bearer");
    await expectError(await h.request("/v1/documents", { method: "POST", json: { documents }, apiKey: "wrong" }), 401, "unauthorized", /invalid API key/);
    await expectError(
      await h.request("/v1/documents", { method: "POST", json: { documents }, apiKey: null, headers: { authorization: "Basic dXNlcjpwYXNz" } }),
      401,
      "unauthorized",
    );
    // The key is checked before the body is read: an oversized anonymous upload is a 401, not a 413.
    const huge = JSON.stringify({ documents: [{ id: "x", text: "y".repeat(9_000_000) }] });
    await expectError(await h.request("/v1/documents", { method: "POST", body: huge, apiKey: null }), 401, "unauthorized");
    await expectError(await h.request("/v1/documents", { method: "POST", body: huge }), 413, "payload_too_large");
    expect(await searchIds(h, "lighthouse", { mode: "lexical" })).toEqual([]);
  });

  it("answers 503 when no API key is configured, rather than opening the route", async () => {
    const h = await harness({ secrets: { webhookSecret: "x" } });
    await expectError(await h.request("/v1/documents", { method: "POST", json: { documents } }), 503, "not_configured", /API_KEY/);
  });

  it("is idempotent: the same documents again are unchanged and cost no model call", async () => {
    const h = await harness();
    const first = await json(await h.request("/v1/documents", { method: "POST", json: { documents } }));
    expect(first).toEqual({ upserted: 3, unchanged: 0, ids: ["lighthouse", "glacier", "espresso"] });
    const calls = h.embedder.calls;
    const again = await json(await h.request("/v1/documents", { method: "POST", json: { documents } }));
    expect(again).toEqual({ upserted: 0, unchanged: 3, ids: ["lighthouse", "glacier", "espresso"] });
    expect(h.embedder.calls).toBe(calls);

    // Key order inside metadata is not a change.
    const reordered = documents.map((d) => (d.metadata ? { ...d, metadata: { year: 1890, topic: "history" } } : d));
    expect(await json(await h.request("/v1/documents", { method: "POST", json: { documents: reordered } }))).toMatchObject({ unchanged: 3 });
  });

  it("replaces a changed document everywhere", async () => {
    const h = await seeded();
    const changed = { id: "glacier", title: "Sourdough starters", text: "Feed the sourdough starter flour and water daily." };
    expect(await json(await h.request("/v1/documents", { method: "POST", json: { documents: [changed, documents[2]] } }))).toEqual({
      upserted: 1,
      unchanged: 1,
      ids: ["glacier", "espresso"],
    });
    // Word pieces may be shared between words, so assert on the document, not on the whole list.
    expect(await searchIds(h, "bedrock", { mode: "lexical" })).not.toContain("glacier");
    expect((await searchIds(h, "sourdough starter", { mode: "lexical" }))[0]).toBe("glacier");
    const stored = await json(await h.request("/v1/documents/glacier"));
    expect(stored).toMatchObject({ id: "glacier", title: "Sourdough starters", modelVersion: h.model.info.version, dims: 128 });
  });

  it("embeds documents in batches of at most 16", async () => {
    const h = await harness();
    const many = Array.from({ length: 40 }, (_, i) => ({ id: `doc-${i}`, text: `document number ${i} ${"word ".repeat(i % 7)}` }));
    const calls = h.embedder.calls;
    expect(await json(await h.request("/v1/documents", { method: "POST", json: { documents: many } }))).toMatchObject({ upserted: 40 });
    expect(h.embedder.calls - calls).toBe(3);
    expect(await searchIds(h, "document", { mode: "dense" })).toHaveLength(40);
  });

  it("rejects bad documents, naming which one", async () => {
    const h = await harness();
    const post = (body: unknown) => h.request("/v1/documents", { method: "POST", json: body });
    const duplicate = await expectError(await post({ documents: [documents[0], documents[0]] }), 400, "invalid_request", /duplicate id "lighthouse"/);
    expect(duplicate.error.issues?.[0]?.path).toBe("documents.1.id");
    await expectError(await post({ documents: [{ id: "a" }] }), 400, "invalid_request", /documents\.0\.text: text is required/);
    await expectError(await post({ documents: [{ id: "", text: "x" }] }), 400, "invalid_request", /id must not be empty/);
    await expectError(await post({ documents: [{ id: "a", text: "x", metadata: [1] }] }), 400, "invalid_request", /metadata/);
    await expectError(await post({ documents: [{ id: "a", text: "x", body: "y" }] }), 400, "invalid_request", /body/);
    await expectError(await post({ documents: [] }), 400, "invalid_request", /must not be empty/);
    await expectError(
      await post({ documents: Array.from({ length: 257 }, (_, i) => ({ id: `d${i}`, text: "x" })) }),
      400,
      "invalid_request",
      /at most 256 documents/,
    );
  });
});

describe("GET and DELETE /v1/documents/:id", () => {
  it("deletes a document from dense and lexical search, then answers 404", async () => {
    const h = await seeded();
    expect(await searchIds(h, "lighthouse keeper", { mode: "dense" })).toContain("lighthouse");
    expect(await searchIds(h, "lighthouse keeper", { mode: "lexical" })).toContain("lighthouse");

    await expectError(await h.request("/v1/documents/lighthouse", { method: "DELETE", apiKey: null }), 401, "unauthorized");
    const deleted = await h.request("/v1/documents/lighthouse", { method: "DELETE" });
    expect(deleted.status).toBe(200);
    expect(await json(deleted)).toEqual({ deleted: true, id: "lighthouse" });

    const dense = await searchIds(h, "lighthouse keeper", { mode: "dense" });
    expect(dense).not.toContain("lighthouse");
    expect(dense).toHaveLength(2);
    expect(await searchIds(h, "lighthouse keeper", { mode: "lexical" })).not.toContain("lighthouse");
    expect(await searchIds(h, "lighthouse keeper")).not.toContain("lighthouse");

    await expectError(await h.request("/v1/documents/lighthouse", { method: "DELETE" }), 404, "not_found", /no document with id "lighthouse"/);
    await expectError(await h.request("/v1/documents/lighthouse"), 404, "not_found");
  });

  it("reads a stored document, with ids that need URL encoding", async () => {
    const h = await harness();
    await h.request("/v1/documents", { method: "POST", json: { documents: [{ id: "a/b c", text: "slash and space" }] } });
    const response = await h.request(`/v1/documents/${encodeURIComponent("a/b c")}`);
    expect(response.status).toBe(200);
    expect(await json(response)).toMatchObject({ id: "a/b c", title: "", text: "slash and space", metadata: null });
  });
});

describe("GET /v1/health", () => {
  it("reports the model and the index size", async () => {
    const h = await seeded();
    const body = await json(await h.request("/v1/health"));
    expect(body).toEqual({
      status: "ok",
      model: {
        name: h.model.info.name,
        version: h.model.info.version,
        dims: h.model.info.dims,
        variant: h.model.info.variant,
        fusion: fusionDefaultOf(h.model),
        late: h.model.late ?? null,
        ...(h.model.sparse ? { sparse: h.model.sparse } : {}),
      },
      index: { backend: "durable-objects", shards: 3, documents: 3, modelVersions: { [h.model.info.version]: 3 } },
      origin: { configured: false },
      route: null,
    });
  });

  it("answers 503 with the reason when the model cannot load", async () => {
    const h = await harness({ loadModel: () => Promise.reject(new Error("artifact checksum mismatch")) });
    await expectError(await h.request("/v1/health"), 503, "model_unavailable", /artifact checksum mismatch/);
    await expectError(await h.request("/v1/search", { method: "POST", json: { query: "x" } }), 503, "model_unavailable");
  });
});

describe("routing", () => {
  it("answers unknown routes with 404 JSON and wrong methods with 405", async () => {
    const h = await harness();
    await expectError(await h.request("/v1/nope"), 404, "not_found", /GET \/v1\/nope/);
    const wrong = await h.request("/v1/search");
    await expectError(wrong, 405, "method_not_allowed", /accepts POST/);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect((await h.request("/v1/documents/x", { method: "PUT" })).headers.get("allow")).toBe("GET, DELETE");
  });
});

describe("GET / (search page)", () => {
  it("serves the page with a form, an inline script under a CSP nonce, and no external assets", async () => {
    const h = await harness();
    const response = await h.request("/");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const html = await response.text();
    expect(html).toContain("<form");
    const nonce = /<script nonce="([0-9a-f]+)">/.exec(html)?.[1];
    expect(nonce).toBeDefined();
    expect(response.headers.get("content-security-policy")).toContain(`'nonce-${nonce}'`);
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it("renders results on the server for ?q=, escaping document text", async () => {
    const h = await harness();
    await h.request("/v1/documents", {
      method: "POST",
      json: { documents: [{ id: "x", title: "<script>alert(1)</script> Tidal pools", text: "Tidal pools hold anemones & crabs." }] },
    });
    const html = await (await h.request("/?q=tidal%20pools&mode=lexical")).text();
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; Tidal pools");
    expect(html).not.toContain("<script>alert(1)");
    expect(html).toContain("anemones &amp; crabs");
    expect(html).toMatch(/1 result · lexical only · cache none/);
    expect(html).toContain('value="tidal pools"');
  });
});

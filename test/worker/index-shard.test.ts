/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * The IndexShard Durable Object on its real SQLite storage, called over RPC: idempotent upserts, replacement and
 * deletion of every trace (row, vector, postings), dense/lexical/hybrid ranking (through a one-shard ShardedIndex,
 * the path every search takes), model-version separation, stats. Vectors are hand-made 4-d unit vectors so every
 * expected ranking can be read off the test; dense scores are int8 dot products, equal to the cosine within ~1%.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IndexShard } from "../../workers/edge/src/index-shard.js";
import type { IndexSearchRequest } from "../../workers/edge/src/search-index.js";
import type { PreparedDocument } from "../../workers/edge/src/shard-api.js";
import { ShardedIndex } from "../../workers/edge/src/sharded-index.js";
import { mulberry32 } from "../../src/model/init.js";

const MODEL = "1.0.0-test";

function shard(): DurableObjectStub<IndexShard> {
  return env.INDEX.get(env.INDEX.idFromName(`shard-test-${crypto.randomUUID()}`));
}

/** A search of one shard through the coordinator's merge and fusion, first page. */
function search(stub: DurableObjectStub<IndexShard>, request: Omit<IndexSearchRequest, "offset"> & { offset?: number }) {
  return new ShardedIndex(["only"], () => stub).search({ offset: 0, ...request });
}

function unit(...values: number[]): Float32Array {
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / norm);
}

function doc(id: string, vector: Float32Array, words: string, overrides: Partial<PreparedDocument> = {}): PreparedDocument {
  const counts = new Map<string, number>();
  for (const word of words.split(" ")) counts.set(word, (counts.get(word) ?? 0) + 1);
  return {
    id,
    title: `title ${id}`,
    text: words,
    metadataJson: JSON.stringify({ source: "test" }),
    contentHash: `hash-of-${words}`,
    modelVersion: MODEL,
    vector,
    terms: [...counts],
    length: words.split(" ").length,
    ...overrides,
  };
}

/** A small int8 token matrix (late-interaction rerank data), `count` tokens of 2 components. */
function tokens(count: number): NonNullable<PreparedDocument["tokens"]> {
  return { count, dims: 2, data: new Int8Array(count * 2).fill(1), scales: new Float32Array(count).fill(0.01) };
}

const corpus = [
  doc("north", unit(1, 0, 0, 0), "lighthouse keeper wick lens", { tokens: tokens(4) }),
  doc("east", unit(0, 1, 0, 0), "glacier valley bedrock"),
  doc("northeast", unit(1, 1, 0, 0), "lighthouse glacier"),
];

/** Rows left in each table for a document, read straight from SQLite. */
async function traces(stub: DurableObjectStub<IndexShard>, id: string): Promise<{ documents: number; postings: number; tokens: number }> {
  return runInDurableObject(stub, (_instance, state) => ({
    documents: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM documents WHERE id = ?", id).one().n,
    postings: state.storage.sql.exec<{ n: number | null }>("SELECT SUM(json_array_length(terms)) AS n FROM documents WHERE id = ?", id).one().n ?? 0,
    tokens: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM token_matrices WHERE doc_id = ?", id).one().n,
  }));
}

describe("IndexShard", () => {
  it("upserts, then skips an identical document as unchanged", async () => {
    const stub = shard();
    expect(await stub.upsert(corpus)).toEqual({ upserted: ["north", "east", "northeast"], unchanged: [] });
    expect(await stub.upsert(corpus)).toEqual({ upserted: [], unchanged: ["north", "east", "northeast"] });
    expect(await traces(stub, "north")).toEqual({ documents: 1, postings: 4, tokens: 1 });
  });

  it("keeps BM25's in-memory view in step with writes: an upsert or delete after a search shows in the next search", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    // This search loads the postings of "lighthouse" and "glacier" into the shard's memory.
    expect((await search(stub, { mode: "lexical", topK: 10, terms: ["lighthouse", "glacier"] })).hits.map((h) => h.id)).toEqual([
      "northeast",
      "east",
      "north",
    ]);
    await stub.upsert([doc("south", unit(0, 0, 1, 0), "lighthouse lighthouse glacier glacier")]);
    const afterUpsert = await search(stub, { mode: "lexical", topK: 10, terms: ["lighthouse", "glacier"] });
    expect(afterUpsert.hits.map((h) => h.id)).toEqual(["south", "northeast", "east", "north"]);
    await stub.deleteMany(["northeast"]);
    const afterDelete = await search(stub, { mode: "lexical", topK: 10, terms: ["lighthouse", "glacier"] });
    expect(afterDelete.hits.map((h) => h.id)).toEqual(["south", "east", "north"]);
    // A term another query loaded does not leak into a query that does not name it.
    expect((await search(stub, { mode: "lexical", topK: 10, terms: ["bedrock"] })).hits.map((h) => h.id)).toEqual(["east"]);
  });

  it("reports which documents need (re)indexing by content hash and model version", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    const pending = await stub.pending([
      { id: "north", contentHash: "hash-of-lighthouse keeper wick lens", modelVersion: MODEL },
      { id: "east", contentHash: "something else", modelVersion: MODEL },
      { id: "northeast", contentHash: "hash-of-lighthouse glacier", modelVersion: "2.0.0" },
      { id: "new", contentHash: "x", modelVersion: MODEL },
    ]);
    expect(pending).toEqual(["east", "northeast", "new"]);
  });

  it("replaces every trace of a changed document", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    await search(stub, { mode: "dense", topK: 3, vector: unit(1, 0, 0, 0), modelVersion: MODEL }); // warm the matrix
    expect(await traces(stub, "north")).toEqual({ documents: 1, postings: 4, tokens: 1 });
    const changed = doc("north", unit(0, 0, 1, 0), "espresso pressure", { title: "changed" });
    expect(await stub.upsert([changed])).toEqual({ upserted: ["north"], unchanged: [] });
    // The new version carries no token matrix (another model, or none yet): the old one goes with the old version.
    expect(await traces(stub, "north")).toEqual({ documents: 1, postings: 2, tokens: 0 });
    expect(await stub.tokenMatrices(["north"], MODEL)).toEqual({});

    const lexical = await search(stub, { mode: "lexical", topK: 10, terms: ["wick"] });
    expect(lexical.hits).toEqual([]);
    const espresso = await search(stub, { mode: "lexical", topK: 10, terms: ["espresso"] });
    expect(espresso.hits.map((h) => [h.id, h.title])).toEqual([["north", "changed"]]);
    // The cached matrix was invalidated: the new vector answers, the old one does not.
    const dense = await search(stub, { mode: "dense", topK: 1, vector: unit(0, 0, 1, 0), modelVersion: MODEL });
    expect(dense.hits[0]!.id).toBe("north");
    expect(dense.hits[0]!.score).toBeCloseTo(1, 2);
  });

  it("deletes every trace and says whether the document existed", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    await search(stub, { mode: "hybrid", topK: 3, vector: unit(1, 0, 0, 0), modelVersion: MODEL, terms: ["lighthouse"] });
    expect(await stub.deleteMany(["north"])).toEqual({ deleted: ["north"], missing: [] });
    expect(await stub.deleteMany(["north", "nowhere"])).toEqual({ deleted: [], missing: ["north", "nowhere"] });
    expect(await traces(stub, "north")).toEqual({ documents: 0, postings: 0, tokens: 0 });
    expect(await stub.get("north")).toBeNull();

    const dense = await search(stub, { mode: "dense", topK: 10, vector: unit(1, 0, 0, 0), modelVersion: MODEL });
    expect(dense.hits.map((h) => h.id)).toEqual(["northeast", "east"]);
    const lexical = await search(stub, { mode: "lexical", topK: 10, terms: ["lighthouse", "keeper"] });
    expect(lexical.hits.map((h) => h.id)).toEqual(["northeast"]);
  });

  it("ranks dense hits by cosine with per-list ranks and scores", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    const result = await search(stub, { mode: "dense", topK: 2, vector: unit(1, 0.2, 0, 0), modelVersion: MODEL });
    // cosines: north 1/√1.04 ≈ 0.981, northeast 1.2/√2.08 ≈ 0.832, east 0.2/√1.04 ≈ 0.196
    expect(result.hits.map((h) => h.id)).toEqual(["north", "northeast"]);
    expect(result.hits[0]!.score).toBeCloseTo(1 / Math.sqrt(1.04), 2);
    expect(result.hits[0]!.ranks).toEqual({ dense: 1 });
    expect(result.hits[1]!.scores.dense).toBeCloseTo(1.2 / Math.sqrt(2.08), 2);
    expect(result.hits[0]).toMatchObject({ title: "title north", text: "lighthouse keeper wick lens", metadataJson: '{"source":"test"}' });
    expect(result.candidates).toEqual({ dense: 3, lexical: 0 }); // the whole shard: it holds fewer than the depth read
  });

  it("serves a 2-d Matryoshka prefix of 4-d stored vectors, renormalised", async () => {
    const stub = shard();
    await stub.upsert([doc("a", unit(3, 4, 12, 0), "x"), doc("b", unit(0, 1, 0, 0), "y")]);
    const result = await search(stub, { mode: "dense", topK: 2, vector: unit(3, 4), modelVersion: MODEL });
    expect(result.hits[0]!.id).toBe("a");
    expect(result.hits[0]!.score).toBeCloseTo(1, 2); // prefix (3,4)/5 is the query itself
  });

  it("fuses dense and lexical by convex combination by default, lexical 0.7, dense 0.3", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    // dense cosines: north 1, northeast √½, east 0 → (s + 1)/2: 1, (1 + √½)/2 ≈ 0.854, 0.5
    // lexical ("glacier", BM25 ∝ 1.9/(1 + 0.9·(0.6 + 0.4·|d|/3))): northeast 1.9/1.78, east 1.9/1.9 → 1, 1.78/1.9 ≈ 0.937
    // Both lists are shorter than the 50 candidates read, hence complete: north has no lexical score (0).
    const result = await search(stub, { mode: "hybrid", topK: 3, vector: unit(1, 0, 0, 0), modelVersion: MODEL, terms: ["glacier"] });
    expect(result.hits.map((h) => h.id)).toEqual(["northeast", "east", "north"]);
    const [northeast, east, north] = result.hits;
    expect(northeast!.ranks).toEqual({ dense: 2, lexical: 1 });
    expect(northeast!.score).toBeCloseTo(0.7 + (0.3 * (1 + Math.SQRT1_2)) / 2, 5);
    expect(east!.score).toBeCloseTo((0.7 * 1.78) / 1.9 + 0.3 * 0.5, 5);
    expect(north!.ranks).toEqual({ dense: 1 });
    expect(north!.score).toBeCloseTo(0.3, 5);

    // An override keeps the other list's default — dense 3, lexical 0.7: northeast 0.7 + 3·0.854 ≈ 3.26 · north 3 ·
    // east 0.656 + 1.5 ≈ 2.16
    const denseHeavy = await search(stub, {
      mode: "hybrid",
      topK: 3,
      vector: unit(1, 0, 0, 0),
      modelVersion: MODEL,
      terms: ["glacier"],
      fusion: "convex",
      weights: { dense: 3 },
    });
    expect(denseHeavy.hits.map((h) => h.id)).toEqual(["northeast", "north", "east"]);
  });

  it("fuses dense and lexical with RRF on request, lexical weighted 3 by default", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    // dense: north 1, northeast 2, east 3 · lexical ("glacier"): east and northeast (BM25 favours the shorter doc)
    const result = await search(stub, {
      mode: "hybrid",
      topK: 3,
      vector: unit(1, 0, 0, 0),
      modelVersion: MODEL,
      terms: ["glacier"],
      fusion: "rrf",
    });
    const byId = Object.fromEntries(result.hits.map((h) => [h.id, h]));
    expect(byId.northeast!.ranks).toEqual({ dense: 2, lexical: 1 });
    expect(byId.northeast!.score).toBeCloseTo(1 / 62 + 3 / 61, 10);
    expect(byId.east!.ranks).toEqual({ dense: 3, lexical: 2 });
    expect(byId.north!.ranks).toEqual({ dense: 1 });
    expect(result.hits.map((h) => h.id)).toEqual(["northeast", "east", "north"]);

    const equal = await search(stub, {
      mode: "hybrid",
      topK: 3,
      vector: unit(1, 0, 0, 0),
      modelVersion: MODEL,
      terms: ["glacier"],
      fusion: "rrf",
      weights: { dense: 1, lexical: 1 },
    });
    // northeast 1/62 + 1/61 · north 1/61 · east 1/63 + 1/62
    expect(equal.hits.map((h) => h.id)).toEqual(["northeast", "east", "north"]);
    expect(equal.hits[0]!.score).toBeCloseTo(1 / 62 + 1 / 61, 10);
  });

  it("compares the query only with vectors of the same model version", async () => {
    const stub = shard();
    await stub.upsert([...corpus, doc("old", unit(1, 0, 0, 0), "lighthouse", { modelVersion: "0.9.0" })]);
    const dense = await search(stub, { mode: "dense", topK: 10, vector: unit(1, 0, 0, 0), modelVersion: MODEL });
    expect(dense.hits.map((h) => h.id)).not.toContain("old");
    const lexical = await search(stub, { mode: "lexical", topK: 10, terms: ["lighthouse"] });
    expect(lexical.hits.map((h) => h.id)).toContain("old"); // still findable by its words until re-embedded
  });

  it("returns the stored document and the shard's statistics", async () => {
    const stub = shard();
    await stub.upsert(corpus);
    expect(await stub.get("east")).toMatchObject({
      id: "east",
      title: "title east",
      text: "glacier valley bedrock",
      metadataJson: '{"source":"test"}',
      contentHash: "hash-of-glacier valley bedrock",
      modelVersion: MODEL,
      dims: 4,
      length: 3,
    });
    expect(await stub.stats()).toEqual({
      documents: 3,
      terms: 7, // lighthouse keeper wick lens glacier valley bedrock
      postings: 9,
      avgDocLength: 3,
      modelVersions: { [MODEL]: 3 },
    });
  });
});

describe("IndexShard: in-memory views that follow writes", () => {
  /** Deterministic, so a failure reproduces. */
  const random = mulberry32;
  const WORDS = ["tide", "harbour", "lamp", "rope", "gull", "reef", "mast", "keel", "sail", "storm", "anchor", "fog"];

  function randomDocument(next: () => number, id: string, version: number): PreparedDocument {
    const words = Array.from({ length: 1 + Math.floor(next() * 8) }, () => WORDS[Math.floor(next() * WORDS.length)]!).join(" ");
    const sparse = [...new Set(Array.from({ length: 1 + Math.floor(next() * 4) }, () => Math.floor(next() * 20)))]
      .sort((a, b) => a - b)
      .map((term) => [term, 0.1 + Math.round(next() * 100) / 50] as [number, number]);
    return doc(id, unit(...Array.from({ length: 8 }, () => next() - 0.5)), words, {
      contentHash: `v${version}-${words}`,
      metadataJson: JSON.stringify({ group: Math.floor(next() * 3) }),
      sparse,
    });
  }

  /** Every list of both shards at a depth that returns every match, so no tie decides what is cut. */
  async function expectSameAnswers(followed: DurableObjectStub<IndexShard>, fresh: DurableObjectStub<IndexShard>, next: () => number): Promise<void> {
    const byScoreThenId = (list: { id: string; score: number }[] | undefined) =>
      [...(list ?? [])].sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1)).map((hit) => [hit.id, Math.round(hit.score * 1e9) / 1e9]);
    for (let q = 0; q < 6; q++) {
      const request = {
        lists: { dense: true, lexical: true, sparse: true },
        depth: 1000,
        vector: unit(...Array.from({ length: 8 }, () => next() - 0.5)),
        modelVersion: MODEL,
        terms: [WORDS[q]!, WORDS[(q * 5 + 3) % WORDS.length]!, WORDS[q]!],
        sparseTerms: [[q, 1], [q + 7, 0.5]] as [number, number][],
        ...(q % 2 === 1 ? { filterJson: JSON.stringify({ group: q % 3 }) } : {}),
      };
      const [a, b] = await Promise.all([followed.candidates(request), fresh.candidates(request)]);
      for (const list of ["dense", "lexical", "sparse"] as const) expect(byScoreThenId(a[list]), `${list} list, query ${q}`).toEqual(byScoreThenId(b[list]));
      const { generation: _followed, ...followedTerms } = await followed.termStats(request.terms);
      const { generation: _fresh, ...freshTerms } = await fresh.termStats(request.terms);
      expect(followedTerms).toEqual(freshTerms);
    }
    const { avgDocLength: followedAvg, ...followedStats } = await followed.stats();
    const { avgDocLength: freshAvg, ...freshStats } = await fresh.stats();
    expect(followedStats).toEqual(freshStats);
    expect(followedAvg).toBeCloseTo(freshAvg, 9);
  }

  it("rank, after upserts, replacements and deletes, exactly as views built from the final documents", async () => {
    const next = random(7);
    const followed = shard();
    const documents = new Map<string, PreparedDocument>();
    const initial = Array.from({ length: 120 }, (_, i) => randomDocument(next, `d${String(i).padStart(3, "0")}`, 0));
    for (const d of initial) documents.set(d.id, d);
    await followed.upsert(initial);
    await followed.candidates({ lists: { dense: true, lexical: true, sparse: true }, depth: 10, vector: unit(1, 0, 0, 0, 0, 0, 0, 0), modelVersion: MODEL, terms: ["tide"], sparseTerms: [[1, 1]], filterJson: "{}" });
    for (let round = 1; round <= 4; round++) {
      const ids = [...documents.keys(), ...Array.from({ length: 10 }, (_, i) => `n${round}-${i}`)];
      const replaced = ids.filter(() => next() < 0.2).map((id) => randomDocument(next, id, round));
      await followed.upsert(replaced);
      for (const d of replaced) documents.set(d.id, d);
      const deleted = [...documents.keys()].filter(() => next() < 0.1);
      await followed.deleteMany(deleted);
      for (const id of deleted) documents.delete(id);
      // Searches between the writes keep the views live rather than rebuilt.
      await followed.candidates({ lists: { dense: true, lexical: true }, depth: 5, vector: unit(0, 1, 0, 0, 0, 0, 0, 0), modelVersion: MODEL, terms: ["reef"] });
    }
    const fresh = shard();
    await fresh.upsert([...documents.values()]);
    await expectSameAnswers(followed, fresh, next);
  });

  it("are rebuilt once dead rows reach a quarter of them, and still rank as fresh ones", async () => {
    const next = random(11);
    const followed = shard();
    const all = Array.from({ length: 1600 }, (_, i) => randomDocument(next, `r${String(i).padStart(4, "0")}`, 0));
    for (let start = 0; start < all.length; start += 200) await followed.upsert(all.slice(start, start + 200));
    await followed.candidates({ lists: { dense: false, lexical: true }, depth: 5, terms: ["fog"] });
    const doomed = all.filter((_, i) => i % 3 !== 0).map((d) => d.id);
    await followed.deleteMany(doomed);
    const rowsBefore = await runInDurableObject(followed, (instance) => instance["viewsBuilt"]?.rowCount);
    expect(rowsBefore).toBe(1600); // dead rows stay until a search finds the views stale
    await followed.candidates({ lists: { dense: false, lexical: true }, depth: 5, terms: ["fog"] });
    const kept = all.filter((_, i) => i % 3 === 0);
    expect(await runInDurableObject(followed, (instance) => instance["viewsBuilt"]?.rowCount)).toBe(kept.length);
    const fresh = shard();
    await fresh.upsert(kept);
    await expectSameAnswers(followed, fresh, next);
  });
});

/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * ShardedIndex over real IndexShard Durable Objects: each document lives on exactly one shard, a search over N shards
 * ranks exactly as one shard holding everything (BM25 with corpus-wide statistics, dense merged across shards),
 * metadata filters apply before ranking, pages tile the ranking, and deletes find every document's shard.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { matchesFilter, type MetadataFilter } from "../../src/retrieval/index.js";
import type { IndexSearchRequest } from "../../workers/edge/src/search-index.js";
import type { PreparedDocument } from "../../workers/edge/src/shard-api.js";
import { ShardedIndex, shardNames, shardOf } from "../../workers/edge/src/sharded-index.js";
import { shardClient } from "../../workers/edge/src/wiring.js";

const MODEL = "sharding-test";
const WORDS = ["tide", "harbour", "lantern", "glacier", "valley", "copper", "orchard", "signal", "meadow", "ember"];

/** A small deterministic generator, so the corpus is the same on every run. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function corpus(size: number): PreparedDocument[] {
  const random = lcg(7);
  return Array.from({ length: size }, (_, i) => {
    const raw = Float32Array.from({ length: 16 }, () => random() * 2 - 1);
    const norm = Math.hypot(...raw);
    const words = Array.from({ length: 3 + Math.floor(random() * 6) }, () => WORDS[Math.floor(random() * WORDS.length)]!);
    const counts = new Map<string, number>();
    for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
    return {
      id: `doc-${i}`,
      title: `Document ${i}`,
      text: words.join(" "),
      metadataJson: JSON.stringify({ parity: i % 2 === 0 ? "even" : "odd", rank: i, tags: i % 3 === 0 ? ["third"] : [] }),
      contentHash: `h${i}`,
      modelVersion: MODEL,
      vector: raw.map((v) => v / norm),
      terms: [...counts],
      length: words.length,
    };
  });
}

function index(count: number): { index: ShardedIndex; names: string[] } {
  const names = shardNames(`sharding-${crypto.randomUUID()}`, count);
  return { index: new ShardedIndex(names, (name) => shardClient(env, name)), names };
}

const DOCS = corpus(60);
const QUERY_VECTOR = DOCS[5]!.vector.map((v, i) => v + (i % 2 === 0 ? 0.3 : -0.2));
const QUERY: Omit<IndexSearchRequest, "mode"> = {
  topK: 20,
  offset: 0,
  vector: Float32Array.from(QUERY_VECTOR, (v) => v / Math.hypot(...QUERY_VECTOR)),
  modelVersion: MODEL,
  terms: ["lantern", "glacier", "glacier"],
};

describe("ShardedIndex", () => {
  it("names shards by prefix and count, and refuses impossible counts", () => {
    expect(shardNames("default", 1)).toEqual(["default"]);
    expect(shardNames("default", 3)).toEqual(["default/1-of-3", "default/2-of-3", "default/3-of-3"]);
    expect(() => shardNames("default", 0)).toThrow(/from 1 to 64/);
    expect(() => shardNames("default", 2.5)).toThrow(/whole number/);
  });

  it("stores each document on exactly the shard its id hashes to", async () => {
    const { index: sharded, names } = index(4);
    expect(await sharded.upsert(DOCS)).toEqual({ upserted: DOCS.map((d) => d.id), unchanged: [] });
    const perShard = await Promise.all(names.map((name) => shardClient(env, name).stats()));
    expect(perShard.reduce((sum, stats) => sum + stats.documents, 0)).toBe(DOCS.length);
    // Every shard got some of the 60 documents: the hash spreads them.
    expect(perShard.every((stats) => stats.documents > 0)).toBe(true);
    for (const document of DOCS.slice(0, 12)) {
      const owner = shardOf(document.id, names.length);
      for (const [i, name] of names.entries()) {
        const stored = await shardClient(env, name).get(document.id);
        expect(stored === null).toBe(i !== owner);
      }
    }
    expect(await sharded.stats()).toEqual({ backend: "durable-objects", documents: 60, shards: 4, modelVersions: { [MODEL]: 60 } });
    expect(await sharded.upsert(DOCS.slice(0, 5))).toEqual({ upserted: [], unchanged: DOCS.slice(0, 5).map((d) => d.id) });
  });

  it("ranks over four shards exactly as one shard holding everything", async () => {
    const { index: one } = index(1);
    const { index: four } = index(4);
    await Promise.all([one.upsert(DOCS), four.upsert(DOCS)]);
    for (const mode of ["lexical", "dense", "hybrid"] as const) {
      const [single, sharded] = await Promise.all([one.search({ ...QUERY, mode }), four.search({ ...QUERY, mode })]);
      expect(single.hits.length).toBe(20);
      expect(sharded.hits.map((h) => h.id)).toEqual(single.hits.map((h) => h.id));
      sharded.hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(single.hits[i]!.score, 9));
    }
  });

  it("applies a metadata filter before ranking: a page is full while matching documents remain", async () => {
    const { index: sharded } = index(3);
    await sharded.upsert(DOCS);
    const filter: MetadataFilter = { parity: "odd", rank: { $gte: 30 } };
    const expected = DOCS.filter((d) => matchesFilter(JSON.parse(d.metadataJson!), filter)).map((d) => d.id);
    expect(expected.length).toBe(15);
    const result = await sharded.search({ ...QUERY, mode: "dense", topK: 15, filter });
    expect(result.hits.map((h) => h.id).sort()).toEqual([...expected].sort());
    expect(result.hasMore).toBe(false);
    const hybrid = await sharded.search({ ...QUERY, mode: "hybrid", topK: 5, filter: { tags: "third" } });
    expect(hybrid.hits.length).toBe(5);
    for (const hit of hybrid.hits) expect(JSON.parse(hit.metadataJson!).tags).toEqual(["third"]);
  });

  it("pages tile the ranking without gaps or repeats, and say when it ends", async () => {
    const { index: sharded } = index(3);
    await sharded.upsert(DOCS);
    for (const mode of ["dense", "hybrid"] as const) {
      const whole = await sharded.search({ ...QUERY, mode, topK: 60 });
      const pages: string[] = [];
      let offset = 0;
      for (;;) {
        const page = await sharded.search({ ...QUERY, mode, topK: 7, offset });
        pages.push(...page.hits.map((h) => h.id));
        if (!page.hasMore) break;
        offset += 7;
      }
      expect(pages).toEqual(whole.hits.map((h) => h.id));
      expect(new Set(pages).size).toBe(pages.length);
    }
  });

  it("deletes from whichever shard holds each document and reports the missing ones", async () => {
    const { index: sharded } = index(3);
    await sharded.upsert(DOCS);
    const ids = ["doc-1", "doc-2", "doc-59", "doc-1", "nowhere"];
    expect(await sharded.delete(ids)).toEqual({ deleted: ["doc-1", "doc-2", "doc-59"], missing: ["nowhere"] });
    expect(await sharded.get("doc-2")).toBeNull();
    expect((await sharded.stats()).documents).toBe(57);
    const found = await sharded.search({ ...QUERY, mode: "hybrid", topK: 60 });
    expect(found.hits.map((h) => h.id)).not.toContain("doc-1");
    expect(found.hits.length).toBe(57);
  });
});

describe("ShardedIndex: cached corpus statistics", () => {
  it("skip the statistics round trip when nothing was written, and never rank on statistics a write made stale", async () => {
    const { index: one } = index(1);
    const { index: four } = index(4);
    await Promise.all([one.upsert(DOCS), four.upsert(DOCS)]);
    const lexical = { ...QUERY, mode: "lexical" as const, terms: ["tide", "harbour", "ember"] };
    const expectSameAsOneShard = async () => {
      const [single, sharded] = await Promise.all([one.search(lexical), four.search(lexical)]);
      expect(sharded.hits.map((h) => h.id)).toEqual(single.hits.map((h) => h.id));
      sharded.hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(single.hits[i]!.score, 9));
      return sharded;
    };
    const first = await expectSameAsOneShard();
    expect(first.timings.statsMs).toBeDefined();
    // The same terms again: the statistics come from the isolate's cache, no round trip.
    const again = await expectSameAsOneShard();
    expect(again.timings.statsMs).toBe(0);
    // A write that changes "tide"'s document frequency and the corpus size, on whichever shard it lands.
    const extra = corpus(61).at(-1)!;
    const tidal = { ...extra, id: "tidal", contentHash: "tidal", text: "tide tide tide", terms: [["tide", 3]] as [string, number][], length: 3 };
    await Promise.all([one.upsert([tidal]), four.upsert([tidal])]);
    // Ranked on the cached statistics, the shards' scores would now differ from one shard's (the write moved df and N).
    await expectSameAsOneShard();
    await Promise.all([one.delete(["tidal", "doc-3"]), four.delete(["tidal", "doc-3"])]);
    await expectSameAsOneShard();
  });
});

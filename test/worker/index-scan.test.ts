/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * Paging through a whole index and reading many stored documents at once (`SearchIndex.scan` / `documents`, what a
 * blue/green model switch walks an index with), on the real app's 3-shard index of IndexShard Durable Objects: a full
 * scan at any page size yields every document exactly once with its stored hash and model version, pages are never
 * empty while a cursor follows, empty shards are skipped, foreign or damaged cursors are refused; `documents` returns
 * exactly the stored ones among any ids, as `get` does, across shards and past SQLite's bound-parameter limit.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { IndexShard } from "../../workers/edge/src/index-shard.js";
import type { ScannedDocument, SearchIndex } from "../../workers/edge/src/search-index.js";
import type { PreparedDocument } from "../../workers/edge/src/shard-api.js";
import { ShardedIndex, shardNames, shardOf } from "../../workers/edge/src/sharded-index.js";
import { shardClient } from "../../workers/edge/src/wiring.js";
import { DEFAULT_TEST_SHARDS, harness } from "./support/edge-harness.js";

const MODEL = "scan-test";

function prepared(id: string, i: number, overrides: Partial<PreparedDocument> = {}): PreparedDocument {
  const vector = Float32Array.from({ length: 8 }, (_, d) => (d === i % 8 ? 1 : 0));
  return {
    id,
    title: `Title ${id}`,
    text: `text of ${id}`,
    metadataJson: i % 2 === 0 ? JSON.stringify({ n: i }) : null,
    contentHash: `hash-${id}-${i}`,
    modelVersion: i % 3 === 0 ? `${MODEL}-old` : MODEL,
    vector,
    terms: [["text", 1], ["of", 1]],
    length: 2,
    ...overrides,
  };
}

/** Ids, in order, that the `shards`-shard hash puts on `shard`. */
function idsOnShard(shard: number, shards: number, count: number, prefix = "id"): string[] {
  const ids: string[] = [];
  for (let n = 0; ids.length < count; n++) if (shardOf(`${prefix}-${n}`, shards) === shard) ids.push(`${prefix}-${n}`);
  return ids;
}

function sharded(count: number, names = shardNames(`scan-${crypto.randomUUID()}`, count)): ShardedIndex {
  return new ShardedIndex(names, (name) => shardClient(env, name));
}

/** Every page of a full scan, checking as it goes that no page is empty while a cursor follows it. */
async function scanAll(index: SearchIndex, limit: number): Promise<ScannedDocument[][]> {
  const pages: ScannedDocument[][] = [];
  let cursor: string | null = null;
  do {
    const page: { documents: ScannedDocument[]; cursor: string | null } = await index.scan(cursor, limit);
    expect(page.documents.length).toBeLessThanOrEqual(limit);
    if (page.cursor !== null) expect(page.documents.length).toBeGreaterThan(0);
    pages.push(page.documents);
    cursor = page.cursor;
    expect(pages.length).toBeLessThan(1_000);
  } while (cursor !== null);
  return pages;
}

describe("SearchIndex.scan on the sharded index", () => {
  it("returns every document exactly once, with its stored hash and model version, at any page size", async () => {
    const h = await harness();
    const docs = Array.from({ length: 23 }, (_, i) => prepared(`doc-${i}`, i));
    await h.deps.index.upsert(docs);
    // The hash spreads 23 ids over all 3 shards, so the scan crosses shard boundaries.
    const perShard = new Set(docs.map((d) => shardOf(d.id, DEFAULT_TEST_SHARDS)));
    expect(perShard.size).toBe(DEFAULT_TEST_SHARDS);
    const expected = docs.map((d) => ({ id: d.id, contentHash: d.contentHash, modelVersion: d.modelVersion })).sort((a, b) => (a.id < b.id ? -1 : 1));

    for (const limit of [1, 2, 7, 23, 1_000]) {
      const pages = await scanAll(h.deps.index, limit);
      const scanned = pages.flat();
      expect(scanned.map((d) => d.id)).toHaveLength(new Set(scanned.map((d) => d.id)).size);
      expect([...scanned].sort((a, b) => (a.id < b.id ? -1 : 1))).toEqual(expected);
      // Only the last page may be short: empty shards and shard boundaries do not end a page early.
      expect(pages.slice(0, -1).every((page) => page.length === limit)).toBe(true);
      expect(pages).toHaveLength(Math.max(1, Math.ceil(docs.length / limit)));
    }
  });

  it("scans documents written through POST /v1/documents as get reads them", async () => {
    const h = await harness();
    const documents = [
      { id: "lighthouse", title: "Keepers of the lighthouse", text: "The keeper trimmed the wick of the great lens.", metadata: { year: 1890 } },
      { id: "glacier", title: "Glaciers carve valleys", text: "A glacier grinds the bedrock and leaves a U-shaped valley." },
      { id: "espresso", title: "Pulling an espresso shot", text: "Hot water is forced through finely ground coffee." },
      { id: "orchard", title: "Apple orchards", text: "Grafted trees bear fruit true to the variety." },
    ];
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    const scanned = (await scanAll(h.deps.index, 2)).flat();
    expect(scanned.map((d) => d.id).sort()).toEqual(documents.map((d) => d.id).sort());
    for (const entry of scanned) {
      const stored = (await h.deps.index.get(entry.id))!;
      expect(entry).toEqual({ id: stored.id, contentHash: stored.contentHash, modelVersion: stored.modelVersion });
    }
  });

  it("scans an empty index to one empty page with no cursor", async () => {
    const h = await harness();
    expect(await h.deps.index.scan(null, 2)).toEqual({ documents: [], cursor: null });
    expect(await sharded(1).scan(null, 1_000)).toEqual({ documents: [], cursor: null });
  });

  it("ends with a null cursor when the last page is exactly full, even with empty shards after it", async () => {
    const index = sharded(4);
    // Everything on shard 1 of 4: shard 0 is skipped at the start, shards 2 and 3 must not cost an empty last page.
    const ids = idsOnShard(1, 4, 6);
    await index.upsert(ids.map((id, i) => prepared(id, i)));
    expect(await index.scan(null, 6)).toEqual({ documents: expect.any(Array), cursor: null });
    const first = await index.scan(null, 5);
    expect(first.documents.map((d) => d.id)).toEqual([...ids].sort().slice(0, 5));
    expect(first.cursor).not.toBeNull();
    const second = await index.scan(first.cursor, 5);
    expect(second).toEqual({ documents: [expect.objectContaining({ id: [...ids].sort()[5] })], cursor: null });
  });

  it("keeps a page going from one shard into the next", async () => {
    const index = sharded(3);
    const first = idsOnShard(0, 3, 2, "a");
    const last = idsOnShard(2, 3, 3, "b");
    await index.upsert([...first, ...last].map((id, i) => prepared(id, i)));
    const page = await index.scan(null, 4);
    // Shard 0's two, then (shard 1 being empty) shard 2's first two, in id order within each shard.
    expect(page.documents.map((d) => d.id)).toEqual([...[...first].sort(), ...[...last].sort().slice(0, 2)]);
    expect(await index.scan(page.cursor, 4)).toEqual({ documents: [expect.objectContaining({ id: [...last].sort()[2] })], cursor: null });
  });

  it("refuses malformed, foreign and out-of-range cursors and page sizes with a clear error", async () => {
    const index = sharded(3);
    await index.upsert([prepared("x", 1), prepared("y", 2), prepared("z", 3)]);
    const base64url = (text: string): string => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    await expect(index.scan("not a cursor!", 2)).rejects.toThrow(/malformed scan cursor "not a cursor!"/);
    await expect(index.scan(base64url("{nope"), 2)).rejects.toThrow(/malformed scan cursor/);
    await expect(index.scan(base64url('{"shard":0}'), 2)).rejects.toThrow(/malformed scan cursor/);
    await expect(index.scan(base64url("[3,7,null]"), 2)).rejects.toThrow(/malformed scan cursor .*no shard 7/);
    await expect(index.scan(base64url("[3,0,42]"), 2)).rejects.toThrow(/malformed scan cursor .*not a document id/);
    // A cursor of an index with another shard count would walk the wrong shards: refused, not misread.
    const other = sharded(4);
    await other.upsert([prepared("p", 1), prepared("q", 2), prepared("r", 3)]);
    const foreign = (await other.scan(null, 1)).cursor!;
    await expect(index.scan(foreign, 2)).rejects.toThrow(/belongs to an index of 4 shards, this one has 3/);
    for (const limit of [0, 1_001, 2.5]) await expect(index.scan(null, limit)).rejects.toThrow(/scan limit must be a whole number from 1 to 1000/);
  });
});

describe("SearchIndex.documents on the sharded index", () => {
  it("returns exactly the stored documents among present and missing ids, across shards, equal to get's", async () => {
    const h = await harness();
    const docs = Array.from({ length: 12 }, (_, i) => prepared(`doc-${i}`, i));
    await h.deps.index.upsert(docs);
    const asked = ["doc-3", "missing-1", "doc-0", "doc-11", "doc-3", "missing-2", "doc-7", "doc-8"];
    const present = ["doc-0", "doc-3", "doc-7", "doc-8", "doc-11"];
    expect(new Set(present.map((id) => shardOf(id, DEFAULT_TEST_SHARDS))).size).toBeGreaterThan(1);
    const found = await h.deps.index.documents(asked);
    expect(found.map((d) => d.id).sort()).toEqual([...present].sort());
    for (const document of found) expect(document).toEqual(await h.deps.index.get(document.id));
    const doc7 = found.find((d) => d.id === "doc-7")!;
    expect(doc7).toMatchObject({ title: "Title doc-7", text: "text of doc-7", metadataJson: null, contentHash: "hash-doc-7-7", modelVersion: MODEL });
    expect(found.find((d) => d.id === "doc-0")!.metadataJson).toBe(JSON.stringify({ n: 0 }));
    expect(await h.deps.index.documents([])).toEqual([]);
    expect(await h.deps.index.documents(["missing-1"])).toEqual([]);
  });

  it("reads more ids than one SQLite statement can bind from a single shard", async () => {
    const [name] = shardNames(`scan-${crypto.randomUUID()}`, 1);
    const index = sharded(1, [name!]);
    const ids = Array.from({ length: 150 }, (_, i) => `bulk-${String(i).padStart(3, "0")}`);
    await index.upsert(ids.map((id, i) => prepared(id, i)));
    const missing = Array.from({ length: 60 }, (_, i) => `absent-${i}`);
    const found = await index.documents([...missing, ...ids].reverse());
    expect(found.map((d) => d.id).sort()).toEqual(ids);
    // The shard's own scan walks the same rows in id order and resumes after a given id.
    const shard = shardClient(env, name!);
    expect((await shard.scan("bulk-147", 10)).map((d) => d.id)).toEqual(["bulk-148", "bulk-149"]);
    expect((await shard.scan(null, 3)).map((d) => d.id)).toEqual(["bulk-000", "bulk-001", "bulk-002"]);
    const stub = env.INDEX.get(env.INDEX.idFromName(name!)) as DurableObjectStub<IndexShard>;
    await runInDurableObject(stub, (instance) => expect(() => instance.scan(null, 1_002)).toThrow(/from 1 to 1001/));
  });
});

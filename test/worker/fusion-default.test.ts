/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * The hybrid default follows the model's manifest: a tuned `retrieval.fusion` decides how a search that names no
 * fusion/weights is fused — in the IndexShard (hand-made vectors, so the expected order can be read off the test) and
 * through the whole app with the random-weight fixture artifact given a tuned fusion (lexical-only and dense-only
 * defaults make the hybrid ranking equal the lexical or the dense one, whatever the random weights). A request's
 * explicit fusion/weights still override, and /v1/health says which default is in force.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ArtifactManifest, TunedFusion } from "../../src/model/index.js";
import { manifest as bundledManifest } from "../../workers/edge/src/bundled-model.js";
import { createEdgeModel, loadEdgeModel } from "../../workers/edge/src/model-loader.js";
import type { PreparedDocument } from "../../workers/edge/src/shard-api.js";
import { ShardedIndex, shardNames } from "../../workers/edge/src/sharded-index.js";
import { shardClient } from "../../workers/edge/src/wiring.js";
import { harness, json, type Harness } from "./support/edge-harness.js";
import { fixtureBundle } from "./support/fixture-model.js";

const tunedOn: TunedFusion["tunedOn"] = {
  dataset: "synthetic",
  split: "train",
  queries: 10,
  ndcg10: 0.5,
  lexicalOnly: 0.5,
  denseOnly: 0.25,
  date: "2026-11-26",
  dims: 128,
  variant: "int8",
};

function withFusion(weights: { lexical: number; dense: number }): ArtifactManifest {
  return { ...fixtureBundle.manifest, retrieval: { fusion: { method: "convex", weights, tunedOn } } };
}

describe("ShardedIndex: fusionDefault", () => {
  const vector = (...values: number[]) => Float32Array.from(values, (v) => v / Math.hypot(...values));
  const doc = (id: string, v: Float32Array, words: string): PreparedDocument => ({
    id,
    title: id,
    text: words,
    metadataJson: null,
    contentHash: words,
    modelVersion: "m",
    vector: v,
    terms: [...new Set(words.split(" "))].map((w) => [w, 1] as [string, number]),
    length: words.split(" ").length,
  });

  it("fuses with the default it is sent when the request names no fusion or weights", async () => {
    const index = new ShardedIndex(shardNames(`fusion-default-${crypto.randomUUID()}`, 2), (name) => shardClient(env, name));
    // Lexical finds only "word"; dense ranks "near" first.
    await index.upsert([doc("word", vector(0, 1), "lighthouse"), doc("near", vector(1, 0), "glacier")]);
    const query = { mode: "hybrid" as const, topK: 2, offset: 0, vector: vector(1, 0.1), modelVersion: "m", terms: ["lighthouse"] };
    const ids = async (extra: Record<string, unknown>) => (await index.search({ ...query, ...extra })).hits.map((h) => h.id);

    const denseOnly = { method: "convex" as const, weights: { lexical: 0, dense: 1 } };
    const lexicalOnly = { method: "convex" as const, weights: { lexical: 1, dense: 0 } };
    expect(await ids({ fusionDefault: denseOnly })).toEqual(["near", "word"]);
    // Lexical-only still answers with the dense list's other hits, after every lexical one.
    expect(await ids({ fusionDefault: lexicalOnly })).toEqual(["word", "near"]);
    // Explicit weights override the default list by list; an explicit other method ignores the tuned weights.
    expect(await ids({ fusionDefault: denseOnly, weights: { lexical: 1, dense: 0 } })).toEqual(["word", "near"]);
    expect(await ids({ fusionDefault: lexicalOnly, fusion: "rrf" })).toEqual(["word", "near"]);
  });
});

describe("the app's hybrid default follows the model's manifest", () => {
  const documents = [
    { id: "a", text: "the edge model serves a vector query" },
    { id: "b", text: "vector search at the edge" },
    { id: "c", text: "qqq www" },
    { id: "d", text: "kkk jjj" },
  ];

  async function seeded(weights: { lexical: number; dense: number }): Promise<Harness> {
    const h = await harness({ model: await createEdgeModel({ ...fixtureBundle, manifest: withFusion(weights) }) });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    return h;
  }

  async function ids(h: Harness, extra: Record<string, unknown> = {}): Promise<string[]> {
    const response = await h.request("/v1/search", { method: "POST", json: { query: "edge vector", topK: 10, ...extra } });
    expect(response.status).toBe(200);
    return (await json<{ results: { id: string }[] }>(response)).results.map((r) => r.id);
  }

  it("lexical-only and dense-only tuned defaults rank as their component; explicit fusion/weights override", async () => {
    const lexicalOnly = await seeded({ lexical: 1, dense: 0 });
    const lexicalIds = await ids(lexicalOnly, { mode: "lexical" });
    expect([...lexicalIds].sort()).toEqual(["a", "b"]);
    // The lexical ranking first, then the documents only the dense list found.
    const hybridIds = await ids(lexicalOnly);
    expect(hybridIds.slice(0, 2)).toEqual(lexicalIds);
    expect([...hybridIds.slice(2)].sort()).toEqual(["c", "d"]);

    const denseOnly = await seeded({ lexical: 0, dense: 1 });
    const denseIds = await ids(denseOnly, { mode: "dense" });
    expect(denseIds).toHaveLength(4);
    expect(await ids(denseOnly)).toEqual(denseIds);
    // The request's own weights win over the manifest's; so does its own method (RRF 3 : 1 puts both lexical hits first).
    expect((await ids(denseOnly, { weights: { lexical: 1, dense: 0 } })).slice(0, 2)).toEqual(await ids(denseOnly, { mode: "lexical" }));
    const rrf = await ids(denseOnly, { fusion: "rrf" });
    expect(rrf).toHaveLength(4);
    expect(rrf.slice(0, 2).sort()).toEqual(["a", "b"]);

    const health = await json<{ model: { fusion: unknown } }>(await denseOnly.request("/v1/health"));
    expect(health.model.fusion).toEqual({ method: "convex", weights: { lexical: 0, dense: 1 }, source: "manifest", tunedOn });
  });

  it("reports the bundled model's default: its manifest's tuned fusion, else the built-in constants", async () => {
    const model = await loadEdgeModel();
    const tuned = bundledManifest.retrieval?.fusion;
    expect(model.fusion).toEqual(
      tuned
        ? { method: tuned.method, weights: tuned.weights, source: "manifest", tunedOn: tuned.tunedOn }
        : { method: "convex", weights: { lexical: 0.7, dense: 0.3 }, source: "built-in" },
    );
    const fixture = await createEdgeModel(fixtureBundle);
    expect(fixture.fusion).toEqual({ method: "convex", weights: { lexical: 0.7, dense: 0.3 }, source: "built-in" });
  });
});

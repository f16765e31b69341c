/**
 * model-loader's real path inside workerd — artifact bundle → WordPiece tokenizer → sha256 check → TaesrEncoder on
 * onnxruntime-web (int8) — driven through the whole app with the committed random-weight fixture. Random weights make
 * no ranking meaningful, so these tests assert wiring and contracts only: shapes, unit norms, model identity, the cache,
 * idempotency and deletion.
 */
import { describe, expect, it } from "vitest";
import { manifest, variant as bundledVariant } from "../../workers/edge/src/bundled-model.js";
import { createEdgeModel, loadEdgeModel } from "../../workers/edge/src/model-loader.js";
import { harness, json } from "./support/edge-harness.js";
import { fixtureBundle, fixtureFp32Bundle, fixtureInt4Bundle, fixtureInt8wBundle, fixtureModel } from "./support/fixture-model.js";

const documents = [
  { id: "a", title: "Edge search", text: "How fast is the edge model for a vector query?" },
  { id: "b", title: "Second", text: "What is the search model of the edge?" },
];

describe("edge model from an artifact bundle (random-weight fixture)", () => {
  it("loads with the manifest's identity and the int8 variant", async () => {
    const model = await fixtureModel();
    expect(model.modelVersion).toBe("0.0.0-test");
    expect(model.info).toEqual({ name: "taesr-random", version: "0.0.0-test", dims: 384, variant: "int8", fullDepth: 6 });
  });

  it("loads the int4 variant a bundle names, whose embeddings stay close to int8's in workerd", async () => {
    const [int8, int4] = await Promise.all([fixtureModel(), createEdgeModel(fixtureInt4Bundle)]);
    expect(int4.info).toEqual({ name: "taesr-random", version: "0.0.0-test", dims: 384, variant: "int4", fullDepth: 6 });
    const texts = ["edge", "how fast is the edge model for a vector query", "what is the search model of the edge?"];
    const [a, b] = await Promise.all([
      int8.encoder.embed(texts, { dims: 128, depth: 3, earlyExit: false }),
      int4.encoder.embed(texts, { dims: 128, depth: 3, earlyExit: false }),
    ]);
    a.embeddings.forEach((v, i) => {
      const w = b.embeddings[i]!;
      expect(v.reduce((dot, x, k) => dot + x * w[k]!, 0)).toBeGreaterThan(0.95);
    });
    // A bundle without the int4 embed graph fails its load with the missing file named.
    const { ["int4/embed.onnx"]: _gone, ...missing } = fixtureInt4Bundle.files;
    await expect(createEdgeModel({ ...fixtureInt4Bundle, files: missing })).rejects.toThrow(/int4\/embed\.onnx/);
  });

  it("loads the int8w variant, whose float arithmetic on int8 weights stays nearer fp32 than int8 does in workerd", async () => {
    const [fp32, int8, int8w] = await Promise.all([createEdgeModel(fixtureFp32Bundle), fixtureModel(), createEdgeModel(fixtureInt8wBundle)]);
    expect(int8w.info).toEqual({ name: "taesr-random", version: "0.0.0-test", dims: 384, variant: "int8w", fullDepth: 6 });
    const texts = ["edge", "how fast is the edge model for a vector query", "what is the search model of the edge?", "vector search at the edge, cached"];
    const options = { dims: 384, depth: 6, earlyExit: false } as const;
    const [reference, a, b] = await Promise.all([fp32, int8, int8w].map((m) => m.encoder.embed(texts, options)));
    const cosine = (u: Float32Array | number[], v: Float32Array | number[]) => Array.from(u).reduce((dot, x, k) => dot + x * v[k]!, 0);
    let gapInt8 = 0;
    let gapInt8w = 0;
    reference!.embeddings.forEach((r, i) => {
      const toInt8w = cosine(r, b!.embeddings[i]!);
      expect(toInt8w).toBeGreaterThan(0.999);
      gapInt8w += 1 - toInt8w;
      gapInt8 += 1 - cosine(r, a!.embeddings[i]!);
    });
    expect(gapInt8w).toBeLessThan(gapInt8);
    // Its step graph is its own file: a bundle without it fails its load with the file named.
    const { ["int8w/step.onnx"]: _gone, ...missing } = fixtureInt8wBundle.files;
    await expect(createEdgeModel({ ...fixtureInt8wBundle, files: missing })).rejects.toThrow(/int8w\/step\.onnx/);
  });

  it("refuses a bundle whose graph does not match the manifest's sha256", async () => {
    const step = new Uint8Array(fixtureBundle.files["int8/step.onnx"] as ArrayBuffer).slice();
    step[20]! ^= 1;
    await expect(createEdgeModel({ ...fixtureBundle, files: { ...fixtureBundle.files, "int8/step.onnx": step } })).rejects.toThrow(/sha256/);
  });

  it("indexes, searches, caches and embeds through the app", async () => {
    const h = await harness({ model: await fixtureModel() });
    expect(await json(await h.request("/v1/documents", { method: "POST", json: { documents } }))).toEqual({ upserted: 2, unchanged: 0, ids: ["a", "b"] });
    expect(await json(await h.request("/v1/documents", { method: "POST", json: { documents } }))).toMatchObject({ unchanged: 2 });

    const search = () => h.request("/v1/search", { method: "POST", json: { query: "how fast is the edge", topK: 5 } });
    const first = await json<{ results: { id: string }[]; model: Record<string, unknown>; timings: { cache: string } }>(await search());
    expect(first.results.map((r) => r.id).sort()).toEqual(["a", "b"]);
    expect(first.model).toMatchObject({ version: "0.0.0-test", dims: 128, route: "easy", depth: 1, cached: false });
    const calls = h.embedder.calls;
    const second = await json<{ timings: { cache: string } }>(await search());
    expect(second.timings.cache).toBe("hit");
    expect(h.embedder.calls).toBe(calls);

    const embedded = await json<{ embeddings: number[][]; route: string; depth: number }>(
      await h.request("/v1/embed", { method: "POST", json: { input: ["edge", "how fast is the edge model for a vector query"], dims: 64 } }),
    );
    expect(embedded.embeddings.map((v) => v.length)).toEqual([64, 64]);
    for (const v of embedded.embeddings) expect(Math.hypot(...v)).toBeCloseTo(1, 4);
    expect(["easy", "medium", "hard"]).toContain(embedded.route);

    expect((await h.request("/v1/documents/a", { method: "DELETE" })).status).toBe(200);
    const after = await json<{ results: { id: string }[] }>(await h.request("/v1/search", { method: "POST", json: { query: "edge", mode: "dense" } }));
    expect(after.results.map((r) => r.id)).toEqual(["b"]);

    const health = await json(await h.request("/v1/health"));
    expect(health).toMatchObject({ status: "ok", model: { name: "taesr-random", version: "0.0.0-test", dims: 384, variant: "int8" } });
  });

  it("loadEdgeModel loads the bundled artifact once per isolate", async () => {
    const [first, second] = await Promise.all([loadEdgeModel(), loadEdgeModel()]);
    expect(first).toBe(second);
    expect(await loadEdgeModel()).toBe(first);
    expect(first.info).toEqual({ name: manifest.name, version: manifest.version, dims: manifest.architecture.outputDim, variant: bundledVariant, fullDepth: manifest.architecture.depths.hard });
  });
});

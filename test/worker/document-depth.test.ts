/**
 * Documents are embedded at the model's chosen document depth (manifest `retrieval.documentDepth`) — by the edge model
 * and by the GPU origin alike — and at the router's depth without one; queries always go by the router. Inside workerd
 * with the bundled model and the real shards.
 */
import { describe, expect, it } from "vitest";
import type { EdgeModel, EmbedOptions, EmbedResult, Embedder } from "../../workers/edge/src/contracts.js";
import { originFirstEmbedder, type OriginEmbedApi } from "../../workers/edge/src/document-embedder.js";
import type { OriginEmbedCallOptions } from "../../workers/edge/src/origin-client.js";
import { loadEdgeModel } from "../../workers/edge/src/model-loader.js";
import { harness } from "./support/edge-harness.js";

/** Records the options of every embed call. */
class RecordingEmbedder implements Embedder {
  readonly calls: { texts: number; options: EmbedOptions | undefined }[] = [];
  readonly route?: Embedder["route"];
  constructor(private readonly inner: Embedder) {
    if (inner.route) this.route = (texts, options) => inner.route!(texts, options);
  }
  embed(texts: readonly string[], options?: EmbedOptions): Promise<EmbedResult> {
    this.calls.push({ texts: texts.length, options });
    return this.inner.embed(texts, options);
  }
}

async function modelWith(documentDepth: number | undefined): Promise<{ model: EdgeModel; recorder: RecordingEmbedder }> {
  const { documentDepth: _bundled, ...bundled } = await loadEdgeModel();
  const recorder = new RecordingEmbedder(bundled.embedder);
  return { model: { ...bundled, embedder: recorder, ...(documentDepth !== undefined ? { documentDepth } : {}) }, recorder };
}

const documents = Array.from({ length: 20 }, (_, i) => ({ id: `d${i}`, title: `Note ${i}`, text: `A long enough note number ${i} about tides, glaciers and the sea.` }));

describe("document depth", () => {
  it("indexes documents at the model's chosen depth, and searches with the router's", async () => {
    const { model, recorder } = await modelWith(1);
    const h = await harness({ model });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    expect(recorder.calls.length).toBeGreaterThan(0);
    for (const call of recorder.calls) expect(call.options?.depth).toBe(1);
    const embedded = recorder.calls.reduce((n, c) => n + c.texts, 0);
    expect(embedded).toBe(documents.length);

    recorder.calls.length = 0;
    expect((await h.request("/v1/search", { method: "POST", json: { query: "glaciers and tides at sea", mode: "dense" } })).status).toBe(200);
    expect(recorder.calls.map((c) => c.options?.depth)).toEqual(["auto"]);
  });

  it("lets the router choose without a chosen depth", async () => {
    const { model, recorder } = await modelWith(undefined);
    const h = await harness({ model });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    for (const call of recorder.calls) expect(call.options?.depth).toBe("auto");
  });

  it("asks the GPU origin for the chosen depth, and for its full depth when the router decides", async () => {
    const { model } = await modelWith(1);
    const asked: OriginEmbedCallOptions[] = [];
    const origin: OriginEmbedApi = {
      async embed(texts, options) {
        asked.push(options);
        const { dims } = options;
        return {
          embeddings: texts.map(() => new Float32Array(dims).fill(1 / Math.sqrt(dims))),
          dims,
          depth: options.depth ?? 6,
          model: { name: model.info.name, version: model.info.version, variant: "fp32" },
          provider: "cpu",
        };
      },
    };
    const embedder = originFirstEmbedder(origin, model, () => {});
    expect((await embedder.embed(["one", "two"], { dims: 128, depth: 1 })).source).toBe("origin");
    await embedder.embed(["three"], { dims: 128, depth: "auto" });
    expect(asked).toEqual([{ dims: 128, depth: 1 }, { dims: 128 }]);
  });
});

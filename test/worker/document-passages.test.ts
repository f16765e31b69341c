/**
 * Documents are embedded as passages when the model's manifest chose them (`retrieval.documentPassages`) — by the edge
 * model inside workerd and by the GPU origin alike — and whole without; queries never are. Inside workerd with the
 * bundled model and the real shards.
 */
import { describe, expect, it } from "vitest";
import { MAX_INPUT_CHARS } from "../../workers/origin/src/contract.js";
import type { EdgeModel, EmbedOptions, EmbedResult, Embedder } from "../../workers/edge/src/contracts.js";
import { localEmbedder, originFirstEmbedder, type OriginEmbedApi } from "../../workers/edge/src/document-embedder.js";
import type { OriginEmbedCallOptions } from "../../workers/edge/src/origin-client.js";
import { documentPassagesOf, loadEdgeModel } from "../../workers/edge/src/model-loader.js";
import { harness } from "./support/edge-harness.js";

/** Records every embed call: its options and how many passages the real encoder split each text into. */
class RecordingEmbedder implements Embedder {
  readonly calls: { texts: readonly string[]; options: EmbedOptions | undefined; passages: number[] | undefined }[] = [];
  readonly route?: Embedder["route"];
  constructor(private readonly inner: Embedder) {
    if (inner.route) this.route = (texts, options) => inner.route!(texts, options);
  }
  async embed(texts: readonly string[], options?: EmbedOptions): Promise<EmbedResult> {
    const result = await this.inner.embed(texts, options);
    this.calls.push({ texts, options, passages: result.passages?.map((p) => p.count) });
    return result;
  }
}

const PASSAGES = { maxPieces: 16, maxPassages: 8 };

async function modelWith(documentPassages: typeof PASSAGES | undefined): Promise<{ model: EdgeModel; recorder: RecordingEmbedder }> {
  const { documentPassages: _bundled, ...bundled } = await loadEdgeModel();
  const recorder = new RecordingEmbedder(bundled.embedder);
  return { model: { ...bundled, embedder: recorder, ...(documentPassages ? { documentPassages } : {}) }, recorder };
}

const documents = [
  {
    id: "long",
    title: "Field notes",
    text:
      "Glaciers carve deep valleys as they slide downhill over thousands of years. Espresso is brewed by forcing hot water " +
      "through finely ground coffee. A bicycle chain lasts longer when it is cleaned and oiled every few hundred kilometres.",
  },
  { id: "short", title: "Tides", text: "The moon pulls the sea." },
];

describe("document passages", () => {
  it("reads the chosen passages off the manifest", () => {
    const manifest = { retrieval: { documentPassages: { ...PASSAGES, tunedOn: {} } } } as unknown as Parameters<typeof documentPassagesOf>[0];
    expect(documentPassagesOf(manifest)).toEqual({ documentPassages: PASSAGES });
    expect(documentPassagesOf({ retrieval: {} } as unknown as Parameters<typeof documentPassagesOf>[0])).toEqual({});
  });

  it("indexes documents as the model's passages, in workerd, and embeds queries whole", async () => {
    const { model, recorder } = await modelWith(PASSAGES);
    const h = await harness({ model });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    const indexing = recorder.calls.filter((c) => c.options?.passages !== undefined);
    expect(indexing.map((c) => c.options?.passages)).toEqual(indexing.map(() => PASSAGES));
    expect(indexing.reduce((n, c) => n + c.texts.length, 0)).toBe(documents.length);
    // The real encoder split the long document and left the short one whole.
    const counts = new Map(indexing.flatMap((c) => c.texts.map((text, i) => [text.startsWith("Field notes") ? "long" : "short", c.passages![i]!] as const)));
    expect(counts.get("long")).toBeGreaterThan(2);
    expect(counts.get("short")).toBe(1);

    recorder.calls.length = 0;
    const search = await h.request("/v1/search", { method: "POST", json: { query: "how do I oil a bicycle chain", mode: "dense" } });
    expect(search.status).toBe(200);
    expect(recorder.calls.map((c) => c.options?.passages)).toEqual([undefined]);
  });

  it("indexes documents whole when the manifest chose no passages", async () => {
    const { model, recorder } = await modelWith(undefined);
    const h = await harness({ model });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    expect(recorder.calls.length).toBeGreaterThan(0);
    for (const call of recorder.calls) expect(call.options).not.toHaveProperty("passages");
  });

  it("asks the GPU origin for the same passages, and cuts texts to the origin's limit on both paths", async () => {
    const { model, recorder } = await modelWith(PASSAGES);
    const asked: { texts: readonly string[]; options: OriginEmbedCallOptions }[] = [];
    const origin: OriginEmbedApi = {
      async embed(texts, options) {
        asked.push({ texts, options });
        const { dims } = options;
        return {
          embeddings: texts.map(() => new Float32Array(dims).fill(1 / Math.sqrt(dims))),
          dims,
          depth: 1,
          model: { name: model.info.name, version: model.info.version, variant: "fp32" },
          provider: "cpu",
        };
      },
    };
    const huge = "Sentence about tides and the moon. ".repeat(400);
    expect(huge.length).toBeGreaterThan(MAX_INPUT_CHARS);
    const embedded = await originFirstEmbedder(origin, model, () => {}).embed([huge], { dims: 128, depth: 1, passages: PASSAGES });
    expect(embedded.source).toBe("origin");
    expect(asked[0]!.options).toEqual({ dims: 128, depth: 1, passages: PASSAGES });
    expect(asked[0]!.texts[0]).toHaveLength(MAX_INPUT_CHARS);

    await localEmbedder(model).embed([huge], { dims: 128, depth: 1, passages: PASSAGES });
    expect(recorder.calls.at(-1)!.texts[0]).toHaveLength(MAX_INPUT_CHARS);
    expect(recorder.calls.at(-1)!.options?.passages).toEqual(PASSAGES);
  });
});

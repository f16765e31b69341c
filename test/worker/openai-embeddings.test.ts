/**
 * POST /v1/embeddings inside workerd on the bundled model: OpenAI's response shape, model names, widths, base64, token
 * usage, and the 4xx answers (with OpenAI's error fields) for everything the route refuses. The real `openai` client
 * drives it over HTTP in test/e2e/openai-client.test.ts.
 */
import { describe, expect, it } from "vitest";
import { acceptedModelNames, MODEL_ALIAS } from "../../workers/edge/src/openai-embeddings.js";
import { LIMITS } from "../../workers/edge/src/schemas.js";
import { base64ToFloat32, float32ToBase64 } from "../../workers/edge/src/vector-encoding.js";
import { harness, json, type Harness } from "./support/edge-harness.js";

interface EmbeddingsBody {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}
interface ErrorBody {
  error: { code: string; message: string; type: string; param?: string };
}

const texts = ["The lighthouse keeper trimmed the wick.", "Glaciers carve U-shaped valleys.", "espresso"];

function post(h: Harness, body: unknown): Promise<Response> {
  return h.request("/v1/embeddings", { method: "POST", json: body, apiKey: null });
}

function norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}

async function expectRefused(response: Response, status: number, code: string, param: string | undefined, message: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  const { error } = await json<ErrorBody>(response);
  expect(error).toMatchObject({ code, type: "invalid_request_error" });
  expect(error.param).toBe(param);
  expect(error.message).toMatch(message);
}

describe("POST /v1/embeddings", () => {
  it("answers OpenAI's shape: full-width unit vectors, name@version, real token counts", async () => {
    const h = await harness();
    const response = await post(h, { model: MODEL_ALIAS, input: texts[0] });
    expect(response.status).toBe(200);
    const body = await json<EmbeddingsBody>(response);
    expect(body).toMatchObject({ object: "list", model: `${h.model.info.name}@${h.model.info.version}` });
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ object: "embedding", index: 0 });
    const vector = body.data[0]!.embedding as number[];
    expect(vector).toHaveLength(h.model.info.dims);
    expect(norm(vector)).toBeCloseTo(1, 5);
    const tokens = h.model.tokenizer.tokenize(texts[0]!).length;
    expect(tokens).toBeGreaterThan(0);
    expect(body.usage).toEqual({ prompt_tokens: tokens, total_tokens: tokens });
  });

  it("returns /v1/embed's vectors for a batch, in order, at the asked width", async () => {
    const h = await harness();
    const body = await json<EmbeddingsBody>(await post(h, { model: MODEL_ALIAS, input: texts, dimensions: 64 }));
    expect(body.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const ours = await json<{ embeddings: number[][] }>(
      await h.request("/v1/embed", { method: "POST", json: { input: texts, dims: 64, depth: "auto" }, apiKey: null }),
    );
    expect(body.data.map((d) => d.embedding)).toEqual(ours.embeddings);
    for (const d of body.data) expect(norm(d.embedding as number[])).toBeCloseTo(1, 5);
    const tokens = texts.reduce((sum, text) => sum + h.model.tokenizer.tokenize(text).length, 0);
    expect(body.usage.prompt_tokens).toBe(tokens);
  });

  it("encodes base64 as little-endian float32, the same numbers as float", async () => {
    const h = await harness();
    const float = await json<EmbeddingsBody>(await post(h, { model: MODEL_ALIAS, input: texts, dimensions: 128, encoding_format: "float" }));
    const base64 = await json<EmbeddingsBody>(await post(h, { model: MODEL_ALIAS, input: texts, dimensions: 128, encoding_format: "base64" }));
    base64.data.forEach((d, i) => {
      expect(typeof d.embedding).toBe("string");
      expect(Array.from(base64ToFloat32(d.embedding as string))).toEqual(float.data[i]!.embedding);
    });
    // Byte order is part of the format, whatever the host's: 1.0f is 00 00 80 3f.
    expect(float32ToBase64([1, -0.5])).toBe("AACAPwAAAL8=");
  });

  it("accepts the alias, the model's name and name@version; null optional fields count as absent", async () => {
    const h = await harness();
    const names = acceptedModelNames(h.model.info);
    expect(names).toEqual([MODEL_ALIAS, h.model.info.name, `${h.model.info.name}@${h.model.info.version}`]);
    for (const model of names) expect((await post(h, { model, input: "hello" })).status).toBe(200);
    const response = await post(h, { model: MODEL_ALIAS, input: ["hello"], dimensions: null, encoding_format: null, user: "user-42" });
    expect(response.status).toBe(200);
    expect(((await json<EmbeddingsBody>(response)).data[0]!.embedding as number[]).length).toBe(h.model.info.dims);
  });

  it("answers 404 model_not_found, listing the accepted names, for any other model", async () => {
    const h = await harness();
    for (const model of ["text-embedding-3-small", `${h.model.info.name}@0.0.0-other`]) {
      const response = await post(h, { model, input: "hello" });
      await expectRefused(response, 404, "model_not_found", "model", new RegExp(`"${MODEL_ALIAS}".*"${h.model.info.name}"`));
    }
    expect(h.embedder.calls).toBe(0);
  });

  it("refuses what it cannot serve with a 400 naming the field", async () => {
    const h = await harness();
    const model = MODEL_ALIAS;
    const cases: [unknown, string | undefined, RegExp][] = [
      [{ model, input: [1, 2, 3] }, "input", /token-id inputs are not supported/],
      [{ model, input: [[1, 2], [3]] }, "input", /token-id inputs are not supported/],
      [{ model, input: "hi", dimensions: 100 }, "dimensions", /dimensions must be 64, 128, 256 or 384/],
      [{ model, input: "hi", dimensions: "128" }, "dimensions", /dimensions must be/],
      [{ model, input: "hi", encoding_format: "int8" }, "encoding_format", /encoding_format must be "float" or "base64"/],
      [{ input: "hi" }, "model", /model is required/],
      [{ model: 7, input: "hi" }, "model", /model must be a string/],
      [{ model }, "input", /input must be a string or an array of strings/],
      [{ model, input: [] }, "input", /must not be an empty array/],
      [{ model, input: ["a", 3] }, "input.1", /each input must be a string/],
      [{ model, input: "" }, "input.0", /must not be empty/],
      [{ model, input: "x".repeat(LIMITS.embedInputChars + 1) }, "input.0", /at most 8000 characters/],
      [{ model, input: Array.from({ length: LIMITS.embedInputs + 1 }, () => "x") }, "input", /at most 64 texts/],
      [{ model, input: "hi", dims: 64 }, undefined, /unrecognized key.*dims/i],
    ];
    for (const [body, param, message] of cases) await expectRefused(await post(h, body), 400, "invalid_request", param, message);
    const notJson = await h.request("/v1/embeddings", { method: "POST", body: "{", apiKey: null });
    expect(notJson.status).toBe(400);
    expect((await json<ErrorBody>(notJson)).error).toMatchObject({ code: "invalid_json", type: "invalid_request_error" });
    expect(h.embedder.calls).toBe(0);
  });

  it("gives every route's errors OpenAI's type: 5xx are server_error", async () => {
    const h = await harness({ loadModel: () => Promise.reject(new Error("no bundle")) });
    const response = await post(h, { model: MODEL_ALIAS, input: "hi" });
    expect(response.status).toBe(503);
    expect((await json<ErrorBody>(response)).error).toMatchObject({ code: "model_unavailable", type: "server_error" });
    const wrongMethod = await h.request("/v1/embeddings", { method: "GET" });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
  });
});

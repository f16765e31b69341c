/**
 * The real `openai` npm client against the real local service (wrangler dev → workerd, the bundled model), over
 * loopback HTTP: what a user with existing OpenAI code gets by changing only the base URL.
 */
import OpenAI, { BadRequestError, NotFoundError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalService, type LocalService } from "../../workers/edge/dev/local-service.js";

let service: LocalService;
let client: OpenAI;

beforeAll(async () => {
  service = await startLocalService({ readyTimeoutMs: 180_000 });
  // No retries: a refused request must surface as the error it is, at once.
  client = new OpenAI({ apiKey: "unused", baseURL: `${service.url}/v1`, maxRetries: 0 });
}, 200_000);

afterAll(async () => {
  await service?.stop();
});

const texts = ["How do glaciers carve valleys?", "Pulling an espresso shot at nine bars", "lighthouse"];

function norm(vector: readonly number[]): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}

async function embedNative(input: string[], dims: number): Promise<number[][]> {
  const response = await fetch(`${service.url}/v1/embed`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input, dims, depth: "auto" }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { embeddings: number[][] }).embeddings;
}

describe("the openai client against /v1/embeddings", () => {
  it("embeds one string at the model's full width, with usage", async () => {
    const response = await client.embeddings.create({ model: "taesr-edge", input: texts[0]!, encoding_format: "float" });
    expect(response.object).toBe("list");
    expect(response.model).toMatch(/^[\w.-]+@\d+\.\d+\.\d+/);
    expect(response.data).toHaveLength(1);
    expect(response.data[0]!.embedding).toHaveLength(384);
    expect(norm(response.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(response.usage.prompt_tokens).toBeGreaterThan(0);
    expect(response.usage.total_tokens).toBe(response.usage.prompt_tokens);
  });

  it("embeds a batch at 64 dimensions: unit vectors, and the same ones /v1/embed returns", async () => {
    const response = await client.embeddings.create({ model: "taesr-edge", input: texts, dimensions: 64, encoding_format: "float" });
    expect(response.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const d of response.data) {
      expect(d.embedding).toHaveLength(64);
      expect(norm(d.embedding)).toBeCloseTo(1, 5);
    }
    expect(response.data.map((d) => d.embedding)).toEqual(await embedNative(texts, 64));
  });

  it("decodes the base64 it asks for by default into the same numbers as float", async () => {
    // Without encoding_format the client sends "base64" and decodes the float32 bytes itself.
    const decoded = await client.embeddings.create({ model: "taesr-edge", input: texts, dimensions: 128 });
    const float = await client.embeddings.create({ model: "taesr-edge", input: texts, dimensions: 128, encoding_format: "float" });
    expect(decoded.data.map((d) => d.embedding)).toEqual(float.data.map((d) => d.embedding));
    expect(decoded.data[0]!.embedding).toHaveLength(128);
    // And raw base64 when asked for it explicitly (what the Python client and LangChain may request).
    const raw = await client.embeddings.create({ model: "taesr-edge", input: texts[0]!, dimensions: 128, encoding_format: "base64" });
    expect(typeof raw.data[0]!.embedding).toBe("string");
  });

  it("accepts the model's own name and name@version, as reported back", async () => {
    const { model } = await client.embeddings.create({ model: "taesr-edge", input: "hello", encoding_format: "float" });
    const name = model.split("@")[0]!;
    for (const asked of [name, model]) {
      expect((await client.embeddings.create({ model: asked, input: "hello", encoding_format: "float" })).model).toBe(model);
    }
  });

  it("throws NotFoundError for an unknown model, with OpenAI's error fields", async () => {
    const error = await client.embeddings.create({ model: "text-embedding-3-small", input: "hello" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ status: 404, code: "model_not_found", type: "invalid_request_error", param: "model" });
    expect((error as Error).message).toMatch(/^404 .*"taesr-edge"/);
  });

  it("throws BadRequestError for dimensions the model does not have", async () => {
    const error = await client.embeddings.create({ model: "taesr-edge", input: "hello", dimensions: 100 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BadRequestError);
    expect(error).toMatchObject({ status: 400, code: "invalid_request", param: "dimensions" });
    expect((error as Error).message).toMatch(/dimensions must be 64, 128, 256 or 384/);
  });
});

describe("GET /openapi.json", () => {
  it("is served by the running worker", async () => {
    const response = await fetch(`${service.url}/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).toBe("3.1.0");
    expect(Object.keys(document.paths)).toContain("/v1/embeddings");
  });
});

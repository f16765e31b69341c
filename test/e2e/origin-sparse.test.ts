/**
 * End to end: the origin's sparse terms over HTTP, with real artifacts on onnxruntime-node — taesr-edge-small@0.4.0
 * (a trained sparse head) returns each text's terms from the same pass as its embedding, cut as the request asks and
 * equal to what an in-process TaesrEncoder gives; taesr-edge-small@0.3.0 (no head) answers a request for them with a
 * 400 naming why. The edge asks for them when it indexes documents for its sparse list, and for hard-routed queries.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaesrEncoder } from "../../src/model/index.js";
import { loadOriginModel } from "../../workers/origin/src/origin-model.js";
import { startOrigin, type OriginServer } from "../../workers/origin/src/server.js";
import { fp32Encoder } from "../support/fp32-encoder.js";

const SECRET = "origin-sparse-secret";
const artifacts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../model-artifacts");
const WITH_HEAD = path.join(artifacts, "taesr-edge-small@0.4.0");
const WITHOUT_HEAD = path.join(artifacts, "taesr-edge-small@0.3.0");

let reference: TaesrEncoder;
let withHead: OriginServer;
let withoutHead: OriginServer;

async function start(dir: string): Promise<OriginServer> {
  const origin = await startOrigin({ secret: SECRET, loadModel: () => loadOriginModel({ dir, provider: "cpu", threads: 1 }), log: () => undefined });
  await origin.loaded;
  return origin;
}

beforeAll(async () => {
  reference = await fp32Encoder(WITH_HEAD);
  [withHead, withoutHead] = await Promise.all([start(WITH_HEAD), start(WITHOUT_HEAD)]);
});

afterAll(async () => {
  await Promise.all([withHead?.shutdown(), withoutHead?.shutdown()]);
  await reference?.release();
});

function embed(origin: OriginServer, body: unknown): Promise<Response> {
  return fetch(`${origin.url}/v1/embed`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${SECRET}` },
    body: JSON.stringify(body),
  });
}

describe("origin sparse terms", () => {
  it("returns the sparse head's terms from the same pass, cut as asked, as the in-process encoder makes them", async () => {
    const texts = ["how do glaciers carve valleys", "espresso"];
    for (const cut of [{ threshold: 0, maxTerms: 16 }, { threshold: 0.01, maxTerms: 256 }]) {
      const response = await embed(withHead, { input: texts, dims: 128, depth: 1, sparse: cut });
      expect(response.status).toBe(200);
      const body = (await response.json()) as { embeddings: number[][]; sparse: [number, number][][] };
      expect(body.embeddings).toHaveLength(texts.length);
      expect(body.sparse).toHaveLength(texts.length);
      const expected = (await reference.embed(texts, { dims: 128, depth: 1, earlyExit: false, sparse: cut })).sparse!;
      for (const [i, pairs] of body.sparse.entries()) {
        expect(pairs.length, `text ${i}`).toBeGreaterThan(0);
        expect(pairs.length).toBeLessThanOrEqual(cut.maxTerms);
        expect(pairs.every(([, weight]) => weight > cut.threshold)).toBe(true);
        // Heaviest first, and exactly the encoder's own terms and weights.
        expect(pairs.map(([, w]) => w)).toEqual([...pairs.map(([, w]) => w)].sort((a, b) => b - a));
        expect(Object.fromEntries(pairs)).toEqual(Object.fromEntries(Object.entries(expected[i]!).map(([id, w]) => [Number(id), w])));
      }
    }
    // Not asked, not sent.
    const plain = (await (await embed(withHead, { input: texts, dims: 128 })).json()) as Record<string, unknown>;
    expect(plain).not.toHaveProperty("sparse");
  });

  it("answers 400 naming the missing head when the model has none", async () => {
    const response = await embed(withoutHead, { input: ["x"], sparse: { threshold: 0, maxTerms: 8 } });
    expect(response.status).toBe(400);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("invalid_request");
    expect(error.message).toMatch(/taesr-edge-small@0\.3\.0 has no sparse head/);
  });
});

/**
 * End to end: the origin embeds documents as passages when the edge asks (a model whose manifest chose
 * `retrieval.documentPassages`), over HTTP with the bundled artifact on onnxruntime-node — one pooled vector per text,
 * equal to what an in-process TaesrEncoder gives with the same passages and unlike the text embedded whole; a request
 * for passages the model cannot read (more word pieces than its maxLength, or too many) is a 400 that says so.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaesrEncoder } from "../../src/model/index.js";
import { loadOriginModel } from "../../workers/origin/src/origin-model.js";
import { startOrigin, type OriginServer } from "../../workers/origin/src/server.js";
import { fp32Encoder } from "../support/fp32-encoder.js";

const SECRET = "origin-passages-secret";
const artifacts = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../model-artifacts");
const bundled = (JSON.parse(readFileSync(path.join(artifacts, "bundled.json"), "utf8")) as { artifact: string }).artifact;
const MODEL = path.join(artifacts, bundled);

let reference: TaesrEncoder;
let origin: OriginServer;

beforeAll(async () => {
  reference = await fp32Encoder(MODEL);
  origin = await startOrigin({ secret: SECRET, loadModel: () => loadOriginModel({ dir: MODEL, provider: "cpu", threads: 1 }), log: () => undefined });
  await origin.loaded;
});

afterAll(async () => {
  await origin?.shutdown();
  await reference?.release();
});

function embed(body: unknown): Promise<Response> {
  return fetch(`${origin.url}/v1/embed`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${SECRET}` },
    body: JSON.stringify(body),
  });
}

/** A document of several sentences on different subjects, long enough for passages of 16 word pieces to split it. */
const LONG =
  "Field notes\nGlaciers carve deep valleys as they slide downhill over thousands of years. " +
  "Espresso is brewed by forcing hot water through finely ground coffee beans. " +
  "A bicycle chain lasts longer when it is cleaned and oiled every few hundred kilometres. " +
  "Tides rise and fall twice a day because of the pull of the moon.";
const SHORT = "espresso";

describe("origin document passages", () => {
  it("pools a text's passages into one vector, as the in-process encoder does, and leaves a text that fits alone", async () => {
    const passages = { maxPieces: 16, maxPassages: 8 };
    const response = await embed({ input: [LONG, SHORT], dims: 128, depth: 1, passages });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { embeddings: number[][] };
    expect(body.embeddings).toHaveLength(2);

    const asPassages = await reference.embed([LONG, SHORT], { dims: 128, depth: 1, earlyExit: false, passages });
    expect(asPassages.passages![0]!.count).toBeGreaterThan(2);
    const whole = await reference.embed([LONG, SHORT], { dims: 128, depth: 1, earlyExit: false });
    for (const [i, row] of body.embeddings.entries()) {
      const expected = asPassages.embeddings[i]!;
      for (let d = 0; d < 128; d++) expect(row[d]!, `text ${i} component ${d}`).toBeCloseTo(expected[d]!, 5);
    }
    const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from({ length: 128 }, (_, d) => a[d]! * b[d]!).reduce((s, x) => s + x, 0);
    // The long text reads past its first window; the short one is one passage: exactly its whole embedding.
    expect(cosine(body.embeddings[0]!, whole.embeddings[0]!)).toBeLessThan(0.999);
    expect(cosine(body.embeddings[1]!, whole.embeddings[1]!)).toBeCloseTo(1, 5);
  });

  it("answers 400 naming the field for passages the model cannot read", async () => {
    const manifest = reference.manifest;
    for (const [passages, pattern] of [
      [{ maxPieces: manifest.architecture.maxLength + 1, maxPassages: 8 }, new RegExp(`passages\\.maxPieces: maxPieces must be at most ${manifest.architecture.maxLength}`)],
      [{ maxPieces: 8, maxPassages: 8 }, /passages\.maxPieces/],
      [{ maxPieces: 64, maxPassages: 65 }, /maxPassages must be at most 64/],
      [{ maxPieces: 64 }, /passages\.maxPassages/],
    ] as const) {
      const response = await embed({ input: [LONG], dims: 128, passages });
      expect(response.status, JSON.stringify(passages)).toBe(400);
      const { error } = (await response.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("invalid_request");
      expect(error.message).toMatch(pattern);
    }
  });
});

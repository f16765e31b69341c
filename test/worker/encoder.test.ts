/**
 * TaesrEncoder inside workerd on onnxruntime-web (int8, the edge variant), with the committed random-weight fixture
 * bundled as Data modules. Embeddings are compared with the ones onnxruntime-node produced for the same artifact
 * (test/fixtures/*.parity.json, written by test/support/fixture-artifact.ts), so the two engines are held equal.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { TaesrEncoder, maxCosineDistance, type ArtifactManifest } from "../../src/model/index.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { ortWorkerd } from "../../workers/edge/src/ort-workerd.js";
import parity from "../fixtures/taesr-random@0.0.0-test.parity.json";
import embedOnnx from "../fixtures/taesr-random@0.0.0-test/int8/embed.onnx";
import stepOnnx from "../fixtures/taesr-random@0.0.0-test/int8/step.onnx";
import manifestJson from "../fixtures/taesr-random@0.0.0-test/manifest.json";
import tokenizerJson from "../fixtures/taesr-random@0.0.0-test/tokenizer.json";

const manifest = manifestJson as ArtifactManifest;
const files = { "int8/embed.onnx": new Uint8Array(embedOnnx), "int8/step.onnx": new Uint8Array(stepOnnx) };
const tokenizer = WordPieceTokenizer.fromJSON(tokenizerJson as TokenizerJSON);
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  1 - maxCosineDistance(Float32Array.from(a), Float32Array.from(b), 1, a.length);

let encoder: TaesrEncoder;
beforeAll(async () => {
  encoder = await TaesrEncoder.create({ ort: ortWorkerd, manifest, files, variant: "int8", tokenizer });
});

describe("TaesrEncoder in workerd (onnxruntime-web, int8)", () => {
  it("matches onnxruntime-node on the same artifact at depths 1, 3 and 6", async () => {
    for (const [depth, expected] of Object.entries(parity.embeddings)) {
      for (const [i, text] of parity.texts.entries()) {
        const r = await encoder.embed([text], { depth: Number(depth), earlyExit: false });
        expect(r.depth).toBe(Number(depth));
        expect(cosine(r.embeddings[0]!, expected[i]!), `"${text}" at depth ${depth}`).toBeGreaterThan(0.9999);
      }
    }
  });

  it("returns unit-length Matryoshka prefixes", async () => {
    const full = await encoder.embed(["how fast is the edge model"], { depth: 1 });
    const r = await encoder.embed(["how fast is the edge model"], { depth: 1, dims: 128 });
    expect(r.embeddings[0]).toHaveLength(128);
    expect(Math.hypot(...r.embeddings[0]!)).toBeCloseTo(1, 5);
    expect(cosine(r.embeddings[0]!, full.embeddings[0]!.slice(0, 128))).toBeCloseTo(1, 6);
  });

  it("routes by length and exits early", async () => {
    const long = Array.from({ length: 12 }, () => "query").join(" ");
    expect(await encoder.embed(["edge"], { earlyExit: false })).toMatchObject({ route: "easy", depth: 1 });
    expect(await encoder.embed(["edge", long], { earlyExit: false })).toMatchObject({ route: "medium", depth: 3 });
    const loose = await TaesrEncoder.create({ ort: ortWorkerd, manifest: { ...manifest, earlyExitEpsilon: 10 }, files, variant: "int8", tokenizer });
    expect(await loose.embed([long], { depth: 6 })).toMatchObject({ depth: 2, requestedDepth: 6, earlyExit: true });
    await loose.release();
  });

  it("verifies sha256 with crypto.subtle and rejects a tampered graph", async () => {
    const tampered = files["int8/step.onnx"].slice();
    tampered[10]! ^= 1;
    await expect(
      TaesrEncoder.create({ ort: ortWorkerd, manifest, files: { ...files, "int8/step.onnx": tampered }, variant: "int8", tokenizer }),
    ).rejects.toThrow(/"int8\/step\.onnx" has sha256/);
  });
});

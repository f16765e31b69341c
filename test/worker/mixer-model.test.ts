/**
 * An mlp_mixer artifact inside workerd: the committed small token-mixer fixture (test/fixtures/taesr-mixer@0.0.0-test,
 * random weights, written by the real exporter: `npx tsx test/support/fixture-artifact.ts test/fixtures 16 128 mlp_mixer`)
 * loads through model-loader's real path and TaesrEncoder on onnxruntime-web (int8) embeds as onnxruntime-node did for
 * the same artifact (its .parity.json), at depths 1, 3 and 6 — the token mixer's Slice of its weights by the sequence
 * length included — and padding in a batch changes no embedding.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { TaesrEncoder, maxCosineDistance, type ArtifactManifest } from "../../src/model/index.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { createEdgeModel } from "../../workers/edge/src/model-loader.js";
import { ortWorkerd } from "../../workers/edge/src/ort-workerd.js";
import parity from "../fixtures/taesr-mixer@0.0.0-test.parity.json";
import embedOnnx from "../fixtures/taesr-mixer@0.0.0-test/int8/embed.onnx";
import stepOnnx from "../fixtures/taesr-mixer@0.0.0-test/int8/step.onnx";
import manifestJson from "../fixtures/taesr-mixer@0.0.0-test/manifest.json";
import tokenizerJson from "../fixtures/taesr-mixer@0.0.0-test/tokenizer.json";

const manifest = manifestJson as ArtifactManifest;
const files = { "int8/embed.onnx": new Uint8Array(embedOnnx), "int8/step.onnx": new Uint8Array(stepOnnx) };
const tokenizer = WordPieceTokenizer.fromJSON(tokenizerJson as TokenizerJSON);
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  1 - maxCosineDistance(Float32Array.from(a), Float32Array.from(b), 1, a.length);

let encoder: TaesrEncoder;
beforeAll(async () => {
  encoder = await TaesrEncoder.create({ ort: ortWorkerd, manifest, files, variant: "int8", tokenizer });
});

describe("mlp_mixer artifact in workerd (onnxruntime-web, int8)", () => {
  it("is a token-mixer model", () => {
    expect(manifest.architecture.block).toBe("mlp_mixer");
  });

  it("matches onnxruntime-node on the same artifact at depths 1, 3 and 6", async () => {
    for (const [depth, expected] of Object.entries(parity.embeddings)) {
      for (const [i, text] of parity.texts.entries()) {
        const r = await encoder.embed([text], { depth: Number(depth), earlyExit: false });
        expect(r.depth).toBe(Number(depth));
        expect(cosine(r.embeddings[0]!, expected[i]!), `"${text}" at depth ${depth}`).toBeGreaterThan(0.9999);
      }
    }
  });

  it("embeds a text the same alone and padded in a batch beside a longer one", async () => {
    const text = "vector search";
    const alone = await encoder.embed([text], { depth: 3, earlyExit: false });
    const batch = await encoder.embed([text, "how fast is the edge model for a vector query of many words"], { depth: 3, earlyExit: false });
    // int8: activations are quantised per tensor, so a batch neighbour moves the scale a little; fp32 is exact (unit tests).
    expect(cosine(alone.embeddings[0]!, batch.embeddings[0]!)).toBeGreaterThan(0.999);
  });

  it("loads through the edge model loader and embeds through it", async () => {
    const model = await createEdgeModel({ manifest, files: { "int8/embed.onnx": embedOnnx, "int8/step.onnx": stepOnnx }, tokenizerJson });
    expect(model.info).toEqual({ name: "taesr-mixer", version: "0.0.0-test", dims: 384, variant: "int8", fullDepth: 6 });
    const r = await model.encoder.embed(["how fast is the edge model"], { depth: 6, earlyExit: false, dims: 128 });
    expect(r.embeddings[0]).toHaveLength(128);
    expect(Math.hypot(...r.embeddings[0]!)).toBeCloseTo(1, 5);
    await model.encoder.release();
  });
});

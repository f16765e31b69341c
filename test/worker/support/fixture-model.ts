/**
 * The committed random-weight TAESR fixture (test/fixtures/taesr-random@0.0.0-test, written by the real exporter) as an
 * artifact bundle — the same shape bundled-model.ts exports — so tests can drive model-loader's real path (tokenizer,
 * sha256 verification, onnxruntime-web sessions in workerd) before a trained artifact is bundled.
 */
import type { ArtifactManifest } from "../../../src/model/index.js";
import { createEdgeModel, type BundledModelModule, type LoadedEdgeModel } from "../../../workers/edge/src/model-loader.js";
import embedOnnx from "../../fixtures/taesr-random@0.0.0-test/int8/embed.onnx";
import embedInt4Onnx from "../../fixtures/taesr-random@0.0.0-test/int4/embed.onnx";
import stepOnnx from "../../fixtures/taesr-random@0.0.0-test/int8/step.onnx";
import stepInt8wOnnx from "../../fixtures/taesr-random@0.0.0-test/int8w/step.onnx";
import embedFp32Onnx from "../../fixtures/taesr-random@0.0.0-test/fp32/embed.onnx";
import stepFp32Onnx from "../../fixtures/taesr-random@0.0.0-test/fp32/step.onnx";
import manifestJson from "../../fixtures/taesr-random@0.0.0-test/manifest.json";
import tokenizerJson from "../../fixtures/taesr-random@0.0.0-test/tokenizer.json";
import lateEmbedOnnx from "../../fixtures/taesr-late@0.0.0-test/int8/embed.onnx";
import lateStepOnnx from "../../fixtures/taesr-late@0.0.0-test/int8/step.onnx";
import lateHeadOnnx from "../../fixtures/taesr-late@0.0.0-test/int8/late.onnx";
import lateManifestJson from "../../fixtures/taesr-late@0.0.0-test/manifest.json";
import lateTokenizerJson from "../../fixtures/taesr-late@0.0.0-test/tokenizer.json";
import sparseEmbedOnnx from "../../fixtures/taesr-sparse@0.0.0-test/int8/embed.onnx";
import sparseStepOnnx from "../../fixtures/taesr-sparse@0.0.0-test/int8/step.onnx";
import sparseHeadOnnx from "../../fixtures/taesr-sparse@0.0.0-test/int8/sparse.onnx";
import sparseManifestJson from "../../fixtures/taesr-sparse@0.0.0-test/manifest.json";
import sparseTokenizerJson from "../../fixtures/taesr-sparse@0.0.0-test/tokenizer.json";

export const fixtureBundle: BundledModelModule = {
  manifest: manifestJson as ArtifactManifest,
  files: { "int8/embed.onnx": embedOnnx, "int8/step.onnx": stepOnnx },
  tokenizerJson,
};

/** The same fixture as the int4 variant: its 4-bit token-table embed graph and the shared int8 step graph. */
export const fixtureInt4Bundle: BundledModelModule = {
  manifest: manifestJson as ArtifactManifest,
  files: { "int4/embed.onnx": embedInt4Onnx, "int8/step.onnx": stepOnnx },
  tokenizerJson,
  variant: "int4",
};

/** The same fixture as the int8w variant: int8's embed graph and the step graph with int8 weights, float arithmetic. */
export const fixtureInt8wBundle: BundledModelModule = {
  manifest: manifestJson as ArtifactManifest,
  files: { "int8/embed.onnx": embedOnnx, "int8w/step.onnx": stepInt8wOnnx },
  tokenizerJson,
  variant: "int8w",
};

/** The same fixture unquantised (the origin's variant), as the reference the edge variants are measured against. */
export const fixtureFp32Bundle: BundledModelModule = {
  manifest: manifestJson as ArtifactManifest,
  files: { "fp32/embed.onnx": embedFp32Onnx, "fp32/step.onnx": stepFp32Onnx },
  tokenizerJson,
  variant: "fp32",
};

let model: Promise<LoadedEdgeModel> | undefined;

export function fixtureModel(): Promise<LoadedEdgeModel> {
  model ??= createEdgeModel(fixtureBundle);
  return model;
}

/**
 * A random-weight fixture WITH a late-interaction head (architecture.lateHead {dim: 8}; hidden 16, 128 pieces, 32
 * positions), written by the real exporter: test/fixtures/taesr-late@0.0.0-test, regenerated with
 *   writeFixtureArtifact({ outDir: "test/fixtures", name: "taesr-late", hidden: 16, vocabSize: 128, maxLength: 32,
 *                          lateHead: { dim: 8 }, seed: 7 })   (test/support/fixture-artifact.ts)
 * Its manifest ships no tuned late fusion; tests add one (the manifest is outside its own sha256 list).
 */
export const fixtureLateBundle: BundledModelModule = {
  manifest: lateManifestJson as ArtifactManifest,
  files: { "int8/embed.onnx": lateEmbedOnnx, "int8/step.onnx": lateStepOnnx, "int8/late.onnx": lateHeadOnnx },
  tokenizerJson: lateTokenizerJson,
};

/**
 * A random-weight fixture WITH the SPLADE-style sparse head (architecture.sparseHead; hidden 16, 128 pieces, 32
 * positions), written by the real exporter: test/fixtures/taesr-sparse@0.0.0-test, regenerated with
 *   npx tsx test/support/fixture-artifact.ts test/fixtures 16 128 sparse
 * i.e. writeFixtureArtifact({ outDir: "test/fixtures", name: "taesr-sparse", hidden: 16, vocabSize: 128, maxLength: 32,
 * sparseHead: true, seed: 11, weights: sparseFixtureWeights() }) — seed 11's weights with a livelier token table and a
 * negative term bias, so that a text has a handful of terms rather than none or all (see sparseFixtureWeights).
 */
export const fixtureSparseBundle: BundledModelModule = {
  manifest: sparseManifestJson as ArtifactManifest,
  files: { "int8/embed.onnx": sparseEmbedOnnx, "int8/step.onnx": sparseStepOnnx, "int8/sparse.onnx": sparseHeadOnnx },
  tokenizerJson: sparseTokenizerJson,
};

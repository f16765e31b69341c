/**
 * An artifact's fp32 graphs in process on onnxruntime-node: the reference the origin's HTTP answers are compared with
 * (the origin serves the same fp32 variant).
 */
import { TaesrEncoder } from "../../src/model/index.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { readArtifactDir } from "../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

export async function fp32Encoder(dir: string): Promise<TaesrEncoder> {
  const artifact = await readArtifactDir(dir, ["fp32"]);
  return TaesrEncoder.create({
    ort: ortNode,
    manifest: artifact.manifest,
    files: artifact.files,
    variant: "fp32",
    tokenizer: WordPieceTokenizer.fromJSON(artifact.tokenizerJson),
  });
}

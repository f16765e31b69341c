/**
 * Trained weights from a published artifact directory (model-artifacts/<name>@<version>/), for `initFrom`: the manifest
 * is validated, the fp32 graphs are checked against its sha256s, and their initializers are read back
 * (src/model/onnx-weights.ts). The int8 graphs are never used: quantised weights are not the trained ones.
 *
 * @module
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parseManifest, verifyArtifactFiles } from "../../../src/model/manifest.js";
import { weightsFromArtifactGraphs } from "../../../src/model/onnx-weights.js";
import type { ArtifactManifest, TaesrArchitecture } from "../../../src/model/spec.js";
import type { TaesrWeights } from "./params.js";

export interface ArtifactWeights {
  architecture: TaesrArchitecture;
  weights: TaesrWeights;
  manifest: ArtifactManifest;
}

/** True when `p` is a directory (an artifact) rather than a params file. */
export async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** The artifact's manifest, validated; the error says when `dir` is not an artifact directory at all. */
export async function readArtifactManifest(dir: string): Promise<ArtifactManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, "manifest.json"), "utf8");
  } catch {
    throw new Error(`${dir} has no manifest.json: is it a model artifact directory (model-artifacts/<name>@<version>)?`);
  }
  return parseManifest(text);
}

export async function loadArtifactWeights(dir: string): Promise<ArtifactWeights> {
  const manifest = await readArtifactManifest(dir);
  const { embed, step, sparse, late } = manifest.variants.fp32;
  const rels = [embed, step, ...(sparse ? [sparse] : []), ...(late ? [late] : [])];
  const files: Record<string, Uint8Array> = {};
  for (const rel of rels) {
    try {
      files[rel] = new Uint8Array(await readFile(path.join(dir, ...rel.split("/"))));
    } catch (err) {
      throw new Error(`${dir}: cannot read ${rel} (${(err as Error).message}); the fp32 variant is the one weights are read from`);
    }
  }
  // A corrupted or hand-edited graph must not silently become the starting point of a new model.
  await verifyArtifactFiles(manifest, files, { paths: rels });
  const weights = weightsFromArtifactGraphs(files[embed]!, files[step]!, manifest.architecture, sparse ? files[sparse] : undefined, late ? files[late] : undefined);
  return { architecture: manifest.architecture, weights, manifest };
}

/**
 * Reads a model artifact directory from disk into the platform-neutral shape the runtime takes
 * (`manifest` + `files` by manifest path + tokenizer JSON). Node only: the Worker bundles its artifact as modules.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseManifest, variantGraphs, type ArtifactManifest, type ArtifactVariant } from "../../../src/model/index.js";
import type { TokenizerJSON } from "../../../src/tokenizer/index.js";

export const artifactsRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../model-artifacts");

/**
 * The artifact the Worker bundles (model-artifacts/bundled.json names it): the default model of the origin, of
 * evaluation and of the benchmarks, so all of them serve the model the edge runs.
 */
export async function defaultArtifactDir(): Promise<string> {
  const pointer = JSON.parse(await readFile(path.join(artifactsRoot, "bundled.json"), "utf8")) as { artifact: string };
  return path.join(artifactsRoot, pointer.artifact);
}

export interface ArtifactOnDisk {
  dir: string;
  manifest: ArtifactManifest;
  files: Record<string, Uint8Array>;
  tokenizerJson: TokenizerJSON;
}

export async function readArtifactDir(dir: string, variants: readonly ArtifactVariant[] = ["fp32", "int8"]): Promise<ArtifactOnDisk> {
  let manifestText: string;
  try {
    manifestText = await readFile(path.join(dir, "manifest.json"), "utf8");
  } catch {
    throw new Error(`no manifest.json in ${dir}: is this a model artifact directory (model-artifacts/<name>@<version>)?`);
  }
  const manifest = parseManifest(manifestText);
  // A set: two variants may share a graph (int4 runs int8/step.onnx).
  const wanted = new Set([manifest.tokenizer, ...variants.flatMap((variant) => Object.values(variantGraphs(manifest, variant)))]);
  const files: Record<string, Uint8Array> = {};
  for (const relative of wanted) files[relative] = new Uint8Array(await readFile(path.join(dir, relative)));
  const tokenizerJson = JSON.parse(new TextDecoder().decode(files[manifest.tokenizer])) as TokenizerJSON;
  return { dir, manifest, files, tokenizerJson };
}

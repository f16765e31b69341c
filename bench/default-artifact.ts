/** The artifact the Worker bundles (model-artifacts/bundled.json), the default model for evaluation and benchmarks. */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const artifactsRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../model-artifacts");

export async function defaultArtifactDir(): Promise<string> {
  const pointer = JSON.parse(await readFile(path.join(artifactsRoot, "bundled.json"), "utf8")) as { artifact: string };
  return path.join(artifactsRoot, pointer.artifact);
}

/**
 * A tiny base artifact exported the way a training run exports (taesr-test-small@0.3.0 with the 8k vocabulary, a rule
 * router, the given weights): what adaptation and initFrom tests start from. Random weights are enough there, since
 * what they test is the plumbing.
 *
 * @example
 *   const baseDir = await exportTestBase(path.join(tmp, "artifacts"), tinyArchitecture(8192), initWeights(arch, 7));
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { TaesrArchitecture } from "../../../src/model/spec.js";
import { exportArtifact } from "../../src/export/artifact.js";
import type { TaesrWeights } from "../../src/model/params.js";

export const TEST_TOKENIZER = fileURLToPath(new URL("../../vocab/taesr-8k.json", import.meta.url));

/** Exports the artifact into `outDir` and returns its directory. */
export async function exportTestBase(outDir: string, arch: TaesrArchitecture, weights: TaesrWeights): Promise<string> {
  const { dir } = await exportArtifact({
    outDir,
    name: "taesr-test-small",
    version: "0.3.0",
    arch,
    weights,
    tokenizerJson: await readFile(TEST_TOKENIZER, "utf8"),
    router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 },
    earlyExitEpsilon: 0.002,
    training: { note: "test base" },
    eval: {},
  });
  return dir;
}

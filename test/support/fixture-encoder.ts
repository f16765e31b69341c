/**
 * A random-weight fixture artifact opened the way an application opens one, for TaesrEncoder tests in Node: exported
 * by writeFixtureArtifact into a fresh temp directory, every file its manifest lists read into memory, its tokenizer
 * parsed, an fp32 TaesrEncoder on onnxruntime-node, and TAESRModel on the same weights for reference values.
 * `release()` frees the encoder and removes the directory; useFixtureEncoder does both ends in a describe block's hooks.
 *
 * @example
 *   const fixture = useFixtureEncoder(() => ({ name: "taesr-late", hidden: 32, vocabSize: 256, lateHead: { dim: 16 }, seed: 5 }));
 *   it("…", async () => {
 *     const { encoder, model } = fixture;
 *   });
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { TAESRModel, TaesrEncoder, type ArtifactManifest } from "../../src/model/index.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { initWeights } from "../../training/src/model/params.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";
import { FIXTURE_NAME, fixtureArchitecture, writeFixtureArtifact, type FixtureOptions } from "./fixture-artifact.js";

export interface OpenedFixture {
  /** The exported artifact's directory (inside the temp directory). */
  dir: string;
  manifest: ArtifactManifest;
  /** Every file the manifest lists, by its relative path. */
  files: Record<string, Uint8Array>;
  tokenizer: WordPieceTokenizer;
  /** The fp32 variant's encoder. */
  encoder: TaesrEncoder;
  /** The pure-TypeScript model on the exported weights. */
  model: TAESRModel;
  /** Releases the encoder and removes the temp directory. */
  release(): Promise<void>;
}

/** Every file `manifest` lists, read from the artifact directory `dir`. */
export async function readArtifactFiles(dir: string, manifest: ArtifactManifest): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const rel of Object.keys(manifest.files)) files[rel] = new Uint8Array(await readFile(path.join(dir, rel)));
  return files;
}

/** Exports the fixture described by `options` into `<os tmpdir>/<name>-test-XXXXXX` and opens it (see the module doc). */
export async function openFixtureEncoder(options: Omit<FixtureOptions, "outDir">): Promise<OpenedFixture> {
  const arch = fixtureArchitecture(options);
  const weights = options.weights ?? initWeights(arch, options.seed ?? 1234);
  const workDir = await mkdtemp(path.join(tmpdir(), `${options.name ?? FIXTURE_NAME}-test-`));
  const removeWorkDir = () => rm(workDir, { recursive: true, force: true });
  try {
    const { dir, manifest } = await writeFixtureArtifact({ ...options, weights, outDir: workDir });
    const files = await readArtifactFiles(dir, manifest);
    const tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(new TextDecoder().decode(files[manifest.tokenizer])));
    const encoder = await TaesrEncoder.create({ ort: ortNode, manifest, files, variant: "fp32", tokenizer });
    const model = new TAESRModel(arch, weights);
    return {
      dir,
      manifest,
      files,
      tokenizer,
      encoder,
      model,
      release: async () => {
        await encoder.release();
        await removeWorkDir();
      },
    };
  } catch (error) {
    await removeWorkDir();
    throw error;
  }
}

/**
 * Registers hooks in the calling scope: openFixtureEncoder(options()) before its tests, release() after them. The
 * returned object's fields are set once that beforeAll has run (so `options` may build weights lazily).
 */
export function useFixtureEncoder(options: () => Omit<FixtureOptions, "outDir">): Omit<OpenedFixture, "release"> {
  const fixture = {} as OpenedFixture;
  let opened: OpenedFixture | undefined;
  beforeAll(async () => {
    opened = await openFixtureEncoder(options());
    Object.assign(fixture, opened);
  });
  afterAll(() => opened?.release());
  return fixture;
}

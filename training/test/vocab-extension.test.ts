/**
 * Vocabulary extension: which words a corpus adds (frequent, fragmented, not inflections, not numbers), that the base
 * entries keep their ids, the new rows' first values (a ridge map from GloVe fitted to the trained rows; the mean of the
 * old pieces for words GloVe lacks), and a real tiny adaptation with `--extend-vocab` from an exported base artifact:
 * the run's tokenizer, the grown table (old rows kept, new rows from the real GloVe), the manifest and CHANGELOG row,
 * and the refusals (a tokenizer that reorders the base's entries; a params file, which records no tokenizer).
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { GLOVE_DIMS, type GloveVectors } from "../src/model/glove-init.js";
import { initWeights, loadParams, mulberry32, saveParams } from "../src/model/params.js";
import { extendedTokenRows } from "../src/model/vocab-extension.js";
import { extendVocabulary, extendsVocabulary } from "../src/tokenizer/extend-vocab.js";
import { adapt, EXTENDED_TOKENIZER_FILE } from "../src/train/adapt.js";
import { prepareSession, train } from "../src/train/trainer.js";
import { tinyArchitecture } from "./support/architectures.js";
import { exportTestBase, TEST_TOKENIZER } from "./support/tiny-artifact.js";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const tokenizerPath = TEST_TOKENIZER;

const LETTERS = "abcdefghijklmnopqrstuvwxyz".split("");
/** Letters as word-initial and continuation pieces, plus a few longer pieces the tests split words into. */
function toyBase(extra: string[] = []): TokenizerJSON {
  return {
    format: "taesr-wordpiece/1",
    normalization: "nfkc-lower-strip-accents",
    continuationPrefix: "##",
    maxInputCharsPerWord: 100,
    vocab: ["[PAD]", "[UNK]", ...LETTERS, ...LETTERS.map((l) => `##${l}`), "neutr", "##ophil", "decrease", "dementia", "0", "1", "2", "##0", "##1", "##2", ...extra],
  };
}

describe("extendVocabulary", () => {
  const text = (counts: Record<string, number>) =>
    Object.entries(counts)
      .flatMap(([w, n]) => Array.from({ length: n }, () => w))
      .join(" ");

  it("appends frequent fragmented words by frequency; skips inflections, numbers, short, rare and unknown words", async () => {
    const base = toyBase();
    const corpus = [
      text({ neutrophil: 9, zebrafish: 6, decreases: 20, dementia: 30, "2012": 40, cat: 50, rare: 2, "naïve": 7 }),
      text({ zebrafish: 1, "ωmega": 8 }),
    ];
    const { json, added, stats } = await extendVocabulary(corpus, base, { add: 10 });
    // dementia is one piece already; decreases is decrease ##s; 2012 has no letter; cat is short; rare is rare;
    // "ωmega" cannot be covered ([UNK]); naïve normalises to "naive", a fragmented 5-letter word seen 7 times.
    expect(added.map((a) => [a.word, a.count])).toEqual([
      ["neutrophil", 9],
      ["naive", 7],
      ["zebrafish", 7],
    ]);
    expect(added[0]!.basePieces).toEqual(["neutr", "##ophil"]);
    expect(stats).toMatchObject({ texts: 2, candidates: 3, addedOccurrences: 23 });
    expect(json.vocab.slice(0, base.vocab.length)).toEqual(base.vocab);
    expect(json.vocab.slice(base.vocab.length)).toEqual(["neutrophil", "naive", "zebrafish"]);
    expect(extendsVocabulary(base.vocab, json.vocab)).toBe(true);
    // Longer words now start with the added piece: greedy longest match, as before.
    const tok = WordPieceTokenizer.fromJSON(json);
    expect(tok.tokenize("Neutrophils decreases")).toEqual(["neutrophil", "##s", "decrease", "##s"]);
  });

  it("caps at `add` (the most frequent first, ties by the word) and honours minFrequency", async () => {
    const { added } = await extendVocabulary([text({ zebrafish: 6, neutrophil: 6, quokka: 9 })], toyBase(), { add: 2 });
    expect(added.map((a) => a.word)).toEqual(["quokka", "neutrophil"]);
    const strict = await extendVocabulary([text({ zebrafish: 6, quokka: 9 })], toyBase(), { add: 5, minFrequency: 8 });
    expect(strict.added.map((a) => a.word)).toEqual(["quokka"]);
    await expect(extendVocabulary([], toyBase(), { add: 0 })).rejects.toThrow(/add must be a positive integer/);
  });

  it("extendsVocabulary is false when an entry moves or the list shrinks", () => {
    expect(extendsVocabulary(["[PAD]", "[UNK]", "a"], ["[PAD]", "[UNK]", "b", "a"])).toBe(false);
    expect(extendsVocabulary(["[PAD]", "[UNK]", "a"], ["[PAD]", "[UNK]"])).toBe(false);
  });
});

describe("extendedTokenRows", () => {
  const H = 8;
  /** A GloVe stand-in: `words` with seeded 100-d vectors. */
  function fakeGlove(words: string[], seed: number): GloveVectors {
    const rand = mulberry32(seed);
    const vectors = Float32Array.from({ length: words.length * GLOVE_DIMS }, () => rand() * 2 - 1);
    return { words, index: new Map(words.map((w, i) => [w, i])), vectors, source: "fake" };
  }
  /** A fixed linear map R^100 → R^H plus a bias: the "trained" rows of whole-word pieces are exactly this of GloVe. */
  const rand = mulberry32(3);
  const A = Float64Array.from({ length: GLOVE_DIMS * H }, () => rand() - 0.5);
  const bias = Float64Array.from({ length: H }, () => rand() * 0.1);
  const linear = (glove: GloveVectors, word: string): number[] => {
    const g = glove.index.get(word)!;
    return Array.from({ length: H }, (_, c) => {
      let sum = bias[c]!;
      for (let d = 0; d < GLOVE_DIMS; d++) sum += glove.vectors[g * GLOVE_DIMS + d]! * A[d * H + c]!;
      return sum;
    });
  };
  // 420 whole words, enough samples for the 101-parameter fit (per output column).
  const wholeWords = Array.from({ length: 420 }, (_, i) => `w${i.toString(36)}x`);
  const base = toyBase(wholeWords);
  const glove = fakeGlove([...wholeWords, "neutrophil"], 5);
  const table = new Float32Array(base.vocab.length * H);
  base.vocab.forEach((piece, id) => {
    const row = glove.index.has(piece) ? linear(glove, piece) : Array.from({ length: H }, () => rand() - 0.5);
    row.forEach((v, c) => (table[id * H + c] = v));
  });
  const extended = [...base.vocab, "neutrophil", "zebrafish"];

  it("keeps the trained rows, fits the GloVe map (R² ≈ 1 when the rows are linear in GloVe) and rescales to the rows' mean norm", () => {
    const sparseBias = Float32Array.from(base.vocab, (_, id) => id / 100);
    const rows = extendedTokenRows({ base, extended, hidden: H, table, glove, sparseBias });
    expect(rows.table.length).toBe(extended.length * H);
    expect(Array.from(rows.table.subarray(0, table.length))).toEqual(Array.from(table));
    expect(rows.fit.words).toBe(420);
    expect(rows.fit.r2).toBeGreaterThan(0.999);
    expect(rows).toMatchObject({ fromGlove: 1, fromPieces: 1 });
    // neutrophil: the map's image of its GloVe vector, in direction; at the mean norm of the whole-word rows.
    const got = Array.from(rows.table.subarray(base.vocab.length * H, (base.vocab.length + 1) * H));
    const want = linear(glove, "neutrophil");
    const dot = got.reduce((s, v, c) => s + v * want[c]!, 0);
    const norm = (v: number[]) => Math.hypot(...v);
    expect(dot / (norm(got) * norm(want))).toBeGreaterThan(0.999);
    let meanNorm = 0;
    for (const w of wholeWords) {
      const id = base.vocab.indexOf(w);
      meanNorm += norm(Array.from(table.subarray(id * H, (id + 1) * H))) / wholeWords.length;
    }
    expect(norm(got)).toBeCloseTo(meanNorm, 4);
    // zebrafish (not in GloVe): the mean of the rows of z ##e ##b ##r ##a ##f ##i ##s ##h; its bias the mean of theirs.
    const pieces = WordPieceTokenizer.fromJSON(base).tokenize("zebrafish").map((p) => base.vocab.indexOf(p));
    const zebra = Array.from(rows.table.subarray((base.vocab.length + 1) * H));
    zebra.forEach((v, c) => expect(v).toBeCloseTo(pieces.reduce((s, p) => s + table[p * H + c]!, 0) / pieces.length, 5));
    expect(rows.sparseBias![base.vocab.length + 1]).toBeCloseTo(pieces.reduce((s, p) => s + sparseBias[p]!, 0) / pieces.length, 6);
    expect(rows.sparseBias!.subarray(0, base.vocab.length)).toEqual(sparseBias);
  });

  it("refuses an extension that changes a base entry, and a base with too few GloVe words to fit", () => {
    const moved = [...extended];
    moved[5] = "zz";
    expect(() => extendedTokenRows({ base, extended: moved, hidden: H, table, glove })).toThrow(/changes entry 5/);
    const small = toyBase(["oneword"]);
    expect(() =>
      extendedTokenRows({ base: small, extended: [...small.vocab, "neutrophil"], hidden: H, table: new Float32Array(small.vocab.length * H), glove }),
    ).toThrow(/too few to fit/);
  });
});

describe("adaptation with --extend-vocab (tiny base artifact, real GloVe, wasm)", () => {
  const ARCH = tinyArchitecture(8192);
  const baseWeights = initWeights(ARCH, 7);
  let tmp: string;
  let baseDir: string;
  let corpusDir: string;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-vocab-"));
    baseDir = await exportTestBase(path.join(tmp, "artifacts"), ARCH, baseWeights);
    // Immunology notes: "neutrophil" and "myeloid" recur and the 8k vocabulary splits both.
    corpusDir = path.join(tmp, "immunology");
    await mkdir(corpusDir);
    const docs = Array.from({ length: 8 }, (_, i) => ({
      id: `n${i}`,
      title: `Neutrophil note ${i}`,
      text: `Each neutrophil comes from a myeloid progenitor. Myeloid cells include the neutrophil. Note ${i} counts the myeloid lineage again.`,
    }));
    await writeFile(path.join(corpusDir, "notes.jsonl"), docs.map((d) => JSON.stringify(d)).join("\n") + "\n");
  }, 60_000);
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("writes the run's tokenizer, grows the table (old rows kept) and records the extension", async () => {
    const base = JSON.parse(await readFile(tokenizerPath, "utf8")) as TokenizerJSON;
    const old = WordPieceTokenizer.fromJSON(base);
    expect(old.tokenize("neutrophil myeloid").length).toBeGreaterThan(2);
    const lines: string[] = [];
    const result = await adapt({
      corpusDir,
      from: baseDir,
      artifactsDir: path.join(tmp, "artifacts"),
      runsDir: path.join(tmp, "runs"),
      steps: 2,
      extendVocab: 2,
      progress: false,
      log: (line) => lines.push(line),
      date: "2026-01-02",
      overrides: {
        data: { sources: { debian: { maxPairs: 100 }, wordnet: { maxPairs: 100 } } },
        training: { batchSize: 8, warmupSteps: 1, evalEvery: 1000, checkpointEvery: 1000 },
      },
    });
    const json = JSON.parse(await readFile(path.join(result.runDir, EXTENDED_TOKENIZER_FILE), "utf8")) as TokenizerJSON;
    expect(json.vocab.slice(8192).sort()).toEqual(["myeloid", "neutrophil"]);
    expect(lines.join("\n")).toMatch(/vocabulary: 2 of the corpus's words appended to the base's 8192/);
    expect(lines.join("\n")).toMatch(/vocabulary extended 8192 → 8194: 2 new rows from GloVe through a map fitted to its trained rows \(\d+ whole words, R² /);
    const config = JSON.parse(await readFile(result.configPath, "utf8"));
    expect(config.tokenizer).toBe(EXTENDED_TOKENIZER_FILE);
    expect(config.arch.vocabSize).toBe(8194);

    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.architecture.vocabSize).toBe(8194);
    expect(manifest.adaptation.vocabularyExtended).toEqual({ from: 8192, to: 8194 });
    const shipped = WordPieceTokenizer.fromJSON(JSON.parse(await readFile(path.join(result.exportDir!, manifest.tokenizer), "utf8")) as TokenizerJSON);
    expect(shipped.tokenize("Neutrophils")).toEqual(["neutrophil", "##s"]);
    expect(result.changelogRow).toContain("vocabulary extended by 2 of the corpus's words (8,192 → 8,194 entries, new rows from GloVe)");

    // Two small updates: the base rows are still close to the base's; the new rows are not copies of any base row.
    const table = (await loadParams(result.finalParamsPath!)).weights["embed.token"];
    const H = ARCH.hidden;
    let largest = 0;
    for (let i = 0; i < 8192 * H; i++) largest = Math.max(largest, Math.abs(table[i]! - baseWeights["embed.token"][i]!));
    expect(largest).toBeLessThan(5e-3);
    const added = table.subarray(8192 * H);
    expect(added.length).toBe(2 * H);
    expect(Math.hypot(...added.subarray(0, H))).toBeGreaterThan(0);
  }, 240_000);

  it("the extend-vocab CLI writes the extended tokenizer from a corpus directory, and exits non-zero with the reason", async () => {
    const out = path.join(tmp, "cli", "extended.json");
    const { stdout } = await run("npx", ["tsx", "src/cli/extend-vocab.ts", "--base", baseDir, "--corpus", corpusDir, "--add", "5", "--out", out, "--no-progress"], {
      cwd: path.resolve(here, ".."),
    });
    expect(stdout).toMatch(/: 8192 \+ 2 = 8194 entries .* 8 texts/);
    expect(stdout).toMatch(/Most frequent added: (myeloid|neutrophil) \(/);
    const json = JSON.parse(await readFile(out, "utf8")) as TokenizerJSON;
    expect(json.vocab.slice(8192).sort()).toEqual(["myeloid", "neutrophil"]);
    const failure = await run("npx", ["tsx", "src/cli/extend-vocab.ts", "--base", path.join(tmp, "missing"), "--out", out], { cwd: path.resolve(here, "..") }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/extend-vocab: --base .*missing does not exist/);
  }, 60_000);

  /** A run config from the base artifact with its vocabulary extended by two words (or as it was, `extended: false`). */
  async function extendedConfig(name: string, training: Record<string, unknown>, extended = true): Promise<string> {
    const base = JSON.parse(await readFile(tokenizerPath, "utf8")) as TokenizerJSON;
    const extendedPath = path.join(tmp, "extended-2.json");
    await writeFile(extendedPath, JSON.stringify({ ...base, vocab: [...base.vocab, "myeloid", "neutrophil"] }));
    const file = path.join(tmp, `${name}.json`);
    await writeFile(
      file,
      JSON.stringify({
        name,
        tokenizer: extended ? extendedPath : tokenizerPath,
        initFrom: baseDir,
        arch: { ...ARCH, vocabSize: extended ? 8194 : 8192 },
        // The immunology notes: every pair holds both added words, so their rows get gradients.
        data: { sources: { adapt: { dir: path.relative(tmp, corpusDir) } }, validationFraction: 0.1 },
        training: { batchSize: 8, steps: 2, lr: 1e-3, warmupSteps: 1, maxQueryLength: 16, maxDocLength: 32, evalEvery: 1000, checkpointEvery: 1000, ...training },
        export: { name: "x", version: "next", outDir: path.join(tmp, "unused") },
      }),
    );
    return file;
  }

  it("a gradient worker's session leaves initFrom unread (rank 0 sends the weights), and two processes update as one", async () => {
    const file = await extendedConfig("worker-session", { workers: 2 });
    const rank0Lines: string[] = [];
    const rank0 = await prepareSession({ config: file, log: (line) => rank0Lines.push(line) });
    const workerLines: string[] = [];
    const worker = await prepareSession({ config: file, log: (line) => workerLines.push(line), weightsFromRank0: true });
    try {
      expect(rank0Lines.join("\n")).toMatch(/vocabulary extended 8192 → 8194/);
      expect(workerLines.join("\n")).not.toMatch(/vocabulary extended|initialised from/);
      const rank0Table = rank0.params["embed.token"].dataSync();
      const workerTable = worker.params["embed.token"].dataSync();
      expect(workerTable.length).toBe(rank0Table.length);
      expect(rank0Table.subarray(0, 8192 * ARCH.hidden)).toEqual(baseWeights["embed.token"]);
      expect(workerTable.subarray(0, 8192 * ARCH.hidden)).not.toEqual(baseWeights["embed.token"]);
    } finally {
      for (const session of [rank0, worker]) for (const variable of Object.values(session.params)) variable.dispose();
    }

    const parallel = await train({ config: file, runDir: path.join(tmp, "worker-session"), progress: false, log: () => {} });
    const accumulated = await train({
      config: await extendedConfig("worker-session-acc", { workers: 1, accumulationSteps: 2 }),
      runDir: path.join(tmp, "worker-session-acc"),
      progress: false,
      log: () => {},
    });
    expect(parallel.lossHistory).toEqual(accumulated.lossHistory);
    const tables = await Promise.all([parallel, accumulated].map(async (r) => (await loadParams(r.finalParamsPath!)).weights["embed.token"]));
    expect(Buffer.from(tables[0]!.buffer).equals(Buffer.from(tables[1]!.buffer))).toBe(true);
  }, 240_000);

  it("newRowsFirst: only the added rows learn for the first updates, then every weight, with the optimizer restarted", async () => {
    const initial = await prepareSession({ config: await extendedConfig("new-rows-initial", {}), log: () => {} });
    const initialTable = initial.params["embed.token"].dataSync().slice();
    for (const variable of Object.values(initial.params)) variable.dispose();
    const H = ARCH.hidden;

    const lines: string[] = [];
    const frozen = await train({ config: await extendedConfig("new-rows", { newRowsFirst: 2 }), runDir: path.join(tmp, "new-rows"), progress: false, log: (line) => lines.push(line) });
    expect(lines.join("\n")).toMatch(/updates 1–2: only the 2 token rows the vocabulary extension added learn/);
    const after = (await loadParams(frozen.finalParamsPath!)).weights;
    for (const [name, values] of Object.entries(baseWeights)) {
      const trained = name === "embed.token" ? after[name].subarray(0, 8192 * H) : after[name as keyof typeof after];
      expect(Buffer.from(trained.buffer, trained.byteOffset, trained.byteLength).equals(Buffer.from(values.buffer, values.byteOffset, values.byteLength)), name).toBe(true);
    }
    const added = after["embed.token"].subarray(8192 * H);
    expect(added).not.toEqual(initialTable.subarray(8192 * H));

    const thawLines: string[] = [];
    const thawed = await train({ config: await extendedConfig("new-rows-thaw", { newRowsFirst: 2, steps: 3 }), runDir: path.join(tmp, "new-rows-thaw"), progress: false, log: (line) => thawLines.push(line) });
    expect(thawLines.join("\n")).toMatch(/update 3: every weight learns from here on \(optimizer moments restarted, learning rate warming up again\)/);
    const thawedWeights = (await loadParams(thawed.finalParamsPath!)).weights;
    expect(thawedWeights["embed.token"].subarray(0, 8192 * H)).not.toEqual(baseWeights["embed.token"]);
    expect(thawedWeights["out.proj.w"]).not.toEqual(baseWeights["out.proj.w"]);

    await expect(train({ config: await extendedConfig("new-rows-none", { newRowsFirst: 2 }, false), runDir: path.join(tmp, "new-rows-none"), progress: false, log: () => {} })).rejects.toThrow(
      /training\.newRowsFirst: the tokenizer \(8192 entries\) adds no rows to initFrom's 8192/,
    );
    await expect(adapt({ corpusDir, from: baseDir, newRowsFirst: 2, progress: false, log: () => {} })).rejects.toThrow(/--new-rows-first goes with --extend-vocab/);
  }, 240_000);

  it("refuses a tokenizer that moves base entries, and a params file as the source", async () => {
    const base = JSON.parse(await readFile(tokenizerPath, "utf8")) as TokenizerJSON;
    const moved: TokenizerJSON = { ...base, vocab: [...base.vocab.slice(0, 100), "neutrophil", ...base.vocab.slice(100)] };
    const movedPath = path.join(tmp, "moved.json");
    await writeFile(movedPath, JSON.stringify(moved));
    const config = (name: string, initFrom: string) => ({
      name,
      tokenizer: movedPath,
      initFrom,
      arch: { ...ARCH, vocabSize: 8193 },
      data: { sources: { wordnet: { maxPairs: 50 } } },
      training: { batchSize: 8, steps: 1, lr: 1e-3, maxQueryLength: 16, maxDocLength: 32 },
      export: { name: "x", version: "next", outDir: path.join(tmp, "unused") },
    });
    const moves = path.join(tmp, "moves.json");
    await writeFile(moves, JSON.stringify(config("moves", baseDir)));
    await expect(train({ config: moves, runDir: path.join(tmp, "moves"), progress: false, log: () => {} })).rejects.toThrow(
      /does not keep the 8192 entries of .*tokenizer\.json at their ids/,
    );
    const paramsFile = path.join(tmp, "base.taesr");
    await saveParams(paramsFile, baseWeights, ARCH);
    const fromParams = path.join(tmp, "from-params.json");
    await writeFile(fromParams, JSON.stringify(config("from-params", paramsFile)));
    await expect(train({ config: fromParams, runDir: path.join(tmp, "from-params"), progress: false, log: () => {} })).rejects.toThrow(
      /has a 8192-entry vocabulary and this config 8193; a vocabulary can only be extended from an artifact directory/,
    );
  }, 120_000);
});

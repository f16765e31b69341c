/**
 * Domain adaptation (`npm run train -- --adapt`): the corpus reader on BEIR and JSONL directories and its errors; the
 * "adapt" pair source (train qrels only, never test or dev; document-grouped split; repeat oversampling on the train
 * side only); weights read back from a fresh export; and two real tiny adaptation runs from a base artifact exported
 * here, giving <name>@0.1.0 then <name>@0.2.0 with the manifest's adaptation record and CHANGELOG rows.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/manifest.js";
import { WEIGHT_NAMES } from "../../src/model/spec.js";
import { readAdaptCorpus } from "../src/data/adapt-corpus.js";
import {
  adaptPairs,
  buildPairs,
  heldOutQueryIds,
  isQueryHeldOut,
  normKey,
  QUERY_HOLDOUT_RULE,
  type AdaptRecord,
  type PairBuildOptions,
} from "../src/data/pairs.js";
import { exportArtifact, nextMinorVersion } from "../src/export/artifact.js";
import { loadArtifactWeights } from "../src/model/artifact-weights.js";
import { initWeights, loadParams } from "../src/model/params.js";
import { adapt, adaptedName, appendChangelogRow, changelogRow, chooseRunDir } from "../src/train/adapt.js";
import { configDir, loadConfig, parseConfig, resolveFromConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import { tinyArchitecture } from "./support/architectures.js";
import { BEIR_TINY, writeJudgedBeir } from "./support/judged-beir.js";
import { exportTestBase } from "./support/tiny-artifact.js";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const trainingDir = path.resolve(here, "..");
const tokenizerPath = path.resolve(here, "../vocab/taesr-8k.json");

/** training/configs/tiny.json's architecture with the 8k vocabulary made explicit (a manifest needs it). */
const TINY_ARCH = tinyArchitecture(8192);

let tmp: string;
/** beir-tiny plus train qrels (q3 → d3, q6 → d7, q5 → d6) and dev qrels (q2 → d2); its test qrels are beir-tiny's. */
let miniBeir: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-adapt-"));
  miniBeir = await writeJudgedBeir(tmp);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const queryText = async (dir: string): Promise<Map<string, string>> =>
  new Map(
    (await readFile(path.join(dir, "queries.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { _id: string; text: string })
      .map((q) => [q._id, q.text]),
  );

const pairOptions = (sources: PairBuildOptions["sources"], validationFraction = 0.05): PairBuildOptions => ({
  seed: 1,
  validationFraction,
  maxValidationPairs: 1000,
  minDocChars: 16,
  sources,
});

describe("adapt corpus reader", () => {
  it("reads a BEIR directory whose only qrels are test qrels: documents, and not one query pair", async () => {
    const { info, records } = await readAdaptCorpus(BEIR_TINY);
    expect(info).toMatchObject({ name: "beir-tiny", layout: "beir", corpusFile: "corpus.jsonl", documents: 12, duplicateIds: 0 });
    expect(info.trainQrels).toBeUndefined();
    expect(records.every((r) => r.queries.length === 0)).toBe(true);
    const pairs = await buildPairs({ adapt: records }, pairOptions({ adapt: {} }, 0));
    // d11 has no title and every text is one sentence: 11 title → text pairs, nothing else.
    expect(pairs.stats.bySource["adapt"]?.kinds).toEqual({ "title->text": 11 });
    const queries = new Set([...(await queryText(BEIR_TINY)).values()].map(normKey));
    expect(pairs.train.some((p) => queries.has(normKey(p.query)))).toBe(false);
  });

  it("uses train qrels with score > 0 only, never test or dev qrels", async () => {
    const { info, records } = await readAdaptCorpus(miniBeir);
    expect(info.trainQrels).toEqual({ file: "qrels/train.tsv", queries: 3, pairs: 3, nonPositive: 1, unresolved: 1 });
    const q = await queryText(miniBeir);
    const byId = new Map(records.map((r) => [r.id, r]));
    expect(byId.get("d3")?.queries).toEqual([{ id: "q3", text: q.get("q3") }]);
    expect(byId.get("d7")?.queries).toEqual([{ id: "q6", text: q.get("q6") }]);
    expect(byId.get("d6")?.queries).toEqual([{ id: "q5", text: q.get("q5") }]);
    const pairs = await buildPairs({ adapt: records }, pairOptions({ adapt: {} }, 0));
    const used = pairs.train.filter((p) => p.kind === "train-query->text");
    expect(used.map((p) => p.query).sort()).toEqual([q.get("q3"), q.get("q5"), q.get("q6")].sort());
    // q1, q4 (test), q2 (dev) and q7 (score 0, or an unknown document) appear nowhere.
    const never = ["q1", "q2", "q4", "q7"].map((id) => normKey(q.get(id)!));
    for (const p of pairs.train) expect(never).not.toContain(normKey(p.query));
  });

  it("reads a directory with one JSONL file of {id|_id, title?, text}; sentence pairs stay with their document", async () => {
    const dir = path.join(tmp, "notes");
    await mkdir(dir, { recursive: true });
    const long = "Cells divide by mitosis in most tissues. The spindle pulls chromatids apart. Cytokinesis then splits the cell in two. Errors here cause aneuploidy in daughter cells.";
    await writeFile(
      path.join(dir, "my-notes.jsonl"),
      [
        JSON.stringify({ id: "n1", title: "Mitosis", text: long }),
        "",
        JSON.stringify({ _id: 42, text: "A note without a title that is long enough to keep." }),
        JSON.stringify({ id: "n1", title: "Duplicate id", text: "Ignored because n1 came first." }),
      ].join("\n"),
    );
    const { info, records } = await readAdaptCorpus(dir);
    expect(info).toMatchObject({ name: "notes", layout: "jsonl", corpusFile: "my-notes.jsonl", documents: 2, duplicateIds: 1 });
    expect(records.map((r) => r.id)).toEqual(["n1", "42"]);
    const pairs = [...adaptPairs(records[0]!)];
    expect(pairs.map((p) => p.kind)).toEqual(["title->text", "sentence->rest", "sentence->rest"]);
    expect(new Set(pairs.map((p) => p.group))).toEqual(new Set(["adapt:n1"]));
    for (const p of pairs.slice(1)) expect(p.doc).not.toContain(p.query);
    expect(pairs[1]!.query).not.toBe(pairs[2]!.query);
    // Grouped by document: with half the documents held out, a document's pairs are all on one side.
    const set = await buildPairs({ adapt: records }, pairOptions({ adapt: {} }, 0.5));
    const side = (id: string) => new Set([...set.train.map((p) => ["t", p] as const), ...set.validation.map((p) => ["v", p] as const)].filter(([, p]) => p.group === `adapt:${id}`).map(([s]) => s));
    expect(side("n1").size).toBe(1);
  });

  it("fails clearly on a missing directory, no corpus file, malformed lines and missing fields", async () => {
    await expect(readAdaptCorpus(path.join(tmp, "absent"))).rejects.toThrow(`adapt corpus directory not found: ${path.join(tmp, "absent")}`);
    await expect(readAdaptCorpus(path.join(BEIR_TINY, "corpus.jsonl"))).rejects.toThrow(/is not a directory/);
    const empty = path.join(tmp, "empty");
    await mkdir(empty, { recursive: true });
    await writeFile(path.join(empty, "README.txt"), "no corpus here");
    await expect(readAdaptCorpus(empty)).rejects.toThrow(/no corpus file in .*empty: expected corpus\.jsonl .* or one \*\.jsonl file/);
    await writeFile(path.join(empty, "a.jsonl"), "");
    await writeFile(path.join(empty, "b.jsonl"), "");
    await expect(readAdaptCorpus(empty)).rejects.toThrow(/several JSONL files \(a\.jsonl, b\.jsonl\)/);

    const bad = path.join(tmp, "bad");
    await mkdir(bad, { recursive: true });
    const file = path.join(bad, "corpus.jsonl");
    await writeFile(file, '{"_id": "a", "text": "fine text here"}\n\n{"_id": "b", "text": "broken\n');
    await expect(readAdaptCorpus(bad)).rejects.toThrow(`${file}:3: invalid JSON`);
    await writeFile(file, '{"_id": "a", "text": "fine text here"}\n{"_id": "b", "title": "no text"}\n');
    await expect(readAdaptCorpus(bad)).rejects.toThrow(`${file}:2: no "text" field`);
    await writeFile(file, '{"title": "t", "text": "no id at all"}\n');
    await expect(readAdaptCorpus(bad)).rejects.toThrow(`${file}:1: no document id`);
    await writeFile(file, "[1, 2]\n");
    await expect(readAdaptCorpus(bad)).rejects.toThrow(`${file}:1: expected a JSON object, got an array`);
    await writeFile(file, "\n");
    await expect(readAdaptCorpus(bad)).rejects.toThrow(`${file}: no documents`);
    await writeFile(file, '{"_id": "a", "text": "fine text here"}\n');
    await mkdir(path.join(bad, "qrels"), { recursive: true });
    await writeFile(path.join(bad, "qrels/train.tsv"), "q\td\t1\n");
    await expect(readAdaptCorpus(bad)).rejects.toThrow(/qrels\/train\.tsv exists but .*queries\.jsonl does not/);
  });
});

describe("repeat oversampling", () => {
  const debian = Array.from({ length: 40 }, (_, i) => ({ id: `p${i}`, title: `tool number ${i}`, text: `Tool ${i} does thing ${i} for everyone who asks.` }));
  const adaptDocs: AdaptRecord[] = Array.from({ length: 30 }, (_, i) => ({
    id: `d${i}`,
    title: `Document ${i}`,
    text: `Document ${i} is about topic ${i} and nothing else.`,
    queries: i % 3 === 0 ? [{ id: `q${i}`, text: `which document covers topic ${i}` }] : [],
  }));

  it("copies train pairs only, keeps validation unique and identical, and leaves other sources alone", async () => {
    const once = await buildPairs({ debian, adapt: adaptDocs }, pairOptions({ debian: {}, adapt: {} }, 0.3));
    const thrice = await buildPairs({ debian, adapt: adaptDocs }, pairOptions({ debian: {}, adapt: { repeat: 3 } }, 0.3));
    const a1 = once.stats.bySource["adapt"]!;
    const a3 = thrice.stats.bySource["adapt"]!;
    expect(a1.validation).toBeGreaterThan(0);
    // Stats of an unrepeated source have no repeat fields (they are part of older runs' fingerprints).
    expect(Object.keys(a1)).toEqual(["train", "validation", "kinds"]);
    expect(a3).toMatchObject({ train: a1.train * 3, uniqueTrain: a1.train, validation: a1.validation, repeat: 3, kinds: a1.kinds });
    expect(thrice.stats.bySource["debian"]).toEqual(once.stats.bySource["debian"]);
    expect(thrice.validation).toEqual(once.validation);
    const count = (pairs: typeof once.train) => {
      const m = new Map<string, number>();
      for (const p of pairs) m.set(`${p.source}\u0000${p.query}\u0000${p.doc}`, (m.get(`${p.source}\u0000${p.query}\u0000${p.doc}`) ?? 0) + 1);
      return m;
    };
    for (const [key, n] of count(thrice.train)) expect(n, key).toBe(key.startsWith("adapt") ? 3 : 1);
    expect(new Set(count(thrice.validation).values())).toEqual(new Set([1]));
    // No held-out document is trained on.
    const heldOut = new Set(thrice.validation.map((p) => p.group ?? normKey(p.doc)));
    for (const p of thrice.train) expect(heldOut.has(p.group ?? normKey(p.doc))).toBe(false);
  });
});

describe("held-out train queries (holdoutQueries)", () => {
  // 200 documents, one train query each, and a twin: q-twin has q-a's text (SciFact has two such pairs of train queries).
  const docs: AdaptRecord[] = Array.from({ length: 200 }, (_, i) => ({
    id: `d${i}`,
    title: `Document ${i}`,
    text: `Document ${i} is about topic ${i} and nothing else.`,
    queries: [{ id: `q${i}`, text: `which document covers topic ${i}` }],
  }));
  const firstHeld = docs.find((r) => isQueryHeldOut(r.queries[0]!.id, 0.2))!;
  const twin = docs.find((r) => !isQueryHeldOut(r.queries[0]!.id, 0.2) && r !== firstHeld)!;
  const records = docs.map((r) => (r === twin ? { ...r, queries: [...r.queries, { id: "q-twin", text: firstHeld.queries[0]!.text }] } : r));

  it("are chosen by the query id alone: the same for every seed, and a larger share only adds ids", async () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `query-${i}`);
    const at = (f: number) => ids.filter((id) => isQueryHeldOut(id, f));
    expect(at(0.15).length / ids.length).toBeGreaterThan(0.13);
    expect(at(0.15).length / ids.length).toBeLessThan(0.17);
    expect(at(0.15).every((id) => at(0.3).includes(id))).toBe(true);
    expect(at(0)).toEqual([]);
    // The held-out set in the pairs does not move with the seed (the validation split does not either).
    const heldOf = async (seed: number) => {
      const set = await buildPairs({ adapt: records }, { ...pairOptions({ adapt: { holdoutQueries: 0.2 } }, 0.1), seed });
      const trained = new Set(set.train.filter((p) => p.queryId).map((p) => p.queryId));
      return records.flatMap((r) => r.queries.map((q) => q.id)).filter((id) => !trained.has(id) && !set.validation.some((p) => p.queryId === id));
    };
    expect(await heldOf(1)).toEqual(await heldOf(99));
    expect(heldOutQueryIds(records, 0.2)).toEqual(heldOutQueryIds([...records].reverse(), 0.2));
  });

  it("give no train pair (nor does a twin text of another id); their documents keep every unsupervised pair", async () => {
    const held = heldOutQueryIds(records, 0.2);
    expect(held).toContain(firstHeld.queries[0]!.id);
    expect(held).toContain("q-twin");
    expect(held.length).toBeGreaterThan(20);
    const plain = await buildPairs({ adapt: records }, pairOptions({ adapt: {} }, 0.1));
    const set = await buildPairs({ adapt: records }, pairOptions({ adapt: { holdoutQueries: 0.2 } }, 0.1));
    const heldTexts = new Set(records.flatMap((r) => r.queries).filter((q) => held.includes(q.id)).map((q) => normKey(q.text)));
    for (const p of set.train) expect(heldTexts.has(normKey(p.query)), p.query).toBe(false);
    // Exactly the held-out queries' train-side pairs are gone: titles and validation are as without the hold-out.
    const key = (p: { query: string; doc: string }) => `${p.query}\u0000${p.doc}`;
    const gone = plain.train.filter((p) => !set.train.some((t) => key(t) === key(p)));
    expect(gone.length).toBeGreaterThan(0);
    expect(gone.every((p) => p.kind === "train-query->text" && heldTexts.has(normKey(p.query)))).toBe(true);
    expect(set.train.filter((p) => p.kind === "title->text")).toHaveLength(plain.train.filter((p) => p.kind === "title->text").length);
    // The same pairs (their order follows the seeded sample, which sees fewer pairs).
    expect(set.validation.map(key).sort()).toEqual(plain.validation.map(key).sort());
    expect(set.stats.bySource["adapt"]!.heldOutQueries).toEqual({ fraction: 0.2, queries: held.length - 1, pairs: gone.length });
    // Without the option the stats (part of a run's data fingerprint) are as they always were.
    expect(plain.stats.bySource["adapt"]!.heldOutQueries).toBeUndefined();
    await expect(buildPairs({ adapt: records }, pairOptions({ adapt: { holdoutQueries: 1 } }))).rejects.toThrow(/holdoutQueries must be in \[0, 1\)/);
  });
});

describe("the adaptation preset", () => {
  it("is a valid config: the bundled artifact's architecture and weights, SciFact as the corpus, general sources capped", async () => {
    const loaded = await loadConfig(path.join(trainingDir, "configs/adapt.json"));
    const { config } = loaded;
    expect(configDir(config)).toBe(path.join(trainingDir, "configs"));
    const bundled = JSON.parse(await readFile(path.resolve(trainingDir, "../model-artifacts/bundled.json"), "utf8")) as { artifact: string };
    expect(resolveFromConfig(loaded, config.initFrom!)).toBe(path.resolve(trainingDir, "../model-artifacts", bundled.artifact));
    const base = JSON.parse(await readFile(path.join(resolveFromConfig(loaded, config.initFrom!), "manifest.json"), "utf8"));
    expect(config.arch).toEqual(base.architecture);
    expect(resolveFromConfig(loaded, config.data.sources.adapt!.dir)).toBe(path.resolve(trainingDir, "../../shared/datasets/scifact"));
    expect(config.data.sources.debian?.maxPairs).toBeDefined();
    expect(config.data.sources.wordnet?.maxPairs).toBeDefined();
    expect(config.training).toMatchObject({ lr: 3e-4, warmupSteps: 20, steps: 300, batchSize: 64, crossStepLoss: true, lossSteps: [1, 3, 6], maxQueryLength: 32, maxDocLength: 128 });
    // Documents trained at the depth the base indexes them at, which the export then records.
    expect(config.training.documentSteps).toEqual([base.retrieval.documentDepth.depth]);
    expect(config.export).toMatchObject({ version: "next", force: false });
    // SciFact: about 120 of its 809 train queries held out for tuning the fusion (bench/eval/fusion-tuning.ts), and
    // ranked against the whole corpus at each validation.
    expect(config.data.sources.adapt!.holdoutQueries).toBe(0.15);
    expect(config.training.heldOutRetrieval).toBe(true);
    // Without held-out queries there is nothing for the probe to rank: the config says so.
    const raw = JSON.parse(await readFile(path.join(trainingDir, "configs/adapt.json"), "utf8"));
    const { holdoutQueries: _dropped, ...adaptWithout } = raw.data.sources.adapt;
    expect(() => parseConfig({ ...raw, data: { ...raw.data, sources: { ...raw.data.sources, adapt: adaptWithout } } })).toThrow(
      /needs data\.sources\.adapt with holdoutQueries > 0[\s\S]*training\.heldOutRetrieval/,
    );
  });
});

describe("weights from a fresh export", () => {
  it("reads an exported artifact's fp32 weights back exactly", async () => {
    const arch = { ...TINY_ARCH, vocabSize: 300, hidden: 32, ffn: 64, maxLength: 16 };
    const weights = initWeights(arch, 3);
    const { dir } = await exportArtifact({
      outDir: path.join(tmp, "fresh"),
      name: "fresh",
      version: "1.0.0",
      arch,
      weights,
      tokenizerJson: { format: "taesr-wordpiece/1", vocab: ["[PAD]"] },
      router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 24 },
      earlyExitEpsilon: 0.001,
      training: {},
      eval: {},
    });
    const back = await loadArtifactWeights(dir);
    expect(back.architecture).toEqual(arch);
    for (const name of WEIGHT_NAMES) expect(Buffer.from(back.weights[name].buffer).equals(Buffer.from(weights[name].buffer)), name).toBe(true);
    // A corrupted graph is refused by its sha256 before it is read.
    const step = path.join(dir, "fp32/step.onnx");
    const bytes = await readFile(step);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    await writeFile(step, bytes);
    await expect(loadArtifactWeights(dir)).rejects.toThrow(/fp32\/step\.onnx" has sha256/);
  });

  it("takes the next minor version after the highest existing one", async () => {
    const dir = path.join(tmp, "versions");
    expect(await nextMinorVersion(dir, "m")).toBe("0.1.0");
    for (const v of ["m@0.1.0", "m@0.3.2", "m@0.2.0", "m@1.0.0-rc.1", "mx@9.0.0", "m@latest"]) await mkdir(path.join(dir, v), { recursive: true });
    expect(await nextMinorVersion(dir, "m")).toBe("1.1.0");
    expect(await nextMinorVersion(dir, "other")).toBe("0.1.0");
  });
});

describe("adaptation end to end (tiny base artifact, wasm)", () => {
  let artifactsDir: string;
  let baseDir: string;
  const baseWeights = initWeights(TINY_ARCH, 7);

  beforeAll(async () => {
    artifactsDir = path.join(tmp, "artifacts");
    baseDir = await exportTestBase(artifactsDir, TINY_ARCH, baseWeights);
  });

  const quick = {
    steps: 3,
    progress: false,
    log: () => {},
    date: "2026-01-02",
    overrides: {
      data: { sources: { debian: { maxPairs: 300 }, wordnet: { maxPairs: 300 } } },
      training: { batchSize: 16, warmupSteps: 1, evalEvery: 1000, checkpointEvery: 1000 },
    },
  };

  it("exports <name>@0.1.0 then @0.2.0 with the adaptation record, from the base artifact's weights", async () => {
    const runsDir = path.join(tmp, "runs");
    const first = await adapt({ corpusDir: miniBeir, from: baseDir, artifactsDir, runsDir, ...quick });
    expect(adaptedName("taesr-test-small", "minibeir")).toBe("taesr-test-minibeir");
    expect(first.artifact).toBe("taesr-test-minibeir@0.1.0");
    expect(first.runDir).toBe(path.join(runsDir, "adapt-taesr-test-minibeir"));
    expect(first.stoppedBy).toBe("done");
    const manifest = JSON.parse(await readFile(path.join(first.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.architecture).toEqual(TINY_ARCH);
    const a = manifest.adaptation;
    // d6 and d8 are held out by the document hash: q5 → d6 is a validation pair. The preset's holdoutQueries (0.15)
    // holds q3 out by its id, so q6 → d7 is the one supervised train pair; d3 keeps its title → text pair.
    expect(a).toMatchObject({
      base: "taesr-test-small@0.3.0",
      corpus: "minibeir",
      corpusLayout: "beir",
      documents: 12,
      trainQrelsUsed: true,
      trainQueries: 1,
      trainQrels: { file: "qrels/train.tsv", queries: 3, pairs: 3 },
      supervision: expect.stringMatching(/^supervised in-domain: 1 train queries \(minibeir\/qrels\/train\.tsv only.*; 1 more held out by query id/),
      otherSources: ["debian", "wordnet"],
    });
    const { retrieval, ...heldOut } = a.heldOutQueries;
    expect(heldOut).toEqual({ fraction: 0.15, rule: QUERY_HOLDOUT_RULE, count: 1, ids: ["q3"] });
    // q3 ("how vaccines train the immune system") ranked against all 12 documents by the exported artifact as served:
    // BM25 puts d3 ("Vaccines … train the immune system") first; the random-weight model ranks it somewhere in 1…12.
    expect(retrieval).toMatchObject({ queries: 1, documents: 12, dims: 128, variant: "int8w", documentDepth: 1, bm25: { ndcg10: 1, recall100: 1 } });
    expect(retrieval.dense.recall100).toBe(1);
    const atRanks = Array.from({ length: 10 }, (_, r) => Math.round((1 / Math.log2(r + 2)) * 1e4) / 1e4);
    expect([0, ...atRanks]).toContain(retrieval.dense.ndcg10);
    expect(a.pairKinds).toEqual({ "title->text": 11, "train-query->text": 2 });
    expect(manifest.training.dataSources.adapt.pairKinds).toEqual(a.pairKinds);
    expect(a.repeat).toBeGreaterThan(1);
    expect(a.streamShare).toBeGreaterThan(0.3);
    expect(a.streamShare).toBeLessThan(0.7);
    expect(a.inDomainHeldOut.pairs).toBeGreaterThanOrEqual(2);
    expect(Object.keys(manifest.eval.inDomainHeldOut.byDepth)).toEqual(["1", "3", "6"]);
    // The preset trains documents at depth 1 only, so the index must embed them there: the export says so.
    expect(manifest.retrieval).toEqual({ documentDepth: { depth: 1, trainedWith: { documentSteps: [1] } } });
    expect(parseManifest(manifest).retrieval?.documentDepth?.depth).toBe(1);
    expect(manifest.eval.heldOutValidation.documentDepth).toBe(1);
    const source = manifest.training.dataSources.adapt;
    expect(source.file).toBe("minibeir/corpus.jsonl");
    // The preset mines by BM25 unless asked otherwise: no ranker in the derived config, BM25 in the record.
    expect(manifest.training.config.data.sources.adapt.hardNegatives).not.toHaveProperty("ranker");
    expect(source.hardNegatives).toMatchObject({ ranker: "BM25" });
    expect(source.use).toMatch(/IN-DOMAIN.*Supervised in-domain: 1 train queries/);
    expect(source.repeat).toBe(a.repeat);

    // Started from the base artifact (not from the config's seed): three small updates stay close to it.
    const final = await loadParams(first.finalParamsPath!);
    let largest = 0;
    for (const name of WEIGHT_NAMES) final.weights[name].forEach((w, i) => (largest = Math.max(largest, Math.abs(w - baseWeights[name][i]!))));
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(5e-3);

    // The second run on the corpus alone (the general sources are what costs time to read; the first run had them).
    const second = await adapt({
      corpusDir: miniBeir,
      from: baseDir,
      artifactsDir,
      runsDir,
      ...quick,
      overrides: { data: { sources: { debian: null, wordnet: null, adapt: { repeat: 4 } } }, training: { batchSize: 8, warmupSteps: 1 } },
    });
    expect(second.artifact).toBe("taesr-test-minibeir@0.2.0");
    expect(second.runDir).toBe(path.join(runsDir, "adapt-taesr-test-minibeir-2"));
    // The first version is untouched.
    expect(JSON.parse(await readFile(path.join(first.exportDir!, "manifest.json"), "utf8"))).toEqual(manifest);

    const changelog = await readFile(path.join(artifactsDir, "CHANGELOG.md"), "utf8");
    const rows = changelog.split("\n").filter((l) => l.startsWith("| taesr-test-minibeir@"));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^\| taesr-test-minibeir@0\.1\.0 \| 2026-01-02 \| domain adaptation of taesr-test-small@0\.3\.0 to "minibeir"/);
    expect(rows[0]).toContain("supervised in-domain: 1 train queries");
    expect(rows[0]).toMatch(/\(capped\); \d+ hard negatives by BM25; supervised in-domain/);
    expect(rows[0]).toMatch(/held-out MRR@128 at k=1\/3\/6: in-domain [0-9.]+ \/ [0-9.]+ \/ [0-9.]+/);
    expect(rows[0]).toContain(`| 1 held-out train queries against all 12 documents (128-d int8w): NDCG@10 dense ${retrieval.dense.ndcg10}, BM25 1; benchmark figures: add after \`npm run eval\` |`);
    expect(rows[1]).toMatch(/^\| taesr-test-minibeir@0\.2\.0 \|.* ×4 \(100% of the stream\) \+ no general sources/);
    expect(rows[0]!.split(" | ")).toHaveLength(5);

    // --resume finds no unfinished run: both have finished.
    await expect(chooseRunDir(runsDir, "taesr-test-minibeir", true)).rejects.toThrow(/no unfinished adaptation run/);
  });

  it("--hard-negatives dense mines the corpus's negatives with the base artifact and records it", async () => {
    const lines: string[] = [];
    const result = await adapt({
      corpusDir: miniBeir,
      from: baseDir,
      artifactsDir,
      runsDir: path.join(tmp, "runs-dense"),
      ...quick,
      hardNegatives: "dense",
      log: (line) => lines.push(line),
      overrides: { data: { sources: { debian: null, wordnet: null } }, training: { batchSize: 8, warmupSteps: 1, evalEvery: 1000, checkpointEvery: 1000 } },
    });
    expect(lines.find((l) => l.startsWith("adapt: "))).toMatch(/^adapt: \d+ hard negatives by dense taesr-test-small@0\.3\.0 \(0 pairs without one\) from \d+ documents/);
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.training.config.data.sources.adapt.hardNegatives).toMatchObject({ ranker: "dense" });
    expect(manifest.training.dataSources.adapt.hardNegatives).toMatchObject({ ranker: "dense taesr-test-small@0.3.0", none: 0 });
    expect(manifest.training.dataSources.adapt.hardNegatives.mined).toBeGreaterThan(0);
    const raw = JSON.parse(await readFile(result.configPath, "utf8"));
    expect(raw.data.sources.adapt.hardNegatives.ranker).toBe("dense");
  });

  it("ranks the held-out train queries at each validation with the weights of that step (training.heldOutRetrieval)", async () => {
    const lines: string[] = [];
    const result = await adapt({
      corpusDir: miniBeir,
      from: baseDir,
      artifactsDir,
      runsDir: path.join(tmp, "runs-probe"),
      ...quick,
      log: (line) => lines.push(line),
      overrides: { data: { sources: { debian: null, wordnet: null } }, training: { batchSize: 8, warmupSteps: 1, evalEvery: 1, checkpointEvery: 1000 } },
    });
    const metrics = (await readFile(path.join(result.runDir, "metrics.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, any>);
    const probes = metrics.filter((m) => m["type"] === "heldOutRetrieval");
    // Steps 1 and 2 of 3; the last step's figure is the export's.
    expect(probes.map((m) => m["step"])).toEqual([1, 2]);
    for (const m of probes) expect(m).toMatchObject({ queries: 1, documents: 12, dims: 128, variant: "int8w", documentDepth: 1, bm25: { ndcg10: 1 } });
    expect(lines.filter((l) => /^step \d held-out train queries \(1\) against all 12 documents, 128-d int8w: dense NDCG@10/.test(l))).toHaveLength(2);
    // The scratch artifact is gone; the published one carries the final figure.
    await expect(readFile(path.join(result.runDir, "held-out-probe", "held-out-probe@0.0.2", "manifest.json"))).rejects.toThrow();
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.adaptation.heldOutQueries.retrieval).toMatchObject({ queries: 1, bm25: { ndcg10: 1 } });
  });

  it("--max-length gives the adapted model a longer context: the base's positions tiled, documents read up to it", async () => {
    const lines: string[] = [];
    const longer = TINY_ARCH.maxLength * 2;
    const result = await adapt({
      corpusDir: miniBeir,
      from: baseDir,
      artifactsDir: path.join(tmp, "artifacts-long"),
      runsDir: path.join(tmp, "runs-long"),
      ...quick,
      maxLength: longer,
      log: (line) => lines.push(line),
      overrides: { data: { sources: { debian: null, wordnet: null } }, training: { batchSize: 8, warmupSteps: 1, evalEvery: 1000, checkpointEvery: 1000 } },
    });
    expect(lines.join("\n")).toContain(`its ${TINY_ARCH.maxLength} positions tiled to ${longer}`);
    const raw = JSON.parse(await readFile(result.configPath, "utf8"));
    expect(raw.arch.maxLength).toBe(longer);
    expect(raw.training.maxDocLength).toBe(longer);
    expect(raw.training.maxQueryLength).toBe(TINY_ARCH.maxLength);
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.architecture).toEqual({ ...TINY_ARCH, maxLength: longer });
    // The exported graphs serve the longer context: the held-out queries were ranked with them after the export.
    expect(manifest.adaptation.heldOutQueries.retrieval).toMatchObject({ queries: 1, documents: 12 });
    // Three small updates from the tiled table: position p is still close to the base's row p mod 32.
    const H = TINY_ARCH.hidden;
    const positions = (await loadParams(result.finalParamsPath!)).weights["embed.position"];
    expect(positions.length).toBe(longer * H);
    const base = baseWeights["embed.position"];
    let largest = 0;
    for (let p = 0; p < longer; p++) {
      for (let c = 0; c < H; c++) largest = Math.max(largest, Math.abs(positions[p * H + c]! - base[(p % TINY_ARCH.maxLength) * H + c]!));
    }
    expect(largest).toBeLessThan(5e-3);
    const changelog = await readFile(path.join(tmp, "artifacts-long", "CHANGELOG.md"), "utf8");
    expect(changelog).toContain(`from the base weights, documents read up to ${longer} word pieces; in-domain pairs`);
  });

  it("refuses an artifact of another architecture as initFrom", async () => {
    const config = path.join(tmp, "init-wider.json");
    await writeFile(
      config,
      JSON.stringify({
        name: "init-wider",
        tokenizer: tokenizerPath,
        initFrom: baseDir,
        arch: { ...TINY_ARCH, hidden: 32, ffn: 64 },
        data: { sources: { adapt: { dir: miniBeir, repeat: 8 } } },
        training: { batchSize: 8, steps: 1, lr: 1e-3, maxQueryLength: 16, maxDocLength: 32 },
        export: { name: "x", version: "next", outDir: path.join(tmp, "unused") },
      }),
    );
    await expect(train({ config, runDir: path.join(tmp, "init-wider"), progress: false, log: () => {} })).rejects.toThrow(
      /initFrom: .*taesr-test-small@0\.3\.0 was trained with hidden 64, ffn 128, this config has hidden 32, ffn 64/,
    );
    await expect(stat(path.join(tmp, "unused"))).rejects.toThrow();
  });

  it("keeps the table when appending to an existing CHANGELOG", async () => {
    const dir = path.join(tmp, "changelog");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "CHANGELOG.md"), "# Models\n\n| version | date |\n| --- | --- |\n| a@0.1.0 | x |\n\nNotes below the table.\n");
    await appendChangelogRow(dir, "| b@0.1.0 | y |");
    expect(await readFile(path.join(dir, "CHANGELOG.md"), "utf8")).toBe(
      "# Models\n\n| version | date |\n| --- | --- |\n| a@0.1.0 | x |\n| b@0.1.0 | y |\n\nNotes below the table.\n",
    );
  });

  it("--max-length refuses a token-mixer base, before any pairing or mining", async () => {
    const mixer = fileURLToPath(new URL("../../test/fixtures/taesr-mixer@0.0.0-test", import.meta.url));
    const runsDir = path.join(tmp, "runs-mixer");
    await expect(adapt({ corpusDir: miniBeir, from: mixer, artifactsDir, runsDir, ...quick, maxLength: 64 })).rejects.toThrow(
      /--max-length 64: the source has a mlp_mixer block, whose token-mixing matrices are sized by maxLength/,
    );
    await expect(stat(runsDir)).rejects.toThrow();
  });

  it("refuses a base that is not an artifact directory, before any training", async () => {
    await expect(adapt({ corpusDir: miniBeir, from: tmp, artifactsDir, runsDir: path.join(tmp, "runs-x"), ...quick })).rejects.toThrow(
      /base artifact: .* has no manifest\.json: is it a model artifact directory/,
    );
    await expect(stat(path.join(tmp, "runs-x"))).rejects.toThrow();
  });

  it("the CLI refuses a missing corpus directory with a clear message", async () => {
    const missing = path.join(tmp, "no-such-corpus");
    const error = await run("npx", ["tsx", "src/cli/train.ts", "--adapt", missing, "--from", baseDir], { cwd: trainingDir }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(error?.code).toBe(2);
    expect(error?.stderr).toContain(`adapt corpus directory not found: ${missing}`);
  });

  it("the CLI takes another preset with --preset, and refuses one it cannot read", async () => {
    const missing = path.join(tmp, "no-such-preset.json");
    const fail = (args: string[]) =>
      run("npx", ["tsx", "src/cli/train.ts", ...args], { cwd: trainingDir }).then(
        () => undefined,
        (e: { code: number; stderr: string }) => e,
      );
    const unreadable = await fail(["--adapt", miniBeir, "--from", baseDir, "--preset", missing, "--run-dir", path.join(tmp, "runs-preset")]);
    expect(unreadable?.code).toBe(2);
    expect(unreadable?.stderr).toContain(`cannot read the adaptation preset ${missing}`);
    const stray = await fail(["--config", "configs/tiny.json", "--preset", missing]);
    expect(stray?.stderr).toContain("--from, --name, --steps, --hard-negatives, --max-length, --extend-vocab, --new-rows-first and --preset go with --adapt");
  });

  it("the CHANGELOG row counts every process and accumulation step of an update, and names a distillation teacher", () => {
    const manifest = (training: Record<string, unknown>) =>
      ({
        name: "taesr-x",
        version: "0.4.0",
        files: { "fp32/embed.onnx": { bytes: 1000, sha256: "0".repeat(64) } },
        adaptation: { base: "taesr-edge-small@0.3.0", corpus: "scifact", documents: 5183, pairKinds: { "title->text": 5183 }, streamShare: 0.5 },
        training: { steps: 300, tokens: 4_234_535, wallTimeSeconds: 3888, backend: "wasm", config: { training: { batchSize: 64, ...training } } },
        eval: {},
      }) as unknown as Parameters<typeof changelogRow>[0];
    expect(changelogRow(manifest({ workers: 2 }), "2026-11-26")).toContain("300 updates × 2 data-parallel processes × 64 pairs (4,234,535 tokens, 65 min, wasm)");
    expect(changelogRow(manifest({ workers: 2, accumulationSteps: 3 }), "2026-11-26")).toContain("300 updates × 2 data-parallel processes × 3 accumulated micro-batches × 64 pairs");
    expect(changelogRow(manifest({}), "2026-11-26")).toContain("300 steps × 64 pairs");
    expect(changelogRow(manifest({}), "2026-11-26")).not.toContain("distilled");
    expect(changelogRow(manifest({}), "2026-11-26")).not.toContain("vocabulary");
    expect(changelogRow(manifest({ objectives: { late: { weight: 0.5, distill: { weight: 1 } } } }), "2026-11-26")).toContain(
      "dense embedding distilled from its late head (KL, weight 1); ",
    );
  });
});

/**
 * FastREM, the trained depth router: its features on known inputs, the decision rule, the softmax regression on a
 * separable problem, validation of the router JSON (alone and inside a manifest), router.ts choosing FastREM when the
 * manifest has it and the length rule otherwise (also inside TaesrEncoder), and a small end to end of the labelling,
 * fit and `--write` on the tiny BEIR fixture with the random fixture artifact, through the real CLI.
 */
import { spawnSync } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FASTREM_FEATURES,
  TaesrEncoder,
  createInputRouter,
  cumulativeRoute,
  fastRemFeatures,
  fastRemVocab,
  lengthRuleOf,
  routerServes,
  parseFastRemRouter,
  parseManifest,
  type ArtifactManifest,
  type EncoderTokenizer,
  type FastRemRouterSpec,
} from "../../src/model/index.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { accuracy, chooseConfidence, fitSoftmax, outOfFoldProbabilities, predictClasses } from "../../training/src/router/fit.js";
import { labelSources, smallestSufficient, type EmbedSetting } from "../../training/src/router/labels.js";
import { loadBeirSource, manifestTextWithRouter, trainRouterFromExamples, withLengthRule, writeRouter } from "../../training/src/router/router-training.js";
import { readArtifactDir } from "../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE_MODEL = path.join(root, "test", "fixtures", "taesr-random@0.0.0-test");
const FIXTURE_BEIR = path.join(root, "test", "fixtures", "beir-tiny");

// [PAD] [UNK], alphabet (punctuation, digits, letters, then "##" forms), merged pieces in merge order: the layout the
// vocabulary trainer writes (training/src/tokenizer/train-vocab.ts).
const VOCAB = ["[PAD]", "[UNK]", "(", ")", "-", "1", "a", "c", "t", "s", "##1", "##a", "##t", "##s", "ca", "##at", "the", "cat", "dog", "##ts"];
const id = (token: string) => VOCAB.indexOf(token);

/** A valid router over the given features; everything else is filler a trainer would write. */
function router(overrides: Partial<FastRemRouterSpec> = {}): FastRemRouterSpec {
  const features = overrides.features ?? ["tokens", "digitFraction"];
  return {
    kind: "fastrem",
    features,
    mean: features.map(() => 0),
    std: features.map(() => 1),
    weights: [features.map(() => 0), features.map(() => 0), features.map(() => 0)],
    bias: [0, 0, 0],
    decision: { rule: "cumulative", confidence: 0.5 },
    maxTokens: 64,
    rule: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 },
    labelledBy: { metric: "ndcg@10", depths: [1, 3, 6], documentDepth: "auto", dims: 128, variant: "int8", earlyExit: true, rule: "smallest sufficient depth" },
    trainedOn: {
      sources: [{ dataset: "scifact", split: "train", queries: 809 }],
      examples: 809,
      classCounts: { easy: 500, medium: 200, hard: 109 },
      model: "taesr-random@0.0.0-test",
      seed: 42,
      l2: 0.01,
      epochs: 2000,
      learningRate: 0.5,
      folds: 5,
      date: "2026-11-26",
    },
    accuracy: { train: 0.7, heldOut: 0.6 },
    ...overrides,
  };
}

describe("FastREM features", () => {
  const vocab = fastRemVocab(VOCAB);

  it("reads the vocabulary's layout: continuation, digits, punctuation, merge order", () => {
    expect(vocab.size).toBe(20);
    expect(vocab.mergeRank[id("the")]).toBeCloseTo(2 / 6, 6);
    expect(vocab.mergeRank[id("a")]).toBe(-1);
    expect(vocab.mergeRank[id("##ts")]).toBeCloseTo(5 / 6, 6);
  });

  it("computes every documented feature on a known input", () => {
    // "the cat ( ca##ts ) 1##1 [UNK]"
    const ids = ["the", "cat", "(", "ca", "##ts", ")", "1", "##1", "[UNK]"].map(id);
    const f = fastRemFeatures(ids, vocab);
    expect(Object.keys(f)).toEqual([...FASTREM_FEATURES]);
    expect(f.tokens).toBe(9);
    expect(f.logTokens).toBeCloseTo(Math.log(10), 12);
    expect(f.words).toBe(5); // the, cat, ca##ts, 1##1, [UNK]
    expect(f.piecesPerWord).toBeCloseTo(7 / 5, 12);
    expect(f.maxPiecesPerWord).toBe(2);
    expect(f.continuationFraction).toBeCloseTo(2 / 9, 12);
    expect(f.meanMergeRank).toBeCloseTo((2 / 6 + 3 / 6 + 0 + 5 / 6) / 4, 6);
    expect(f.rareFraction).toBeCloseTo(2 / 9, 12); // cat (rank 0.5) and ##ts
    expect(f.singleCharFraction).toBeCloseTo(2 / 9, 12); // 1, ##1
    expect(f.unkFraction).toBeCloseTo(1 / 9, 12);
    expect(f.digitFraction).toBeCloseTo(2 / 9, 12);
    expect(f.punctFraction).toBeCloseTo(2 / 9, 12);
  });

  it("gives zeros for an empty input and refuses ids outside the vocabulary", () => {
    expect(Object.values(fastRemFeatures([], vocab)).every((v) => v === 0)).toBe(true);
    expect(() => fastRemFeatures([20], vocab)).toThrow(/outside the vocabulary/);
  });

  it("builds the same tables from a tokenizer as from its token list", async () => {
    const json = JSON.parse(await readFile(path.join(FIXTURE_MODEL, "tokenizer.json"), "utf8")) as TokenizerJSON;
    const a = fastRemVocab(json.vocab);
    const b = fastRemVocab(WordPieceTokenizer.fromJSON(json));
    expect(Array.from(b.flags)).toEqual(Array.from(a.flags));
    expect(Array.from(b.mergeRank)).toEqual(Array.from(a.mergeRank));
  });
});

describe("FastREM decision and fit", () => {
  it("routes to the cheapest depth whose cumulative probability reaches the confidence", () => {
    const p = [0.5, 0.3, 0.2];
    expect(cumulativeRoute(p, 0.5)).toBe("easy");
    expect(cumulativeRoute(p, 0.7)).toBe("medium");
    expect(cumulativeRoute(p, 0.9)).toBe("hard");
    expect(cumulativeRoute([0, 0, 1], 0.05)).toBe("hard");
  });

  it("labels with the smallest depth that matches the deepest, ties to the smaller", () => {
    expect(smallestSufficient([0, 0, 0])).toBe(0);
    expect(smallestSufficient([0.2, 0.5, 0.5])).toBe(1);
    expect(smallestSufficient([0.1, 0.7, 0.5])).toBe(1);
    expect(smallestSufficient([0.1, 0.2, 0.5])).toBe(2);
  });

  // Three well-separated clusters in 2-D, one per class, on different scales (standardisation must cope).
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < 60; i++) {
    const c = i % 3;
    const jitter = ((i * 7919) % 13) / 13 - 0.5;
    rows.push([c * 100 + jitter * 20, (c === 1 ? 1 : 0) + jitter * 0.1]);
    labels.push(c);
  }

  it("learns a separable problem, deterministically", () => {
    const options = { l2: 0.001, epochs: 500, learningRate: 0.5 };
    const fit = fitSoftmax(rows, labels, options);
    expect(accuracy(labels, predictClasses(fit, rows))).toBe(1);
    expect(fit.loss).toBeLessThan(0.2);
    expect(fitSoftmax(rows, labels, options)).toEqual(fit);
    const oof = outOfFoldProbabilities(rows, labels, 5, 7, options);
    expect(accuracy(labels, oof.map((p) => p.indexOf(Math.max(...p))))).toBe(1);
  });

  it("chooses the cheapest confidence within the allowed loss", () => {
    // Example 0 needs depth 6 (its metric drops at 1 and 3), example 1 is fine at depth 1.
    const metrics = [
      [0, 0, 1],
      [1, 1, 1],
    ];
    const probabilities = [
      [0.2, 0.1, 0.7],
      [0.9, 0.05, 0.05],
    ];
    const { chosen } = chooseConfidence(probabilities, metrics, [1, 3, 6], 0.01);
    expect(chosen.meanDepth).toBe(3.5); // 6 for the first, 1 for the second
    expect(chosen.relativeLoss).toBe(0);
    expect(chosen.confidence).toBeGreaterThan(0.3); // below 0.3 the first would go cheap and lose
  });
});

describe("FastREM validation", () => {
  it("accepts a well-formed router and explains what is wrong with a bad one", () => {
    expect(parseFastRemRouter(router()).kind).toBe("fastrem");
    const bad = router({ features: ["tokens", "nonsense"], std: [1, 0], bias: [0, 0] as number[], weights: [[0, 0]] });
    let message = "";
    try {
      parseFastRemRouter(bad);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/invalid FastREM router/);
    expect(message).toMatch(/unknown feature "nonsense"/);
    expect(message).toMatch(/std/);
    expect(message).toMatch(/weights/);
    expect(message).toMatch(/bias/);
    expect(() => parseFastRemRouter({ ...router(), mean: [0] })).toThrow(/features has 2[\s\S]*at mean/);
    expect(() => parseFastRemRouter({ ...router(), decision: { rule: "cumulative", confidence: 0 } })).toThrow(/confidence/);
  });

  it("refuses a router labelled on a test split, alone and in a manifest", async () => {
    const onTest = router({ trainedOn: { ...router().trainedOn, sources: [{ dataset: "scifact", split: "test", queries: 300 }] } });
    expect(() => parseFastRemRouter(onTest)).toThrow(/test split/);
    const raw = JSON.parse(await readFile(path.join(FIXTURE_MODEL, "manifest.json"), "utf8")) as Record<string, unknown>;
    expect(() => parseManifest({ ...raw, router: onTest })).toThrow(/invalid manifest\.json[\s\S]*router/);
    expect(parseManifest({ ...raw, router: router() }).router.kind).toBe("fastrem");
  });
});

describe("router.ts picks the manifest's router", () => {
  const vocab = fastRemVocab(VOCAB);

  it("keeps the length rule for a manifest without FastREM", () => {
    const rule = createInputRouter({ kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 });
    expect(rule.kind).toBe("rule");
    expect([1, 9, 40].map((n) => rule.route(new Array<number>(n).fill(id("the"))))).toEqual(["easy", "medium", "hard"]);
  });

  it("routes by the classifier for FastREM, with the length guard, and needs the vocabulary", () => {
    // Digits push towards hard: a short query with a number goes deep, a short one without stays shallow.
    const spec = router({ weights: [[0, -10], [0, 0], [0, 10]], bias: [1, 0, 0], maxTokens: 10 });
    const fastrem = createInputRouter(spec, vocab);
    expect(fastrem.kind).toBe("fastrem");
    expect(fastrem.route(["the", "cat"].map(id))).toBe("easy");
    expect(fastrem.route(["the", "1", "##1"].map(id))).toBe("hard");
    expect(fastrem.route(new Array<number>(11).fill(id("the")))).toBe("hard"); // longer than maxTokens
    expect(() => createInputRouter(spec)).toThrow(/vocabulary/);
    expect(lengthRuleOf(spec)).toEqual(spec.rule);
  });

  it("drives TaesrEncoder's depth auto (and refuses a tokenizer without its vocabulary)", async () => {
    const artifact = await readArtifactDir(FIXTURE_MODEL, ["int8"]);
    const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
    const create = (manifest: ArtifactManifest, tok: EncoderTokenizer = tokenizer) =>
      TaesrEncoder.create({ ort: ortNode, manifest, files: artifact.files, variant: "int8", tokenizer: tok });
    const F = FASTREM_FEATURES.length;
    // Bias only: every input is "hard" under FastREM, while the rule sends a two-word query to "easy".
    const alwaysHard = router({ features: [...FASTREM_FEATURES], mean: new Array(F).fill(0), std: new Array(F).fill(1), weights: [0, 1, 2].map(() => new Array(F).fill(0)), bias: [-5, -5, 5] });
    const ruled = await create(artifact.manifest);
    const routed = await create({ ...artifact.manifest, router: alwaysHard });
    try {
      expect(await ruled.embed(["fast search"], { earlyExit: false })).toMatchObject({ route: "easy", depth: 1 });
      expect(await routed.embed(["fast search"], { earlyExit: false })).toMatchObject({ route: "hard", depth: 6 });
      expect(await routed.embed(["fast search"], { depth: 3, earlyExit: false })).toMatchObject({ route: "fixed", depth: 3 });
    } finally {
      await Promise.all([ruled.release(), routed.release()]);
    }
    const bare = { encode: (t: string, o: { maxLength: number }) => tokenizer.encode(t, o), padId: 0, unkId: 1 };
    await expect(create({ ...artifact.manifest, router: alwaysHard }, bare)).rejects.toThrow(/idToToken/);
  });

  it("routes a dense-only embedding by the length rule when the router was labelled on hybrid retrieval", async () => {
    const artifact = await readArtifactDir(FIXTURE_MODEL, ["int8"]);
    const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
    const F = FASTREM_FEATURES.length;
    const hybrid = { mode: "hybrid" as const, fusion: { method: "convex" as const, weights: { lexical: 0.65, dense: 0.35 } } };
    // Bias only: FastREM sends everything to "hard", the rule sends a two-word query to "easy" — so the depth shows
    // which of the two a call routed by.
    const base = router({ features: [...FASTREM_FEATURES], mean: new Array(F).fill(0), std: new Array(F).fill(1), weights: [0, 1, 2].map(() => new Array(F).fill(0)), bias: [-5, -5, 5] });
    const hybridLabelled = { ...base, labelledBy: { ...base.labelledBy, retrieval: hybrid } };
    expect(routerServes(hybridLabelled, "hybrid")).toBe(true);
    expect(routerServes(hybridLabelled, "dense")).toBe(false);
    expect(routerServes(base, "dense")).toBe(true); // dense labels hold for both rankings
    expect(routerServes({ kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 }, "dense")).toBe(true);

    const create = (r: FastRemRouterSpec) => TaesrEncoder.create({ ort: ortNode, manifest: { ...artifact.manifest, router: r }, files: artifact.files, variant: "int8", tokenizer });
    const [labelledHybrid, labelledDense] = await Promise.all([create(hybridLabelled), create(base)]);
    try {
      const at = (encoder: TaesrEncoder, ranking?: "dense" | "hybrid") =>
        encoder.embed(["fast search"], { earlyExit: false, ...(ranking ? { ranking } : {}) }).then((r) => [r.route, r.depth]);
      expect(await at(labelledHybrid, "hybrid")).toEqual(["hard", 6]);
      expect(await at(labelledHybrid, "dense")).toEqual(["easy", 1]);
      expect(await at(labelledHybrid)).toEqual(["easy", 1]); // the default is the stricter dense ranking
      expect(await at(labelledDense, "dense")).toEqual(["hard", 6]);
      expect(await at(labelledDense, "hybrid")).toEqual(["hard", 6]);
      await expect(labelledHybrid.embed(["x"], { ranking: "sparse" as "dense" })).rejects.toThrow(/ranking must be/);
    } finally {
      await Promise.all([labelledHybrid.release(), labelledDense.release()]);
    }
  });
});

describe("training the router end to end (tiny fixture)", () => {
  let scratch: string;
  let modelDir: string;
  let beirDir: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), "fastrem-test-"));
    // An artifacts folder with a CHANGELOG, a copy of the fixture model, and beir-tiny with its qrels as a train split.
    modelDir = path.join(scratch, "artifacts", "taesr-random@0.0.0-test");
    await cp(FIXTURE_MODEL, modelDir, { recursive: true });
    await writeFile(path.join(scratch, "artifacts", "CHANGELOG.md"), "# Model artifacts\n\n| version | what |\n| --- | --- |\n| x | y |\n");
    beirDir = path.join(scratch, "beir-tiny");
    await cp(FIXTURE_BEIR, beirDir, { recursive: true });
    await mkdir(path.join(beirDir, "qrels"), { recursive: true });
    await writeFile(path.join(beirDir, "qrels", "train.tsv"), await readFile(path.join(FIXTURE_BEIR, "qrels", "test.tsv"), "utf8"));
  });

  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("labels, fits, writes the manifest (same files) and the encoder then routes by it", async () => {
    await expect(loadBeirSource(beirDir, "test")).rejects.toThrow(/refusing --split test/);
    const artifact = await readArtifactDir(modelDir, ["int8"]);
    const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
    const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: withLengthRule(artifact.manifest), files: artifact.files, variant: "int8", tokenizer });
    const source = await loadBeirSource(beirDir, "train");
    const setting: EmbedSetting = { dims: 128, depths: [1, 3, 6], documentDepth: "auto", earlyExit: true, metric: "ndcg@10", variant: "int8" };
    const examples = await labelSources(encoder, tokenizer, fastRemVocab(tokenizer), FASTREM_FEATURES, [source], setting);
    await encoder.release();
    expect(examples).toHaveLength(6);
    for (const e of examples) {
      expect(e.metrics).toHaveLength(3);
      expect(e.label).toBe(smallestSufficient(e.metrics));
      expect(e.features).toHaveLength(FASTREM_FEATURES.length);
    }
    const { router: trained, report } = trainRouterFromExamples(
      examples,
      { featureNames: FASTREM_FEATURES, depths: [1, 3, 6], rule: lengthRuleOf(artifact.manifest.router), model: "taesr-random@0.0.0-test", setting, sources: [source] },
      { fit: { l2: 0.01, epochs: 200, learningRate: 0.5 }, folds: 3, seed: 1, maxRelativeLoss: 0.01, date: "2026-11-26" },
    );
    expect(trained.trainedOn.sources).toEqual([{ dataset: "beir-tiny", split: "train", queries: 6 }]);
    expect(report.examples).toBe(6);
    expect(report.policy.outOfFold.relativeLoss).toBeLessThanOrEqual(0.01 + 1e-9);

    const before = await readFile(path.join(modelDir, "manifest.json"), "utf8");
    const written = await writeRouter(modelDir, trained, "npm run train:router -- (test)");
    const after = parseManifest(await readFile(written.manifest, "utf8"));
    expect(after.router).toEqual(trained);
    expect(after.files).toEqual(parseManifest(before).files);
    // Only the router member changed: the text around it is byte for byte the exporter's.
    const text = await readFile(written.manifest, "utf8");
    expect(manifestTextWithRouter(before, trained)).toBe(text);
    const at = before.indexOf('\n  "router": ');
    expect(text.slice(0, at)).toBe(before.slice(0, at));
    expect(text.endsWith(before.slice(before.indexOf('\n  "earlyExitEpsilon"')))).toBe(true);
    const changelog = await readFile(path.join(scratch, "artifacts", "CHANGELOG.md"), "utf8");
    expect(changelog).toMatch(/\| x \| y \|\n\n- router trained: taesr-random@0\.0\.0-test, 2026-11-26 — FastREM/);

    const reloaded = await readArtifactDir(modelDir, ["int8"]);
    const served = await TaesrEncoder.create({ ort: ortNode, manifest: reloaded.manifest, files: reloaded.files, variant: "int8", tokenizer });
    try {
      const ids = tokenizer.encode("how do glaciers shape valleys", { maxLength: 64 });
      const expected = createInputRouter(trained, fastRemVocab(tokenizer)).route(ids);
      expect((await served.embed(["how do glaciers shape valleys"])).route).toBe(expected);
    } finally {
      await served.release();
    }
  });

  it("labels on the hybrid ranking when asked: the fused list decides, so a fusion that ignores dense makes every depth tie", async () => {
    const artifact = await readArtifactDir(modelDir, ["int8"]);
    const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
    const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: withLengthRule(artifact.manifest), files: artifact.files, variant: "int8", tokenizer });
    const source = await loadBeirSource(beirDir, "train");
    const base: EmbedSetting = { dims: 128, depths: [1, 3, 6], documentDepth: "auto", earlyExit: true, metric: "rr", variant: "int8" };
    try {
      const lexicalOnly = await labelSources(encoder, tokenizer, fastRemVocab(tokenizer), FASTREM_FEATURES, [source], {
        ...base,
        retrieval: { mode: "hybrid", fusion: { method: "convex", weights: { lexical: 1, dense: 0 } } },
      });
      const dense = await labelSources(encoder, tokenizer, fastRemVocab(tokenizer), FASTREM_FEATURES, [source], base);
      // Convex with dense weight 0 ranks by BM25 alone at every depth: one metric per query across depths, all easy,
      // and that metric is BM25's own RR — which the random fixture model's dense ranking does not reproduce.
      for (const e of lexicalOnly) {
        expect(new Set(e.metrics).size).toBe(1);
        expect(e.label).toBe(0);
      }
      expect(lexicalOnly.map((e) => e.metrics[0])).not.toEqual(dense.map((e) => e.metrics[0]));
      // The other extreme ranks by dense alone, so the hybrid labels are the dense ones.
      const mixed = await labelSources(encoder, tokenizer, fastRemVocab(tokenizer), FASTREM_FEATURES, [source], {
        ...base,
        retrieval: { mode: "hybrid", fusion: { method: "convex", weights: { lexical: 0, dense: 1 } } },
      });
      expect(mixed.map((e) => e.metrics)).toEqual(dense.map((e) => e.metrics));

      const { router: trained } = trainRouterFromExamples(
        lexicalOnly,
        {
          featureNames: FASTREM_FEATURES,
          depths: [1, 3, 6],
          rule: lengthRuleOf(artifact.manifest.router),
          model: "taesr-random@0.0.0-test",
          setting: { ...base, retrieval: { mode: "hybrid", fusion: { method: "convex", weights: { lexical: 1, dense: 0 } } } },
          sources: [source],
        },
        { fit: { l2: 0.01, epochs: 50, learningRate: 0.5 }, folds: 2, seed: 1, maxRelativeLoss: 0.01, date: "2026-11-26" },
      );
      expect(trained.labelledBy.retrieval).toEqual({ mode: "hybrid", fusion: { method: "convex", weights: { lexical: 1, dense: 0 } } });
      expect(trained.labelledBy.rule).toMatch(/hybrid rr/);
      expect(parseFastRemRouter(JSON.parse(JSON.stringify(trained)))).toEqual(trained);
      expect(() => parseFastRemRouter({ ...trained, labelledBy: { ...trained.labelledBy, retrieval: { mode: "sparse" } } })).toThrow(/retrieval/);
    } finally {
      await encoder.release();
    }
  });

  it("the CLI refuses the test split and writes a router JSON the eval CLI accepts", () => {
    const tsx = path.join(root, "node_modules", ".bin", "tsx");
    const cli = path.join(root, "training", "src", "router", "train-router.ts");
    const refused = spawnSync(tsx, [cli, "--model", modelDir, "--dataset", beirDir, "--split", "test", "--extra", "none"], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/refusing --split test/);

    const out = path.join(scratch, "router.json");
    const trained = spawnSync(tsx, [cli, "--model", modelDir, "--dataset", beirDir, "--extra", "none", "--folds", "2", "--epochs", "100", "--out", out], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(trained.status, trained.stderr).toBe(0);
    const printed = JSON.parse(trained.stdout) as { report: { examples: number }; router: FastRemRouterSpec };
    expect(printed.report.examples).toBe(6);

    const evaluated = spawnSync(
      tsx,
      [path.join(root, "bench", "eval.ts"), "--dataset", FIXTURE_BEIR, "--model", modelDir, "--mode", "dense", "--router", "fastrem", "--router-file", out],
      { cwd: root, encoding: "utf8", timeout: 60_000 },
    );
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const json = JSON.parse(evaluated.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
    expect(json).toMatchObject({ router: "fastrem", query_depth: null });
    expect(typeof json["mean_depth"]).toBe("number");
  });

  it("the CLI labels an adapted artifact only on the train queries it held out, against documents at its recorded depth, in its edge graphs", async () => {
    // An artifact adapted on "beir-adapted"'s train qrels that held 24 of its 30 queries out, and trained documents at
    // depth 1 — what `npm run train -- --adapt` records.
    const adaptedDir = path.join(scratch, "artifacts", "taesr-adapted@0.0.0-test");
    await cp(FIXTURE_MODEL, adaptedDir, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(adaptedDir, "manifest.json"), "utf8")) as Record<string, unknown>;
    const ids = Array.from({ length: 30 }, (_, i) => `q${i + 1}`);
    const adapted = (heldOut: readonly string[]) => ({
      ...manifest,
      adaptation: { corpus: "beir-adapted", trainQrelsUsed: true, heldOutQueries: { fraction: 0.8, count: heldOut.length, ids: heldOut } },
      retrieval: { documentDepth: { depth: 1, trainedWith: { documentSteps: [1] } } },
    });
    await writeFile(path.join(adaptedDir, "manifest.json"), JSON.stringify(adapted(ids.slice(0, 24)), null, 2));
    const datasetDir = path.join(scratch, "beir-adapted");
    await mkdir(path.join(datasetDir, "qrels"), { recursive: true });
    await cp(path.join(FIXTURE_BEIR, "corpus.jsonl"), path.join(datasetDir, "corpus.jsonl"));
    const docIds = (await readFile(path.join(FIXTURE_BEIR, "corpus.jsonl"), "utf8")).trim().split("\n").map((line) => (JSON.parse(line) as { _id: string })._id);
    const topics = ["glaciers", "coral reefs", "vaccines", "volcanoes", "tides", "bread yeast"];
    await writeFile(path.join(datasetDir, "queries.jsonl"), ids.map((id, i) => JSON.stringify({ _id: id, text: `what about ${topics[i % topics.length]} number ${i}` })).join("\n") + "\n");
    await writeFile(path.join(datasetDir, "qrels", "train.tsv"), "query-id\tcorpus-id\tscore\n" + ids.map((id, i) => `${id}\t${docIds[i % docIds.length]}\t1`).join("\n") + "\n");

    const tsx = path.join(root, "node_modules", ".bin", "tsx");
    const cli = path.join(root, "training", "src", "router", "train-router.ts");
    const args = ["--model", adaptedDir, "--dataset", datasetDir, "--extra", "none", "--folds", "2", "--epochs", "100"];
    const trained = spawnSync(tsx, [cli, ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toMatch(/labelling 24 of 30 beir-adapted train queries: those held out/);
    const printed = JSON.parse(trained.stdout) as { report: { examples: number }; router: FastRemRouterSpec };
    expect(printed.report.examples).toBe(24);
    expect(printed.router.trainedOn.sources).toEqual([{ dataset: "beir-adapted", split: "train", queries: 24 }]);
    expect(printed.router.labelledBy).toMatchObject({ documentDepth: 1, variant: "int8w" });

    // Too few held-out queries to choose on: refused, rather than labelled on queries the model trained on.
    await writeFile(path.join(adaptedDir, "manifest.json"), JSON.stringify(adapted(ids.slice(0, 5)), null, 2));
    const refused = spawnSync(tsx, [cli, ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/only 5 of the 30 beir-adapted train queries are among the 5 the adaptation held out by query id \(need 20\)/);
  });
});

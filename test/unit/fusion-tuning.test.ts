/**
 * Fusion tuning (bench/eval/fusion-tuning.ts) and the tuned default it ships: the tuner picks a component alone when
 * that component is strictly better on the split, ties go to more lexical weight, --save refuses the test split (in
 * the library and through the CLI), a saved fusion survives the manifest round trip without touching anything the
 * manifest's sha256 list covers, and the retrieval core resolves the layers (explicit > tuned > built-in) as the
 * Worker and the eval use them.
 */
import { appendChangelogLine } from "../../src/model/changelog.js";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { EvalDataset } from "../../bench/eval/dataset.js";
import type { KeptLists } from "../../bench/eval/evaluate.js";
import {
  THREE_LIST_STEP,
  TUNING_LEXICAL,
  assertSplitTunable,
  changelogLine,
  chooseFusion,
  fairTuningQueries,
  manifestTextWithFusion,
  neverBelowComponents,
  saveTunedFusion,
  threeListWeights,
  tuneFusion,
  tunedFusionRecord,
  tuningJson,
  type TuningPoint,
} from "../../bench/eval/fusion-tuning.js";
import { parseManifest, untrainedQueries, type TunedFusion } from "../../src/model/index.js";
import { adaptGroup, isHeldOut } from "../../training/src/data/pairs.js";
import { combineRankings, fusionDefaultFor, resolveFusion, type RankedHit } from "../../src/retrieval/index.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const scratch = mkdtempSync(path.join(os.tmpdir(), "fusion-tuning-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Two documents: R is the relevant one, W the distractor; corpus index = id in the lists. */
const R = 0;
const W = 1;
const dataset: EvalDataset = {
  name: "synthetic",
  dir: "/nowhere",
  split: "train",
  corpus: [
    { id: "R", title: "", text: "" },
    { id: "W", title: "", text: "" },
  ],
  queries: [{ id: "q1", text: "" }],
  qrels: new Map([["q1", new Map([["R", 1]])]]),
};

function list(...entries: [number, number][]): RankedHit<number>[] {
  return entries.map(([id, score], index) => ({ id, score, rank: index + 1 }));
}

function kept(lists: KeptLists["lists"]): KeptLists[] {
  return [{ lists, judgements: dataset.qrels.get("q1")! }];
}

describe("fusion tuner", () => {
  it("grids convex and RRF over lexical 0, 0.05, …, 1 (both components alone included)", () => {
    expect(TUNING_LEXICAL).toHaveLength(21);
    expect(TUNING_LEXICAL[0]).toBe(0);
    expect(TUNING_LEXICAL[20]).toBe(1);
    const result = tuneFusion(kept({ dense: list([R, 0.5], [W, 0.49]), lexical: list([W, 10]) }), dataset);
    expect(result.grid).toHaveLength(42);
    expect(result.grid.find((p) => p.method === "convex" && p.lexical === 0.85)!.dense).toBe(0.15);
  });

  it("picks dense alone when dense is strictly better", () => {
    // Dense ranks R first by a hair; BM25 found only W. Any lexical weight (even 0.05) lifts W over R.
    const result = tuneFusion(kept({ dense: list([R, 0.5], [W, 0.49]), lexical: list([W, 10]) }), dataset);
    expect(result.components).toEqual({ lexicalOnly: 0, denseOnly: 1 });
    expect(result.chosen).toMatchObject({ method: "convex", lexical: 0, dense: 1, "ndcg@10": 1 });
    expect(result.grid.find((p) => p.method === "convex" && p.lexical === 0.05)!["ndcg@10"]).toBeLessThan(1);
    expect(neverBelowComponents(result)).toBe(true);
  });

  it("picks lexical alone when lexical is strictly better", () => {
    // BM25 ranks R first by a hair; dense puts W far ahead. Convex at 0.95 already lets W win.
    const result = tuneFusion(kept({ dense: list([W, 0.9], [R, -0.9]), lexical: list([R, 10], [W, 9.9]) }), dataset);
    expect(result.components.lexicalOnly).toBe(1);
    expect(result.components.denseOnly).toBeLessThan(1);
    expect(result.chosen).toMatchObject({ method: "convex", lexical: 1, dense: 0, "ndcg@10": 1 });
    expect(result.grid.find((p) => p.method === "convex" && p.lexical === 0.95)!["ndcg@10"]).toBeLessThan(1);
    expect(neverBelowComponents(result)).toBe(true);
  });

  it("breaks exact ties towards convex, then more lexical weight", () => {
    const flat: TuningPoint[] = [
      { method: "rrf", lexical: 1, dense: 0, "ndcg@10": 0.5 },
      { method: "convex", lexical: 0.3, dense: 0.7, "ndcg@10": 0.5 },
      { method: "convex", lexical: 1, dense: 0, "ndcg@10": 0.5 },
      { method: "convex", lexical: 0.9, dense: 0.1, "ndcg@10": 0.5 },
    ];
    expect(chooseFusion(flat).chosen).toEqual({ method: "convex", lexical: 1, dense: 0, "ndcg@10": 0.5 });
    // Without per-query figures any strict gain beats the tie rule.
    const gain = { method: "rrf" as const, lexical: 0.2, dense: 0.8, "ndcg@10": 0.5001 };
    expect(chooseFusion([...flat, gain])).toEqual({ chosen: gain, best: gain });
  });

  it("weighs lexical shares only within the best point's method (a convex and an RRF weight are not on one scale)", () => {
    const best = { method: "convex" as const, lexical: 0.25, dense: 0.75, "ndcg@10": 0.69, perQuery: [0.7, 0.68] };
    // Both within one paired standard error of the best: the convex one by 0.005 (SE 0.015), the RRF one by 0.01 (SE 0.03).
    const convexTie = { method: "convex" as const, lexical: 0.4, dense: 0.6, "ndcg@10": 0.685, perQuery: [0.71, 0.66] };
    const rrfTie = { method: "rrf" as const, lexical: 0.75, dense: 0.25, "ndcg@10": 0.68, perQuery: [0.72, 0.64] };
    const { chosen } = chooseFusion([best, convexTie, rrfTie]);
    expect(chosen).toMatchObject({ method: "convex", lexical: 0.4 });
    // An RRF best keeps its ties among RRF points.
    expect(chooseFusion([{ ...best, method: "rrf" }, convexTie, { ...rrfTie, lexical: 0.6, dense: 0.4 }]).chosen).toMatchObject({ method: "rrf", lexical: 0.6 });
  });

  it("counts a gain within one paired standard error as a tie (noise), a consistent gain as a win", () => {
    const lexicalOnly = { method: "convex" as const, lexical: 1, dense: 0 };
    const mixed = { method: "convex" as const, lexical: 0.5, dense: 0.5 };
    // Mixed wins one query, loses the other: mean gain 0.01, paired standard error 0.03 → a tie → lexical alone.
    const noisy = chooseFusion([
      { ...lexicalOnly, "ndcg@10": 0.51, perQuery: [0.5, 0.52] },
      { ...mixed, "ndcg@10": 0.52, perQuery: [0.54, 0.5] },
    ]);
    expect(noisy.best).toMatchObject(mixed);
    expect(noisy.chosen).toMatchObject(lexicalOnly);
    // The same gain on every query: standard error 0 → mixed wins.
    const steady = chooseFusion([
      { ...lexicalOnly, "ndcg@10": 0.5, perQuery: [0.5, 0.5] },
      { ...mixed, "ndcg@10": 0.51, perQuery: [0.51, 0.51] },
    ]);
    expect(steady.chosen).toMatchObject(mixed);
    // A point below the floor (the better component alone) never ships, however noisy the comparison.
    const belowFloor = chooseFusion(
      [
        { ...mixed, "ndcg@10": 0.6, perQuery: [0.9, 0.3] },
        { ...lexicalOnly, lexical: 0.9, dense: 0.1, "ndcg@10": 0.55, perQuery: [0.3, 0.8] },
      ],
      0.58,
    );
    expect(belowFloor.chosen).toMatchObject(mixed);
  });
});

describe("fusion tuner with the learned sparse list as a third list", () => {
  it("grids the simplex of three weights in tenths: 66 points a method, corners and the sparse-0 edge included", () => {
    expect(THREE_LIST_STEP).toBe(0.1);
    const weights = threeListWeights();
    expect(weights).toHaveLength(66);
    for (const w of weights) expect(w.lexical + w.dense + w.sparse).toBeCloseTo(1, 10);
    expect(weights).toContainEqual({ lexical: 0, dense: 0, sparse: 1 });
    expect(weights).toContainEqual({ lexical: 0.7, dense: 0.3, sparse: 0 });
    const result = tuneFusion(kept({ dense: list([W, 0.9]), lexical: list([W, 10]), sparse: list([R, 3], [W, 1]) }), dataset);
    expect(result.grid).toHaveLength(132);
  });

  it("finds a sparse list that alone ranks right, reports it as a component, and records its weight", () => {
    // Dense and BM25 both put W first; only the learned terms find R.
    const result = tuneFusion(kept({ dense: list([W, 0.9], [R, 0.1]), lexical: list([W, 10], [R, 1]), sparse: list([R, 3], [W, 1]) }), dataset);
    expect(result.components).toEqual({ lexicalOnly: expect.any(Number), denseOnly: expect.any(Number), sparseOnly: 1 });
    expect(result.components.lexicalOnly).toBeLessThan(1);
    expect(result.chosen["ndcg@10"]).toBe(1);
    expect(result.chosen.sparse).toBeGreaterThan(0);
    expect(neverBelowComponents(result)).toBe(true);
    const record = tunedFusionRecord(result, { dataset: "synthetic", split: "train", dims: 128, variant: "int8", date: "2026-11-27" });
    expect(record.weights.sparse).toBe(result.chosen.sparse);
    expect(record.tunedOn.sparseOnly).toBe(1);
    expect(parseManifest(JSON.parse(manifestTextWithFusion(readFileSync(path.join(root, "model-artifacts/taesr-edge-small@0.3.0/manifest.json"), "utf8"), record))).retrieval?.fusion).toEqual(record);
    expect(changelogLine("m@1", record, undefined)).toMatch(/ \/ sparse \d.* sparse alone 1\.0000/);
    expect(tuningJson(result, "train")).toMatchObject({ components: { sparse_only: 1 }, chosen: { weights: { sparse: result.chosen.sparse } } });
  });

  it("tunes the two-list fusion beside it, for searches that cannot read the sparse list, and records it", () => {
    // BM25 alone puts W first, dense puts R first by a hair: of the two lists, only mixes that let dense win rank R
    // first, and the convex ones with any real lexical weight do not. The two-list choice is one of those.
    const result = tuneFusion(kept({ dense: list([R, 0.5], [W, 0.49]), lexical: list([W, 10], [R, 1]), sparse: list([R, 3], [W, 1]) }), dataset);
    const twoLists = result.withoutSparse!.chosen;
    expect(twoLists["ndcg@10"]).toBe(1);
    expect(twoLists.sparse).toBeUndefined();
    expect(result.grid.find((p) => p.method === "convex" && p.lexical === 1 && p.sparse === 0)!["ndcg@10"]).toBeLessThan(1);
    const record = tunedFusionRecord(result, { dataset: "synthetic", split: "train", dims: 128, variant: "int8", date: "2026-11-27" });
    expect(record.withoutSparse).toEqual({ method: twoLists.method, weights: { lexical: twoLists.lexical, dense: twoLists.dense }, ndcg10: 1 });
    const manifest = parseManifest(JSON.parse(manifestTextWithFusion(readFileSync(path.join(root, "model-artifacts/taesr-edge-small@0.3.0/manifest.json"), "utf8"), record)));
    expect(manifest.retrieval?.fusion?.withoutSparse).toEqual(record.withoutSparse);
    expect(changelogLine("m@1", record, undefined)).toMatch(new RegExp(`without the sparse list ${twoLists.method} lexical ${twoLists.lexical} / dense ${twoLists.dense} 1\\.0000`));
    expect(tuningJson(result, "train")).toMatchObject({ without_sparse: { chosen: { method: twoLists.method, "ndcg@10": 1 } } });
    // A two-list tuning records none.
    expect(tuneFusion(kept({ dense: list([R, 0.5]), lexical: list([W, 10]) }), dataset).withoutSparse).toBeUndefined();
  });

  it("fusionDefaultFor: a search without the sparse list gets the two-list tuning, one with it the three weights", () => {
    const three = { method: "convex" as const, weights: { lexical: 0.6, dense: 0.1, sparse: 0.3 }, withoutSparse: { method: "rrf" as const, weights: { lexical: 0.4, dense: 0.6 } } };
    expect(fusionDefaultFor(three, true)).toBe(three);
    expect(fusionDefaultFor(three, false)).toEqual({ method: "rrf", weights: { lexical: 0.4, dense: 0.6 } });
    const two = { method: "convex" as const, weights: { lexical: 0.5, dense: 0.5 } };
    expect(fusionDefaultFor(two, false)).toBe(two);
  });

  it("gives the sparse list weight 0 when it adds nothing, preferring lexical, then less sparse, on ties", () => {
    // All three lists rank R first: every point ties; the rule ships lexical alone.
    const result = tuneFusion(kept({ dense: list([R, 0.9], [W, 0.1]), lexical: list([R, 10], [W, 1]), sparse: list([R, 3], [W, 1]) }), dataset);
    expect(result.chosen).toMatchObject({ method: "convex", lexical: 1, dense: 0, sparse: 0 });
    const flat: TuningPoint[] = [
      { method: "convex", lexical: 0.5, dense: 0, sparse: 0.5, "ndcg@10": 0.5 },
      { method: "convex", lexical: 0.5, dense: 0.5, sparse: 0, "ndcg@10": 0.5 },
    ];
    expect(chooseFusion(flat).chosen).toMatchObject({ dense: 0.5, sparse: 0 });
  });
});

describe("tuning an adapted model on queries it never trained on", () => {
  // Document ids on each side of the adaptation's 5% document-hash split.
  const ids = Array.from({ length: 4000 }, (_, i) => `doc${i}`);
  const heldOut = ids.filter((id) => isHeldOut(adaptGroup(id), 0.05));
  const trained = ids.filter((id) => !isHeldOut(adaptGroup(id), 0.05));
  const keptFor = (...docIds: string[]): KeptLists => ({ lists: {}, judgements: new Map(docIds.map((id) => [id, 1])) });
  const adapted = { adaptation: { trainQrelsUsed: true, corpus: "scifact" }, training: { config: { data: { validationFraction: 0.05 } } } };

  it("keeps only the queries whose every relevant document was held out of the adaptation", () => {
    expect(heldOut.length).toBeGreaterThan(100);
    const kept = [
      ...heldOut.slice(0, 25).map((id) => keptFor(id)),
      ...trained.slice(0, 50).map((id) => keptFor(id)),
      keptFor(heldOut[30]!, trained[60]!), // one relevant document was trained on: the query was too
    ];
    const fair = fairTuningQueries(kept, adapted, { name: "scifact", split: "train" });
    expect(fair.kept).toHaveLength(25);
    expect(fair.note).toMatch(/^25 of 76 scifact train queries/);
  });

  it("keeps every query for a model not adapted with this dataset's train qrels, or another split", () => {
    const kept = trained.slice(0, 30).map((id) => keptFor(id));
    expect(fairTuningQueries(kept, {}, { name: "scifact", split: "train" }).kept).toHaveLength(30);
    expect(fairTuningQueries(kept, adapted, { name: "nfcorpus", split: "train" }).kept).toHaveLength(30);
    expect(fairTuningQueries(kept, { ...adapted, adaptation: { trainQrelsUsed: false, corpus: "scifact" } }, { name: "scifact", split: "train" }).kept).toHaveLength(30);
    expect(fairTuningQueries(kept, adapted, { name: "scifact", split: "dev" }).kept).toHaveLength(30);
  });

  it("refuses when too few fair queries remain, or when the manifest does not say how the split was made", () => {
    const kept = [...heldOut.slice(0, 5), ...trained.slice(0, 40)].map((id) => keptFor(id));
    expect(() => fairTuningQueries(kept, adapted, { name: "scifact", split: "train" })).toThrow(/only 5 of 45 have all their relevant documents held out/);
    expect(() => fairTuningQueries(kept, { adaptation: adapted.adaptation }, { name: "scifact", split: "train" })).toThrow(/no training.config.data.validationFraction/);
  });

  describe("with the held-out query ids the adaptation recorded (holdoutQueries)", () => {
    // 30 train queries held out by id (their documents on the trained side), 50 trained on.
    const heldIds = Array.from({ length: 30 }, (_, i) => `h${i}`);
    const withIds = { ...adapted, adaptation: { ...adapted.adaptation, heldOutQueries: { fraction: 0.15, rule: "…", count: 30, ids: heldIds } } };
    const keptWith = (queryId: string, ...docIds: string[]): KeptLists => ({ ...keptFor(...docIds), queryId });
    const kept = [
      ...heldIds.map((id, i) => keptWith(id, trained[i]!)),
      ...Array.from({ length: 50 }, (_, i) => keptWith(`t${i}`, trained[100 + i]!)),
      // All its documents held out of the document split, but the query was not held out: the old rule's pick, not this one's.
      keptWith("t-doc-held", heldOut[0]!),
    ];

    it("tunes on exactly those, not on the document-split fallback, and says so in the note and the CHANGELOG line", () => {
      const fair = fairTuningQueries(kept, withIds, { name: "scifact", split: "train" });
      expect(fair.kept.map((k) => k.queryId)).toEqual(heldIds);
      expect(fair.note).toMatch(/^30 of 81 scifact train queries: those held out of the adaptation's supervised pairs by query id \(manifest adaptation\.heldOutQueries, 15% by a hash of the id;/);
      // An older artifact (no ids recorded) keeps today's rule, and its note says so.
      const older = fairTuningQueries([...kept, ...heldOut.slice(1, 25).map((id, i) => keptWith(`o${i}`, id))], adapted, { name: "scifact", split: "train" });
      expect(older.kept).toHaveLength(25);
      expect(older.note).toMatch(/relevant documents were all held out .*records no held-out query ids/);

      const record: TunedFusion = {
        method: "convex",
        weights: { lexical: 0.8, dense: 0.2 },
        tunedOn: { dataset: "scifact", split: "train", queries: fair.kept.length, ndcg10: 0.7, lexicalOnly: 0.69, denseOnly: 0.3, date: "2026-01-02", dims: 128, variant: "int8" },
      };
      const line = changelogLine("taesr-edge-scifact@0.3.0", record, undefined, { note: fair.note });
      expect(line).toContain("scifact train (30 queries, 128-d int8)");
      expect(line).toContain("30 of 81 scifact train queries: those held out of the adaptation's supervised pairs by query id");
    });

    it("refuses too few held-out queries, a malformed record, and kept lists without query ids", () => {
      expect(fairTuningQueries(kept.slice(10), withIds, { name: "scifact", split: "train" }).kept).toHaveLength(20);
      expect(() => fairTuningQueries(kept.slice(15), withIds, { name: "scifact", split: "train" })).toThrow(
        /only 15 of the 66 scifact train queries are among the 30 the adaptation held out by query id \(need 20\): adapt with a larger holdoutQueries/,
      );
      const malformed = { ...adapted, adaptation: { ...adapted.adaptation, heldOutQueries: { ids: [1, 2] } } };
      expect(() => fairTuningQueries(kept, malformed, { name: "scifact", split: "train" })).toThrow(/adaptation\.heldOutQueries has no "ids" array/);
      const anonymous = kept.map(({ lists, judgements }) => ({ lists, judgements }));
      expect(() => fairTuningQueries(anonymous, withIds, { name: "scifact", split: "train" })).toThrow(/carry no query ids/);
    });
  });
});

describe("untrainedQueries (src/model/adaptation.ts): the queries a tool may choose on before it evaluates", () => {
  const queries = Array.from({ length: 60 }, (_, i) => ({ id: `q${i}`, text: `query ${i}` }));
  const heldIds = queries.slice(0, 25).map((q) => q.id);
  const adapted = { adaptation: { trainQrelsUsed: true, corpus: "scifact", heldOutQueries: { fraction: 0.15, ids: heldIds } } };

  it("keeps the held-out queries of an artifact adapted on this dataset's train queries, in their order", () => {
    const fair = untrainedQueries(queries, adapted, { name: "scifact", split: "train" });
    expect(fair.queries.map((q) => q.id)).toEqual(heldIds);
    expect(fair.note).toBe("25 of 60 scifact train queries: those held out of the adaptation's supervised pairs by query id");
  });

  it("keeps every query otherwise, and refuses an adaptation that recorded no held-out ids or too few", () => {
    expect(untrainedQueries(queries, {}, { name: "scifact", split: "train" }).queries).toHaveLength(60);
    expect(untrainedQueries(queries, adapted, { name: "scifact", split: "dev" }).queries).toHaveLength(60);
    expect(untrainedQueries(queries, adapted, { name: "nfcorpus", split: "train" }).queries).toHaveLength(60);
    expect(() => untrainedQueries(queries, { adaptation: { trainQrelsUsed: true, corpus: "scifact" } }, { name: "scifact", split: "train" })).toThrow(
      /records none it held out/,
    );
    expect(() => untrainedQueries(queries.slice(10), adapted, { name: "scifact", split: "train" })).toThrow(/only 15 of the 50 scifact train queries are among the 25 the adaptation held out/);
  });
});

describe("--save refuses the test split", () => {
  it("in the library", () => {
    expect(() => assertSplitTunable("test")).toThrow(/--save refuses --split test/);
    expect(() => assertSplitTunable("train")).not.toThrow();
    const result = tuneFusion(kept({ dense: list([R, 0.5], [W, 0.49]), lexical: list([W, 10]) }), dataset);
    expect(() => tunedFusionRecord(result, { dataset: "synthetic", split: "test", dims: 128, variant: "int8" })).toThrow(/test/);
  });

  it("through the CLI: exit 1 with a clear message, before any model work", () => {
    const tsx = path.join(root, "node_modules", ".bin", "tsx");
    const args = [path.join(root, "bench/eval.ts"), "--dataset", path.join(root, "test/fixtures/beir-tiny"), "--mode", "hybrid", "--tune-fusion", "--save"];
    const result = spawnSync(tsx, args, { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/--save refuses --split test/);
    expect(result.stdout.trim()).toBe("");
  });
});

describe("tuned fusion in the manifest", () => {
  const fixtureManifest = readFileSync(path.join(root, "test/fixtures/taesr-random@0.0.0-test/manifest.json"), "utf8");
  const tuned: TunedFusion = {
    method: "convex",
    weights: { lexical: 0.85, dense: 0.15 },
    tunedOn: { dataset: "scifact", split: "train", queries: 809, ndcg10: 0.676, lexicalOnly: 0.6745, denseOnly: 0.021, date: "2026-11-26", dims: 128, variant: "int8" },
  };

  it("round-trips through save and parse, leaving the file list and every other field as they were", async () => {
    const artifacts = path.join(scratch, "artifacts");
    const dir = path.join(artifacts, "taesr-random@0.0.0-test");
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "manifest.json"), fixtureManifest);
    writeFileSync(path.join(artifacts, "CHANGELOG.md"), "# Model artifacts\n\n| version | what |\n| --- | --- |\n| 0.0.0-test | fixture |\n");

    const saved = await saveTunedFusion(dir, tuned, { command: "npm run eval -- --split train --tune-fusion --save" });
    const text = readFileSync(path.join(dir, "manifest.json"), "utf8");
    const manifest = parseManifest(text);
    expect(manifest.retrieval?.fusion).toEqual(tuned);
    // The exporter's text is kept byte for byte; the fusion is appended as the last member.
    expect(text.startsWith(fixtureManifest.replace(/\s*}\s*$/, ""))).toBe(true);
    const { retrieval, ...rest } = JSON.parse(text) as Record<string, unknown>;
    expect(retrieval).toEqual({ fusion: tuned });
    expect(rest).toEqual(JSON.parse(fixtureManifest));
    expect(parseManifest(fixtureManifest).retrieval).toBeUndefined();

    const changelog = readFileSync(saved.changelog!, "utf8");
    expect(changelog).toContain("| 0.0.0-test | fixture |\n\n- fusion retuned: taesr-random@0.0.0-test, 2026-11-26");
    expect(saved.line).toContain("convex lexical 0.85 / dense 0.15 (was built-in convex lexical 0.7 / dense 0.3)");

    // A second save replaces the fusion, and its line follows the first directly (one list below the table).
    const again: TunedFusion = { ...tuned, weights: { lexical: 1, dense: 0 } };
    const second = await saveTunedFusion(dir, again);
    expect(parseManifest(readFileSync(path.join(dir, "manifest.json"), "utf8")).retrieval?.fusion).toEqual(again);
    expect(second.line).toContain("(was tuned convex lexical 0.85 / dense 0.15)");
    expect(readFileSync(saved.changelog!, "utf8").trimEnd().split("\n").slice(-2).every((line) => line.startsWith("- fusion retuned:"))).toBe(true);
  });

  it("changes only the retrieval lines, keeping the exporter's escapes and number format", () => {
    const original = '{\n  "eps": 1e-08,\n  "use": "title \\u2192 abstract"\n}\n';
    const once = manifestTextWithFusion(original, tuned);
    expect(once.startsWith('{\n  "eps": 1e-08,\n  "use": "title \\u2192 abstract",\n  "retrieval": {\n    "fusion": {\n      "method": "convex",')).toBe(true);
    expect(JSON.parse(once)).toEqual({ eps: 1e-8, use: "title → abstract", retrieval: { fusion: tuned } });
    const again: TunedFusion = { ...tuned, method: "rrf", weights: { lexical: 0.9, dense: 0.1 } };
    const twice = manifestTextWithFusion(once, again);
    expect(twice.startsWith('{\n  "eps": 1e-08,\n  "use": "title \\u2192 abstract",\n  "retrieval": {')).toBe(true);
    expect(JSON.parse(twice)).toEqual({ eps: 1e-8, use: "title → abstract", retrieval: { fusion: again } });
  });

  it("validates the tuned fusion like the rest of the manifest", () => {
    const withFusion = (fusion: unknown) => JSON.stringify({ ...JSON.parse(fixtureManifest), retrieval: { fusion } });
    expect(() => parseManifest(withFusion({ ...tuned, weights: { lexical: 0, dense: 0 } }))).toThrow(/at least one fusion weight/);
    expect(() => parseManifest(withFusion({ ...tuned, weights: { lexical: -1, dense: 1 } }))).toThrow(/invalid manifest/);
    expect(() => parseManifest(withFusion({ ...tuned, method: "max" }))).toThrow(/invalid manifest/);
    expect(() => parseManifest(withFusion({ ...tuned, tunedOn: { ...tuned.tunedOn, split: "test" } }))).toThrow(/test split/);
  });

  it("keeps the changelog's table intact when the first line is appended", () => {
    expect(appendChangelogLine("| a |\n| --- |\n| 1 |\n", "- x")).toBe("| a |\n| --- |\n| 1 |\n\n- x\n");
    expect(appendChangelogLine("| 1 |\n\n- x\n", "- y")).toBe("| 1 |\n\n- x\n- y\n");
  });
});

describe("which fusion a hybrid search uses", () => {
  const defaults = { method: "convex" as const, weights: { lexical: 0.85, dense: 0.15 } };

  it("explicit fusion and weights over the tuned default, the tuned default over the constants", () => {
    expect(resolveFusion({})).toEqual({ method: "convex", weights: { lexical: 0.7, dense: 0.3 } });
    expect(resolveFusion({ defaults })).toEqual(defaults);
    expect(resolveFusion({ defaults, fusion: "convex" })).toEqual(defaults);
    // RRF was not what was tuned: its own constants, not convex weights on another scale.
    expect(resolveFusion({ defaults, fusion: "rrf" })).toEqual({ method: "rrf", weights: { lexical: 3, dense: 1 } });
    expect(resolveFusion({ defaults, weights: { dense: 0.5 } })).toEqual({ method: "convex", weights: { lexical: 0.85, dense: 0.5 } });
    expect(resolveFusion({ defaults: { method: "rrf", weights: { lexical: 4, dense: 1 } } })).toEqual({ method: "rrf", weights: { lexical: 4, dense: 1 } });
  });

  it("combineRankings ranks by the tuned default when the caller names none", () => {
    const dense = list([R, 0.5], [W, 0.49]);
    const lexical = list([W, 10]);
    // Built-in 0.7 / 0.3: W (lexical's only hit) wins; a dense-only tuned default puts R first.
    expect(combineRankings("hybrid", { dense, lexical }, { topK: 2, candidates: 50 })[0]!.id).toBe(W);
    const denseOnly = { method: "convex" as const, weights: { lexical: 0, dense: 1 } };
    expect(combineRankings("hybrid", { dense, lexical }, { topK: 2, candidates: 50, defaults: denseOnly })[0]!.id).toBe(R);
    expect(combineRankings("hybrid", { dense, lexical }, { topK: 2, candidates: 50, defaults: denseOnly, weights: { lexical: 1 } })[0]!.id).toBe(W);
  });
});

/**
 * `npm run eval:compare`: TREC runs parsed as trec_eval reads them (score order, ties by document id) with bad lines
 * refused by line number, the paired comparison's figures checked against a hand computation, and the CLI as a user
 * runs it on the tiny BEIR fixture — JSON last on stdout, a clear message and exit 1 for a broken run, a run of other
 * queries, and an adapted model's held-out set too small to compare on; queries grouped by how fragmented their words
 * are under the 8k vocabulary.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compareRuns, fragmentedShare, groupByQuantile, parseRunFile } from "../../bench/eval/run-comparison.js";
import { MIN_HELD_OUT_QUERIES } from "../../src/model/index.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { lastJsonLine, runCli } from "../support/run-cli.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dataset = path.join(root, "test", "fixtures", "beir-tiny");
const scratch = mkdtempSync(path.join(os.tmpdir(), "compare-runs-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const runLines = (rankings: Record<string, string[]>) =>
  Object.entries(rankings)
    .flatMap(([query, docs]) => docs.map((doc, i) => `${query} Q0 ${doc} ${i + 1} ${(10 - i).toFixed(1)} test`))
    .join("\n");

describe("parseRunFile", () => {
  it("orders each query's documents by score, then document id, whatever the rank column says", () => {
    const run = parseRunFile(["q1 Q0 d3 1 0.5 t", "q1 Q0 d1 2 0.9 t", "", "q1 Q0 d2 3 0.5 t", "q2 Q0 d7 1 -1e-3 t"].join("\n"), "a.run");
    expect(run.get("q1")).toEqual(["d1", "d2", "d3"]);
    expect(run.get("q2")).toEqual(["d7"]);
  });

  it("refuses lines it cannot score faithfully, naming the file and line", () => {
    expect(() => parseRunFile("q1 Q0 d1 1 0.5", "a.run")).toThrow(/a\.run: line 1 has 5 fields/);
    expect(() => parseRunFile("q1 Q0 d1 1 0.5 t\nq1 Q0 d2 2 high t", "a.run")).toThrow(/a\.run: line 2 has a non-numeric score "high"/);
    expect(() => parseRunFile("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t", "a.run")).toThrow(/line 2 ranks document d1 for query q1 a second time/);
    expect(() => parseRunFile("\n\n", "empty.run")).toThrow(/empty\.run holds no ranking/);
  });
});

describe("compareRuns", () => {
  const qrels = new Map([
    ["q1", new Map([["d1", 1]])],
    ["q2", new Map([["d2", 1]])],
    ["q3", new Map([["d3", 1]])],
  ]);
  const names = { a: "A", b: "B" };

  it("gives each metric's means, the mean difference B − A and its paired standard error", () => {
    // A: q1 first, q2 second, q3 missing. B: q1 second, q2 first, q3 first.
    const a = new Map([["q1", ["d1", "x"]], ["q2", ["x", "d2"]]]);
    const b = new Map([["q1", ["x", "d1"]], ["q2", ["d2"]], ["q3", ["d3"]]]);
    const result = compareRuns(a, b, ["q1", "q2", "q3"], qrels, names);
    const second = 1 / Math.log2(3);
    const diffs = [second - 1, 1 - second, 1];
    const meanDiff = diffs.reduce((s, d) => s + d, 0) / 3;
    const se = Math.sqrt(diffs.reduce((s, d) => s + (d - meanDiff) ** 2, 0) / 2 / 3);
    expect(result.metrics["ndcg@10"]).toEqual({
      a: Number(((1 + second) / 3).toFixed(4)),
      b: Number(((second + 2) / 3).toFixed(4)),
      diff: Number(meanDiff.toFixed(4)),
      paired_se: Number(se.toFixed(4)),
    });
    expect(result.metrics["mrr@10"]).toMatchObject({ a: 0.5, b: Number((2.5 / 3).toFixed(4)) });
    expect(result.metrics["recall@100"]).toMatchObject({ a: Number((2 / 3).toFixed(4)), b: 1, diff: Number((1 / 3).toFixed(4)) });
    expect(result).toMatchObject({ queries: 3, missing: { a: 1, b: 0 }, better: 2, worse: 1 });
  });

  it("refuses a run that ranks none of the compared queries, and fewer than two queries", () => {
    const a = new Map([["q1", ["d1"]]]);
    expect(() => compareRuns(a, new Map([["other", ["d1"]]]), ["q1", "q2"], qrels, names)).toThrow(/B ranks none of the 2 judged queries compared/);
    expect(() => compareRuns(a, a, ["q1"], qrels, names)).toThrow(/at least 2 judged queries, got 1/);
  });
});

describe("queries grouped by fragmentation", () => {
  const tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(readFileSync(path.join(root, "training", "vocab", "taesr-8k.json"), "utf8")));

  it("counts the content words (≥ 4 characters) cut into ≥ 3 pieces", () => {
    // thr ##omb ##ocyt ##ope ##ni ##a; rare.
    expect(fragmentedShare("Thrombocytopenia is rare", tokenizer)).toBe(0.5);
    // bi ##c ##ycl ##e among clean, bicycle, chain (how, to, a are too short to count).
    expect(fragmentedShare("how to clean a bicycle chain", tokenizer)).toBeCloseTo(1 / 3, 12);
    // neutroph ##ils and myel ##oid: two pieces each is not fragmented.
    expect(fragmentedShare("Neutrophils and myeloid", tokenizer)).toBe(0);
    expect(fragmentedShare("the cat sat", tokenizer)).toBe(0);
  });

  it("splits queries into equal groups by value, lowest first, ties by query id", () => {
    const values = new Map([["a", 0.5], ["b", 0.1], ["c", 0.3], ["d", 0.1], ["e", 0.9], ["f", 0]]);
    expect(groupByQuantile(values, 3)).toEqual([
      { range: "0.000–0.100", ids: ["f", "b"] },
      { range: "0.100–0.300", ids: ["d", "c"] },
      { range: "0.500–0.900", ids: ["a", "e"] },
    ]);
    expect(() => groupByQuantile(values, 4)).toThrow(/6 queries cannot make 4 groups of at least 2/);
    expect(() => groupByQuantile(values, 0)).toThrow(/groups must be a whole number ≥ 1, got 0/);
  });
});

async function cli(args: string[]): Promise<{ status: number | null; stderr: string; json: Record<string, unknown> | null }> {
  const { code, stdout, stderr } = await runCli("bench/compare-runs.ts", args);
  return { status: code, stderr, json: lastJsonLine(stdout) };
}

describe("npm run eval:compare", () => {
  // beir-tiny's judged test queries q1–q6 (q4 has two relevant documents, d5 graded 2).
  const perfect = { q1: ["d1"], q2: ["d2"], q3: ["d3"], q4: ["d5", "d3"], q5: ["d6"], q6: ["d7"] };
  const worse = { q1: ["d2", "d1"], q2: ["d2"], q3: ["d3"], q4: ["d3", "d5"], q5: ["d6"], q6: ["d7"] };
  const fileA = path.join(scratch, "a.run");
  const fileB = path.join(scratch, "b.run");
  writeFileSync(fileA, `${runLines(worse)}\n`);
  writeFileSync(fileB, `${runLines(perfect)}\n`);

  it("prints the comparison as JSON last on stdout and writes --out", async () => {
    const out = path.join(scratch, "compare.json");
    const { status, stderr, json } = await cli(["--dataset", dataset, fileA, fileB, "--out", out]);
    expect(status, stderr).toBe(0);
    expect(json).toMatchObject({ dataset: "beir-tiny", split: "test", queries: 6, missing: { a: 0, b: 0 }, better: 2, worse: 0 });
    const ndcg = (json!.metrics as Record<string, { a: number; b: number; diff: number }>)["ndcg@10"]!;
    expect(ndcg.b).toBe(1);
    expect(ndcg.diff).toBeGreaterThan(0);
    expect(stderr).toMatch(/ndcg@10 +A 0\.\d{4} +B 1\.0000 +B − A \+0\.\d{4} \(paired SE 0\.\d{4}\)/);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(json);
  });

  it("exits 1 with a message for a broken run, a missing file, and a run of other queries", async () => {
    const broken = path.join(scratch, "broken.run");
    writeFileSync(broken, "q1 Q0 d1 1 0.5 t\nq2 d2 1 0.4\n");
    let result = await cli(["--dataset", dataset, fileA, broken]);
    expect(result.status).toBe(1);
    expect(result.json).toBeNull();
    expect(result.stderr).toContain(`eval:compare failed: ${broken}: line 2 has 4 fields`);

    result = await cli(["--dataset", dataset, fileA, path.join(scratch, "nowhere.run")]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("cannot read the run at");

    const other = path.join(scratch, "other.run");
    writeFileSync(other, `${runLines({ z1: ["d1"], z2: ["d2"] })}\n`);
    result = await cli(["--dataset", dataset, fileA, other]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/ranks none of the 6 judged queries compared \(a run of another split or dataset\?\)/);
  });

  it("--by-fragmentation compares again within groups of queries, the groups covering every query once", async () => {
    const tokenizer = path.join(root, "training", "vocab", "taesr-8k.json");
    const { status, stderr, json } = await cli(["--dataset", dataset, "--by-fragmentation", tokenizer, "--groups", "2", fileA, fileB]);
    expect(status, stderr).toBe(0);
    const groups = (json!.by_fragmentation as { tokenizer: string; groups: Array<{ fragmented_share: string; queries: number }> }).groups;
    expect(groups.map((g) => g.queries)).toEqual([3, 3]);
    expect(groups[0]!.fragmented_share).toMatch(/^0\.\d{3}–\d\.\d{3}$/);
    expect(stderr).toMatch(/fragmented share [\d.–]+ \(3 queries\): NDCG@10 A/);

    const missing = await cli(["--dataset", dataset, "--by-fragmentation", path.join(scratch, "none.json"), fileA, fileB]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("cannot read the tokenizer at");
  });

  it("--held-out-of keeps an adapted model's held-out train queries, and refuses too few of them", async () => {
    // A copy of the fixture with train qrels, and a model adapted on it that held out two of its queries.
    const trainDataset = path.join(scratch, "beir-tiny");
    cpSync(dataset, trainDataset, { recursive: true });
    cpSync(path.join(dataset, "qrels", "test.tsv"), path.join(trainDataset, "qrels", "train.tsv"));
    const model = path.join(scratch, "adapted");
    mkdirSync(model);
    writeFileSync(
      path.join(model, "manifest.json"),
      JSON.stringify({ adaptation: { corpus: "beir-tiny", trainQrelsUsed: true, heldOutQueries: { fraction: 0.3, ids: ["q1", "q4"] } } }),
    );
    // On the test split the model trained on nothing: every judged query is compared.
    const onTest = await cli(["--dataset", trainDataset, "--held-out-of", model, fileA, fileB]);
    expect(onTest.status, onTest.stderr).toBe(0);
    expect(onTest.json).toMatchObject({ queries: 6 });
    expect(onTest.json).not.toHaveProperty("query_set");

    const onTrain = await cli(["--dataset", trainDataset, "--split", "train", "--held-out-of", model, fileA, fileB]);
    expect(onTrain.status).toBe(1);
    expect(onTrain.stderr).toContain(`only 2 of the 6 beir-tiny train queries are among the 2 the adaptation held out by query id (need ${MIN_HELD_OUT_QUERIES})`);

    writeFileSync(path.join(model, "manifest.json"), "{ not json");
    const broken = await cli(["--dataset", trainDataset, "--split", "train", "--held-out-of", model, fileA, fileB]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain(`${path.join(model, "manifest.json")} is not valid JSON`);
  });
});

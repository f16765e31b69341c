import { describe, expect, it } from "vitest";
import { parseCorpus, parseQrels, parseQueries } from "../../src/eval/beir.js";
import { averagePrecisionAt, mrrAt, ndcgAt, orderRun, percentile, recallAt } from "../../src/eval/metrics.js";

const judgements = new Map([
  ["d1", 2],
  ["d3", 1],
  ["d9", 0],
]);

describe("ranking metrics (trec_eval conventions)", () => {
  it("computes NDCG@k with graded gains and the ideal DCG from the qrels", () => {
    // DCG = 1/log2(2) [d3] + 2/log2(4) [d1 at rank 3] = 1 + 1 = 2; IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.6309298 = 2.6309298
    expect(ndcgAt(10, ["d3", "d2", "d1"], judgements)).toBeCloseTo(2 / 2.6309298, 6);
    expect(ndcgAt(10, ["d1", "d3"], judgements)).toBeCloseTo(1, 12);
    expect(ndcgAt(2, ["d2", "d4", "d1"], judgements)).toBe(0);
    expect(ndcgAt(10, ["d1"], new Map())).toBe(0);
  });

  it("computes MRR, recall and average precision at a cut-off", () => {
    expect(mrrAt(10, ["d2", "d9", "d3"], judgements)).toBeCloseTo(1 / 3, 12);
    expect(mrrAt(2, ["d2", "d9", "d3"], judgements)).toBe(0);
    expect(recallAt(2, ["d3", "d2", "d1"], judgements)).toBe(0.5);
    // relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    expect(averagePrecisionAt(100, ["d1", "d2", "d3"], judgements)).toBeCloseTo((1 + 2 / 3) / 2, 12);
  });

  it("orders a run by score, ties by id, whatever the input order", () => {
    const ordered = orderRun([
      { id: "b", score: 1 },
      { id: "c", score: 2 },
      { id: "a", score: 1 },
    ]);
    expect(ordered.map((hit) => hit.id)).toEqual(["c", "a", "b"]);
  });

  it("takes nearest-rank percentiles", () => {
    const sample = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(sample, 50)).toBe(5);
    expect(percentile(sample, 95)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe("BEIR parsing", () => {
  it("reads corpus, queries and qrels with a header row", () => {
    expect(parseCorpus('{"_id":"1","title":"T","text":"x"}\n\n{"_id":"2","text":"y"}\n')).toEqual([
      { id: "1", title: "T", text: "x" },
      { id: "2", title: "", text: "y" },
    ]);
    expect(parseQueries('{"_id":"q","text":"hello"}')).toEqual([{ id: "q", text: "hello" }]);
    const qrels = parseQrels("query-id\tcorpus-id\tscore\n1\t31715818\t1\n1\t42\t2\n3\t7\t1\n");
    expect([...qrels.keys()]).toEqual(["1", "3"]);
    expect(qrels.get("1")?.get("42")).toBe(2);
  });

  it("names the line of a broken record", () => {
    expect(() => parseCorpus('{"_id":"1","text":"x"}\n{oops')).toThrow(/line 2/);
    expect(() => parseQueries('{"text":"no id"}')).toThrow(/"_id"/);
  });
});

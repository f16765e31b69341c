import { readFileSync, readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_LEXICAL_WEIGHTING,
  MAX_QUERY_TERMS,
  MAX_SPARSE_DIMENSIONS,
  documentSparseVector,
  querySparseVector,
  termIndex,
} from "../../workers/edge/src/upstash-sparse.js";

describe("termIndex", () => {
  it("is 32-bit FNV-1a of the UTF-8 bytes, masked to 31 bits", () => {
    // FNV-1a("a") = 0xe40c292c, FNV-1a("") = the offset basis 0x811c9dc5 (published test vectors).
    expect(termIndex("a")).toBe(0xe40c292c & 0x7fffffff);
    expect(termIndex("")).toBe(0x811c9dc5 & 0x7fffffff);
    expect(termIndex("##é")).toBe(termIndex("##é"));
    expect(termIndex("##é")).not.toBe(termIndex("##e"));
  });

  it("maps no two pieces of any bundled vocabulary to one dimension", () => {
    const root = new URL("../../model-artifacts/", import.meta.url);
    const artifacts = readdirSync(root).filter((name) => name.includes("@"));
    expect(artifacts.length).toBeGreaterThan(0);
    for (const artifact of artifacts) {
      const { vocab } = JSON.parse(readFileSync(new URL(`${artifact}/tokenizer.json`, root), "utf8")) as { vocab: string[] };
      const indices = new Set(vocab.map(termIndex));
      expect(indices.size, artifact).toBe(new Set(vocab).size);
      for (const index of indices) expect(index >= 0 && index <= 0x7fffffff).toBe(true);
    }
  });
});

describe("documentSparseVector", () => {
  it("stores BM25's saturated term frequency per term, sorted by dimension", () => {
    const { k1, b, avgDocLength } = DEFAULT_LEXICAL_WEIGHTING;
    const sparse = documentSparseVector([["lens", 3], ["##es", 1]], 40, DEFAULT_LEXICAL_WEIGHTING);
    if ("error" in sparse) throw new Error(sparse.error);
    const norm = k1 * (1 - b + (b * 40) / avgDocLength);
    const expected = new Map([
      [termIndex("lens"), (3 * (k1 + 1)) / (3 + norm)],
      [termIndex("##es"), (1 * (k1 + 1)) / (1 + norm)],
    ]);
    expect(sparse.indices).toEqual([...expected.keys()].sort((x, y) => x - y));
    sparse.indices.forEach((index, i) => expect(sparse.values[i]).toBeCloseTo(expected.get(index)!, 12));
  });

  it("refuses a document Upstash cannot hold instead of dropping terms", () => {
    const terms = Array.from({ length: MAX_SPARSE_DIMENSIONS + 1 }, (_, i) => [`t${i}`, 1] as [string, number]);
    expect(documentSparseVector(terms, terms.length, DEFAULT_LEXICAL_WEIGHTING)).toEqual({ error: expect.stringMatching(/1001 distinct lexical terms.*at most 1000/) });
    expect("error" in documentSparseVector(terms.slice(1), 1000, DEFAULT_LEXICAL_WEIGHTING)).toBe(false);
    expect(documentSparseVector([], 0, DEFAULT_LEXICAL_WEIGHTING)).toEqual({ error: expect.stringMatching(/no lexical terms/) });
  });
});

describe("querySparseVector", () => {
  it("counts each distinct term, and keeps only the first MAX_QUERY_TERMS of them", () => {
    expect(querySparseVector(["a", "b", "a"])).toEqual(
      [["a", 2], ["b", 1]].sort((x, y) => termIndex(x[0] as string) - termIndex(y[0] as string)).reduce(
        (sparse, [term, count]) => ({ indices: [...sparse.indices, termIndex(term as string)], values: [...sparse.values, count as number] }),
        { indices: [] as number[], values: [] as number[] },
      ),
    );
    const many = Array.from({ length: MAX_QUERY_TERMS + 10 }, (_, i) => `t${i}`);
    const sparse = querySparseVector([...many, "t0"]);
    expect(sparse.indices).toHaveLength(MAX_QUERY_TERMS);
    expect(sparse.indices).not.toContain(termIndex(`t${MAX_QUERY_TERMS}`));
    expect(sparse.values[sparse.indices.indexOf(termIndex("t0"))]).toBe(2);
  });
});

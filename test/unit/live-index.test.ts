/**
 * The write-following in-memory indexes (src/retrieval/live-index.ts) against the same structures built from scratch
 * over the surviving documents: appends with dead rows masked must rank, score and count exactly as a fresh build.
 */
import { describe, expect, it } from "vitest";
import {
  LiveDenseIndex,
  LiveLexicalIndex,
  LiveSparseIndex,
  PackedBm25,
  binaryRescoreSearch,
  ensureCapacity,
  packMatrix,
  packSignBits,
  quantizeInt8Rows,
  type PackedPostings,
} from "../../src/retrieval/index.js";
import { createRng } from "../../training/src/data/random.js";

type Doc = { terms: [string, number][]; length: number; sparse: [number, number][]; vector: number[] };

function randomDoc(random: () => number): Doc {
  const counts = new Map<string, number>();
  const length = 1 + Math.floor(random() * 12);
  for (let i = 0; i < length; i++) {
    const term = `t${Math.floor(30 * random() ** 2)}`;
    counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  const sparse = [...new Set(Array.from({ length: 3 }, () => Math.floor(random() * 15)))].sort((a, b) => a - b).map((t) => [t, Math.fround(0.1 + random())] as [number, number]);
  return { terms: [...counts], length, sparse, vector: Array.from({ length: 16 }, () => random() - 0.5) };
}

describe("live indexes", () => {
  it("score exactly as indexes built from the surviving documents alone", () => {
    const random = createRng(5);
    const lexical = new LiveLexicalIndex();
    const sparse = new LiveSparseIndex();
    const dense = new LiveDenseIndex(16);
    const rows: (Doc | null)[] = [];
    const alive: number[] = [];
    for (let step = 0; step < 400; step++) {
      const live = rows.map((d, row) => (d ? row : -1)).filter((row) => row >= 0);
      if (live.length > 0 && random() < 0.3) {
        const row = live[Math.floor(random() * live.length)]!;
        lexical.remove(rows[row]!.terms, rows[row]!.length);
        sparse.remove(rows[row]!.sparse);
        rows[row] = null;
        alive[row] = 0;
      } else {
        const doc = randomDoc(random);
        const row = rows.length;
        rows.push(doc);
        alive.push(1);
        lexical.add(row, doc.terms, doc.length);
        sparse.add(row, doc.sparse);
        dense.add(row, doc.vector);
      }
    }
    const mask = Uint8Array.from(alive);
    const survivors = rows.map((doc, row) => ({ doc, row })).filter((entry): entry is { doc: Doc; row: number } => entry.doc !== null);

    // BM25 over the survivors only, with their own statistics.
    const postings = new Map<string, { docs: number[]; tfs: number[] }>();
    survivors.forEach(({ doc }, i) => {
      for (const [term, tf] of doc.terms) {
        let list = postings.get(term);
        if (!list) postings.set(term, (list = { docs: [], tfs: [] }));
        list.docs.push(i);
        list.tfs.push(tf);
      }
    });
    const packed = new Map<string, PackedPostings>([...postings].map(([term, list]) => [term, { docs: Uint32Array.from(list.docs), tfs: Uint16Array.from(list.tfs) }]));
    const fresh = new PackedBm25(survivors.map(({ doc }) => doc.length));
    for (const query of [["t0"], ["t1", "t5", "t1"], ["t3", "t20", "t29"], ["nothing"]]) {
      const got = lexical.search(query, 1000, mask).map((hit) => [hit.id, hit.score]);
      const expected = fresh.search(query, packed, 1000).map((hit) => [survivors[hit.id]!.row, hit.score]);
      expect(got.map(([row]) => row)).toEqual(expected.map(([row]) => row));
      got.forEach(([, score], i) => expect(score).toBeCloseTo(expected[i]![1]!, 12));
    }
    const stats = lexical.stats(["t0", "t1", "nothing"]);
    expect(stats.docCount).toBe(survivors.length);
    expect(stats.totalLength).toBe(survivors.reduce((sum, { doc }) => sum + doc.length, 0));
    expect(stats.df).toEqual({ t0: postings.get("t0")?.docs.length ?? 0, t1: postings.get("t1")?.docs.length ?? 0, nothing: 0 });
    expect(lexical.termCount).toBe(postings.size);
    expect(lexical.postingCount).toBe(survivors.reduce((sum, { doc }) => sum + doc.terms.length, 0));
    expect(sparse.postingCount).toBe(survivors.reduce((sum, { doc }) => sum + doc.sparse.length, 0));

    // Sparse: Σ q·d over survivors.
    const sparseQuery: [number, number][] = [[2, 1], [7, 0.5]];
    const expectedSparse = survivors
      .map(({ doc, row }) => ({ row, score: sparseQuery.reduce((sum, [t, q]) => sum + q * (doc.sparse.find(([term]) => term === t)?.[1] ?? 0), 0) }))
      .filter((hit) => hit.score > 0)
      .sort((a, b) => b.score - a.score || a.row - b.row);
    const gotSparse = sparse.search(sparseQuery, 1000, mask);
    expect(gotSparse.map((hit) => hit.id)).toEqual(expectedSparse.map((hit) => hit.row));
    // Exactly: the index keeps weights as float32, which loses nothing of the model's float32 outputs.
    expect(gotSparse.map((hit) => hit.score)).toEqual(expectedSparse.map((hit) => hit.score));

    // Dense: the same two-stage search over a matrix of the survivors.
    const matrix = packMatrix(survivors.map(({ doc }) => doc.vector), 16);
    const query = packMatrix([Array.from({ length: 16 }, () => random() - 0.5)], 16);
    const expectedDense = binaryRescoreSearch(packSignBits(matrix, 16), quantizeInt8Rows(matrix, 16), query, 20, 10);
    const gotDense = dense.search(query, 20, 10, mask);
    expect(gotDense.map((hit) => [hit.id, hit.score])).toEqual(expectedDense.map((hit) => [survivors[hit.id]!.row, hit.score]));
  });

  it("refuse rows out of order and masks that do not cover every row", () => {
    const lexical = new LiveLexicalIndex();
    lexical.add(0, [["a", 1]], 1);
    lexical.add(5, [["a", 1]], 1); // rows may skip (another list's rows), never go back
    expect(() => lexical.add(3, [["a", 1]], 1)).toThrow(/appended in increasing order: got row 3, the next free row is 6/);
    expect(() => lexical.search(["a"], 10, new Uint8Array(2))).toThrow(/mask covers 2 rows, the index has 6/);
    expect(() => new LiveDenseIndex(8).add(0, [1, 2, 3])).toThrow(/3-d vector has no 8-d prefix/);
  });

  it("grow typed arrays by doubling, keeping their contents", () => {
    const start = Uint16Array.of(1, 2, 3);
    expect(ensureCapacity(start, 3)).toBe(start);
    const grown = ensureCapacity(start, 4);
    expect(grown).toBeInstanceOf(Uint16Array);
    expect(grown.length).toBe(16);
    expect([...grown.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect(ensureCapacity(new Float64Array(40), 41).length).toBe(80);
  });
});

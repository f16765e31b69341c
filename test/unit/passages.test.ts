/**
 * Documents as passages (src/model/passages.ts, TaesrEncoder `passages`): the splitter packs whole sentences under a
 * piece budget with the heading in front, cuts over-long sentences at words, leaves short texts alone and stops at
 * maxPassages; the encoder embeds each passage and returns the normalised mean of their vectors, the first passage's
 * token vectors and each term's largest sparse weight — checked against embedding the passages directly.
 */
import { describe, expect, it } from "vitest";
import { checkPassageOptions, splitPassages, weightNames } from "../../src/model/index.js";
import { initWeights, mulberry32 } from "../../training/src/model/params.js";
import { fixtureArchitecture } from "../support/fixture-artifact.js";
import { useFixtureEncoder } from "../support/fixture-encoder.js";

/** One piece per word and per punctuation mark, like the WordPiece tokenizer on plain words. */
const countPieces = (text: string) => (text.match(/[A-Za-z0-9]+|[^\sA-Za-z0-9]/g) ?? []).length;

const sentence = (i: number, words = 6) => `${["Alpha", "Beta", "Gamma", "Delta", "Echo", "Foxtrot"][i % 6]} ${Array.from({ length: words - 1 }, (_, k) => `w${i}x${k}`).join(" ")}.`;

describe("splitPassages", () => {
  it("returns a text that fits one passage unchanged", () => {
    const text = "Short title\nOne sentence. Two sentences.";
    expect(splitPassages(text, countPieces, { maxPieces: 32, maxPassages: 4 })).toEqual({ passages: [text], truncated: false });
  });

  it("packs whole sentences under the budget, the heading in front of every passage", () => {
    // 8 sentences of 7 pieces (6 words + "."), heading 2 pieces: budget 30 − 2 = 28 → 4 sentences a passage.
    const body = Array.from({ length: 8 }, (_, i) => sentence(i)).join(" ");
    const { passages, truncated } = splitPassages(`Cell biology\n${body}`, countPieces, { maxPieces: 30, maxPassages: 8 });
    expect(truncated).toBe(false);
    expect(passages).toHaveLength(2);
    for (const p of passages) {
      expect(p.startsWith("Cell biology\n")).toBe(true);
      expect(countPieces(p)).toBeLessThanOrEqual(30);
    }
    expect(passages[0]).toBe(`Cell biology\n${[0, 1, 2, 3].map((i) => sentence(i)).join(" ")}`);
    // Every sentence lands in exactly one passage, in order.
    expect(passages.map((p) => p.slice("Cell biology\n".length)).join(" ")).toBe(body);
  });

  it("cuts a sentence longer than a passage at word boundaries, and drops a heading too long to repeat", () => {
    const long = Array.from({ length: 50 }, (_, k) => `word${k}`).join(" ");
    const heading = Array.from({ length: 12 }, (_, k) => `head${k}`).join(" ");
    const { passages } = splitPassages(`${heading}\n${long}`, countPieces, { maxPieces: 20, maxPassages: 8 });
    // The 12-piece heading exceeds a quarter of 20 pieces: it is body text, and the words run on from it.
    expect(passages[0]!.startsWith("head0 head1")).toBe(true);
    expect(passages.every((p) => countPieces(p) <= 20)).toBe(true);
    expect(passages.join(" ").replace("\n", " ")).toBe(`${heading} ${long}`);
  });

  it("stops at maxPassages and says the rest was left out", () => {
    const body = Array.from({ length: 12 }, (_, i) => sentence(i)).join(" ");
    const { passages, truncated } = splitPassages(`T\n${body}`, countPieces, { maxPieces: 16, maxPassages: 3 });
    expect(passages).toHaveLength(3);
    expect(truncated).toBe(true);
  });

  it("refuses options the model cannot honour", () => {
    expect(() => checkPassageOptions({ maxPieces: 200, maxPassages: 4 }, 128)).toThrow(/passages\.maxPieces must be an integer from 16 to the model's maxLength \(128\)/);
    expect(() => checkPassageOptions({ maxPieces: 64, maxPassages: 0 }, 128)).toThrow(/passages\.maxPassages/);
    expect(() => checkPassageOptions({ maxPieces: 64, maxPassages: 8 }, 128)).not.toThrow();
  });
});

describe("TaesrEncoder with passages", () => {
  const FIXTURE = { name: "taesr-passages", hidden: 32, vocabSize: 256, maxLength: 32, sparseHead: true, lateHead: { dim: 8 } };
  const ARCH = fixtureArchitecture(FIXTURE);
  const fixture = useFixtureEncoder(() => {
    const weights = initWeights(ARCH, 3);
    const rand = mulberry32(4);
    for (const name of weightNames(ARCH)) if (name === "embed.token") weights[name] = weights[name].map(() => (rand() * 2 - 1) * 0.3);
    return { ...FIXTURE, weights };
  });
  const options = { maxPieces: 32, maxPassages: 16 };
  const long = `the edge model\n${Array.from({ length: 6 }, (_, i) => `The vector ${i} search runs on every core of the small machine.`).join(" ")}`;

  it("returns the normalised mean of the passages' vectors, the first passage's token vectors and the largest sparse weights", async () => {
    const { encoder, tokenizer } = fixture;
    const count = (t: string) => tokenizer.encode(t, { maxLength: 10_000 }).length;
    const { passages } = splitPassages(long, count, options);
    expect(passages.length).toBeGreaterThan(2);
    const sparse = { threshold: 0, maxTerms: 10_000 };
    const direct = await encoder.embed(passages, { dims: 384, depth: 1, tokenVectors: true, sparse });
    const pooled = await encoder.embed([long, "a short one"], { dims: 64, depth: 1, tokenVectors: true, sparse, passages: options });
    expect(pooled.passages).toEqual([
      { count: passages.length, truncated: false },
      { count: 1, truncated: false },
    ]);
    // The mean of the full-width vectors, then its 64-d prefix normalised (as a 64-d view of a stored 384-d vector).
    const mean = new Float32Array(64);
    for (const v of direct.embeddings) v.slice(0, 64).forEach((x, k) => (mean[k] = mean[k]! + x));
    const norm = Math.hypot(...mean);
    pooled.embeddings[0]!.forEach((x, k) => expect(x).toBeCloseTo(mean[k]! / norm, 5));
    expect(Math.hypot(...pooled.embeddings[0]!)).toBeCloseTo(1, 5);
    // Not the first passage alone: the later passages moved the vector.
    const firstOnly = direct.embeddings[0]!.slice(0, 64).map((x, _, v) => x / Math.hypot(...v));
    expect(Math.max(...pooled.embeddings[0]!.map((x, k) => Math.abs(x - firstOnly[k]!)))).toBeGreaterThan(1e-3);
    // Equal up to float rounding: the two calls pad the first passage to different batch lengths.
    const [got, want] = [pooled.tokenVectors![0]!, direct.tokenVectors![0]!];
    expect(got.count).toBe(want.count);
    expect(Math.max(...Array.from(got.data, (x, i) => Math.abs(x - want.data[i]!)))).toBeLessThan(1e-5);
    const largest: Record<number, number> = {};
    for (const terms of direct.sparse!) for (const [id, w] of Object.entries(terms)) largest[Number(id)] = Math.max(largest[Number(id)] ?? 0, w);
    expect(Object.keys(pooled.sparse![0]!).sort()).toEqual(Object.keys(largest).sort());
    for (const [id, w] of Object.entries(pooled.sparse![0]!)) expect(w).toBeCloseTo(largest[Number(id)]!, 6);
    // A text that fits one passage embeds exactly as without the option.
    const alone = await encoder.embed(["a short one"], { dims: 64, depth: 1 });
    pooled.embeddings[1]!.forEach((x, k) => expect(x).toBeCloseTo(alone.embeddings[0]![k]!, 5));
  });

  it("returns each passage's own vector with passageVectors, and refuses them without passages", async () => {
    const { encoder, tokenizer } = fixture;
    const count = (t: string) => tokenizer.encode(t, { maxLength: 10_000 }).length;
    const { passages } = splitPassages(long, count, options);
    const direct = await encoder.embed(passages, { dims: 384, depth: 1 });
    const result = await encoder.embed([long, "a short one"], { dims: 64, depth: 1, passages: options, passageVectors: true });
    expect(result.passageVectors!.map((rows) => rows.length)).toEqual([passages.length, 1]);
    result.passageVectors![0]!.forEach((vector, p) => {
      // Each passage's full-width vector, its 64-d prefix normalised: the row a best-passage index stores.
      const want = direct.embeddings[p]!.slice(0, 64);
      const norm = Math.hypot(...want);
      expect(vector).toHaveLength(64);
      vector.forEach((x, k) => expect(x).toBeCloseTo(want[k]! / norm, 5));
    });
    // The pooled vector is still returned beside them.
    expect(result.embeddings).toHaveLength(2);
    expect(Math.hypot(...result.embeddings[0]!)).toBeCloseTo(1, 5);
    await expect(encoder.embed([long], { passageVectors: true })).rejects.toThrow(/passageVectors needs passages/);
  });

  it("cuts the merged sparse terms to maxTerms, and refuses bad passage options before running", async () => {
    const { encoder } = fixture;
    const r = await encoder.embed([long], { depth: 1, sparse: { threshold: 0, maxTerms: 5 }, passages: options });
    expect(Object.keys(r.sparse![0]!)).toHaveLength(5);
    await expect(encoder.embed([long], { passages: { maxPieces: 64, maxPassages: 4 } })).rejects.toThrow(/passages\.maxPieces .* maxLength \(32\)/);
  });
});

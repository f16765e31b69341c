/**
 * The platform-neutral model runtime in Node (onnxruntime-node): manifest validation and integrity, the rule router,
 * and TaesrEncoder against a random-weight artifact written by the real exporter (training/src/export/artifact.ts).
 * The fp32 encoder is also checked against a plain-JS forward pass written from spec.ts, so the composition
 * (h₀ = 0, x injected every step, mask semantics, pooling) is tested independently of the exporter and of training;
 * the per-token vectors for late interaction are checked against the same pass's last hidden states.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LAYER_NORM_EPS,
  TaesrEncoder,
  centredTokenRows,
  depthForRoute,
  hardestRoute,
  maxCosineDistance,
  parseManifest,
  routeByTokenCount,
  sha256Hex,
  variantFiles,
  verifyArtifactFiles,
  type ArtifactManifest,
  type TaesrArchitecture,
  type WeightName,
} from "../../src/model/index.js";
import { maxSim } from "../../src/retrieval/index.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { initWeights } from "../../training/src/model/params.js";
import { writeFixtureArtifact } from "../support/fixture-artifact.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

const SEED = 99;
let workDir: string;
let manifest: ArtifactManifest;
let files: Record<string, Uint8Array>;
let tokenizer: WordPieceTokenizer;
let fp32: TaesrEncoder;
let int8: TaesrEncoder;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), "taesr-encoder-test-"));
  const exported = await writeFixtureArtifact({ outDir: workDir, hidden: 32, vocabSize: 256, seed: SEED });
  manifest = exported.manifest;
  files = {};
  for (const rel of Object.keys(manifest.files)) files[rel] = new Uint8Array(await readFile(path.join(exported.dir, rel)));
  tokenizer = WordPieceTokenizer.fromJSON(JSON.parse(new TextDecoder().decode(files[manifest.tokenizer])));
  [fp32, int8] = await Promise.all([
    TaesrEncoder.create({ ort: ortNode, manifest, files, variant: "fp32", tokenizer }),
    TaesrEncoder.create({ ort: ortNode, manifest, files, variant: "int8", tokenizer }),
  ]);
});

afterAll(async () => {
  await Promise.all([fp32?.release(), int8?.release()]);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const cosine = (a: Float32Array, b: Float32Array): number => 1 - maxCosineDistance(a, b, 1, a.length);
const norm = (v: Float32Array): number => Math.hypot(...v);
/** A text of exactly n word-piece tokens with the fixture tokenizer (every word below is one vocabulary entry). */
const textOfTokens = (n: number): string => Array.from({ length: n }, (_, i) => ["the", "edge", "model", "query"][i % 4]).join(" ");

describe("manifest", () => {
  it("parses the exporter's manifest, from text or JSON value", async () => {
    const text = JSON.stringify(manifest);
    expect(parseManifest(text)).toEqual(manifest);
    expect(parseManifest(JSON.parse(text))).toEqual(manifest);
  });

  it("rejects an inconsistent manifest, naming the field", () => {
    const bad = structuredClone(manifest);
    bad.architecture.matryoshkaDims = [64, 128, 256];
    expect(() => parseManifest(bad)).toThrow(/last entry must equal outputDim \(384\)[\s\S]*at architecture\.matryoshkaDims/);
    const unlisted = structuredClone(manifest);
    delete unlisted.files["int8/step.onnx"];
    expect(() => parseManifest(unlisted)).toThrow(/"int8\/step\.onnx" is not listed in files[\s\S]*at variants\.int8\.step/);
    expect(() => parseManifest("{ not json")).toThrow(/not valid JSON/);
    expect(() => parseManifest({ ...manifest, format: "other/1" })).toThrow(/format/);
  });

  it("verifies sizes and sha256 of every file", async () => {
    await expect(verifyArtifactFiles(manifest, files)).resolves.toBeUndefined();
    expect(await sha256Hex(files["tokenizer.json"]!)).toBe(manifest.files["tokenizer.json"]!.sha256);
  });

  it("names the file whose bytes or length differ, or that is missing or unlisted", async () => {
    const flipped = files["int8/step.onnx"]!.slice();
    flipped[flipped.length - 1]! ^= 0xff;
    await expect(verifyArtifactFiles(manifest, { ...files, "int8/step.onnx": flipped })).rejects.toThrow(
      /"int8\/step\.onnx" has sha256 [0-9a-f]{64}, the manifest says/,
    );
    await expect(verifyArtifactFiles(manifest, { ...files, "fp32/embed.onnx": files["fp32/embed.onnx"]!.slice(1) })).rejects.toThrow(
      /"fp32\/embed\.onnx" has \d+ bytes, the manifest says \d+/,
    );
    const { ["fp32/step.onnx"]: _dropped, ...withoutOne } = files;
    await expect(verifyArtifactFiles(manifest, withoutOne)).rejects.toThrow(/"fp32\/step\.onnx" is missing/);
    await expect(verifyArtifactFiles(manifest, { ...files, "extra.bin": new Uint8Array(1) })).rejects.toThrow(/"extra\.bin" is not listed/);
  });

  it("verifies only a variant's files when asked", async () => {
    const paths = variantFiles(manifest, "int8");
    const subset = Object.fromEntries(paths.map((p) => [p, files[p]!]));
    await expect(verifyArtifactFiles(manifest, subset, { paths })).resolves.toBeUndefined();
  });
});

describe("rule router", () => {
  const rule = { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 } as const;
  const depths = { easy: 1, medium: 3, hard: 6 };

  it("routes by token count with inclusive upper bounds", () => {
    expect([0, 8, 9, 32, 33, 500].map((n) => routeByTokenCount(n, rule))).toEqual(["easy", "easy", "medium", "medium", "hard", "hard"]);
    expect(depthForRoute("medium", depths)).toBe(3);
    expect(hardestRoute("easy", "medium")).toBe("medium");
    expect(hardestRoute("hard", "easy")).toBe("hard");
    expect(() => routeByTokenCount(-1, rule)).toThrow(RangeError);
  });
});

describe("TaesrEncoder", () => {
  it("returns one unit-length vector per text, at the default 384 dims", async () => {
    const r = await fp32.embed(["how fast is the edge model", "vector search", "a"]);
    expect(r.embeddings).toHaveLength(3);
    for (const e of r.embeddings) {
      expect(e).toBeInstanceOf(Float32Array);
      expect(e).toHaveLength(384);
      expect(norm(e)).toBeCloseTo(1, 5);
    }
    expect(r.timings.tokenizeMs).toBeGreaterThanOrEqual(0);
    expect(r.timings.inferenceMs).toBeGreaterThan(0);
  });

  it("returns Matryoshka prefixes equal to the renormalised prefix of the 384-d embedding", async () => {
    const texts = ["how fast is the edge model", "query"];
    const full = await int8.embed(texts, { depth: 3 });
    for (const dims of [64, 128, 256] as const) {
      const r = await int8.embed(texts, { depth: 3, dims });
      r.embeddings.forEach((e, i) => {
        const prefix = full.embeddings[i]!.slice(0, dims);
        const scale = 1 / norm(prefix);
        expect(e).toHaveLength(dims);
        e.forEach((v, j) => expect(v).toBeCloseTo(prefix[j]! * scale, 6));
      });
    }
  });

  it("runs exactly the requested fixed depth, each depth giving a different embedding", async () => {
    const results = await Promise.all([1, 3, 6].map((depth) => fp32.embed(["how fast is the edge model"], { depth, earlyExit: false })));
    results.forEach((r, i) => {
      expect(r.depth).toBe([1, 3, 6][i]);
      expect(r.requestedDepth).toBe([1, 3, 6][i]);
      expect(r.route).toBe("fixed");
      expect(r.earlyExit).toBe(false);
    });
    expect(cosine(results[0]!.embeddings[0]!, results[2]!.embeddings[0]!)).toBeLessThan(0.999999);
  });

  it("matches a plain-JS forward pass of spec.ts (fp32, depths 1, 3 and 6)", async () => {
    const weights = initWeights(manifest.architecture, SEED);
    const text = "how fast is the edge model";
    const ids = tokenizer.encode(text, { maxLength: manifest.architecture.maxLength });
    for (const depth of [1, 3, 6]) {
      const expected = referenceEmbedding(manifest.architecture, weights, ids, depth);
      const { embeddings } = await fp32.embed([text], { depth, earlyExit: false });
      expect(cosine(embeddings[0]!, expected)).toBeGreaterThan(0.99999);
    }
  });

  it("is unaffected by padding (fp32: exact up to float noise; int8: batch-wide activation scale, close)", async () => {
    const short = "vector search";
    const long = textOfTokens(20);
    for (const [encoder, minCos] of [[fp32, 0.99999], [int8, 0.999]] as const) {
      const alone = await encoder.embed([short], { depth: 3 });
      const padded = await encoder.embed([short, long], { depth: 3 });
      expect(cosine(alone.embeddings[0]!, padded.embeddings[0]!)).toBeGreaterThan(minCos);
    }
  });

  it("agrees between int8 and fp32", async () => {
    const texts = ["how fast is the edge model", "vector search query", textOfTokens(30)];
    const [a, b] = await Promise.all([fp32.embed(texts, { depth: 3 }), int8.embed(texts, { depth: 3 })]);
    a.embeddings.forEach((e, i) => expect(cosine(e, b.embeddings[i]!)).toBeGreaterThan(0.999));
  });

  it("exits early at step 2 once the epsilon is large enough, and not when disabled", async () => {
    const loose = await TaesrEncoder.create({ ort: ortNode, manifest: { ...manifest, earlyExitEpsilon: 10 }, files, variant: "int8", tokenizer });
    const stopped = await loose.embed(["how fast is the edge model"], { depth: 6 });
    expect(stopped).toMatchObject({ depth: 2, requestedDepth: 6, earlyExit: true });
    const atTwo = await loose.embed(["how fast is the edge model"], { depth: 2, earlyExit: false });
    expect(cosine(stopped.embeddings[0]!, atTwo.embeddings[0]!)).toBeCloseTo(1, 6);
    // token vectors come from the last step actually run
    const stoppedTokens = await loose.embed(["how fast is the edge model"], { depth: 6, tokenVectors: true });
    const atTwoTokens = await loose.embed(["how fast is the edge model"], { depth: 2, earlyExit: false, tokenVectors: true });
    expect(stoppedTokens.depth).toBe(2);
    expect(Array.from(stoppedTokens.tokenVectors![0]!.data)).toEqual(Array.from(atTwoTokens.tokenVectors![0]!.data));
    const full = await loose.embed(["how fast is the edge model"], { depth: 6, earlyExit: false });
    expect(full).toMatchObject({ depth: 6, earlyExit: false });
    // depth 1 has nothing to compare with, so early exit cannot shorten it
    expect(await loose.embed(["query"], { depth: 1 })).toMatchObject({ depth: 1, earlyExit: false });
    await loose.release();
  });

  it("routes by length with depth 'auto', the batch taking its hardest route", async () => {
    const cases: Array<[number, string, number]> = [[1, "easy", 1], [8, "easy", 1], [9, "medium", 3], [32, "medium", 3], [33, "hard", 6]];
    for (const [tokens, route, depth] of cases) {
      expect(tokenizer.encode(textOfTokens(tokens)).length).toBe(tokens);
      const r = await int8.embed([textOfTokens(tokens)], { earlyExit: false });
      expect(r, `${tokens} tokens`).toMatchObject({ route, requestedDepth: depth, depth });
    }
    const mixed = await int8.embed([textOfTokens(3), textOfTokens(12)], { earlyExit: false });
    expect(mixed).toMatchObject({ route: "medium", depth: 3 });
  });

  it("embeds texts with no tokens as a single [UNK]", async () => {
    const unknownOnly = "漢"; // a CJK character is its own word and is not in the fixture vocabulary
    expect(tokenizer.encode(unknownOnly)).toEqual([tokenizer.unkId]);
    expect(tokenizer.encode("   ")).toEqual([]);
    const r = await fp32.embed(["", "   ", unknownOnly, "query"], { depth: 3 });
    expect(r.route).toBe("fixed");
    for (const e of r.embeddings) expect(norm(e)).toBeCloseTo(1, 5);
    expect(cosine(r.embeddings[0]!, r.embeddings[2]!)).toBeCloseTo(1, 6);
    expect(cosine(r.embeddings[1]!, r.embeddings[2]!)).toBeCloseTo(1, 6);
    const alone = await fp32.embed([""]);
    expect(alone).toMatchObject({ route: "easy", depth: 1 });
  });

  it("gives the same results when calls overlap (they are serialised)", async () => {
    const texts = ["how fast", "vector search query", textOfTokens(12)];
    const sequential: Float32Array[] = [];
    for (const t of texts) sequential.push((await int8.embed([t], { depth: 3 })).embeddings[0]!);
    const concurrent = await Promise.all(texts.map((t) => int8.embed([t], { depth: 3 })));
    concurrent.forEach((r, i) => expect(Array.from(r.embeddings[0]!)).toEqual(Array.from(sequential[i]!)));
  });

  it("rejects bad options with clear errors", async () => {
    await expect(int8.embed([])).rejects.toThrow(/non-empty array of texts/);
    await expect(int8.embed([42 as unknown as string])).rejects.toThrow(/texts\[0\] must be a string/);
    await expect(int8.embed(["q"], { dims: 100 })).rejects.toThrow(/dims must be one of 64, 128, 256, 384/);
    await expect(int8.embed(["q"], { depth: 0 })).rejects.toThrow(/depth must be "auto" or an integer from 1 to 6/);
    await expect(int8.embed(["q"], { depth: 7 })).rejects.toThrow(/from 1 to 6, got 7/);
    await expect(int8.embed(["q"], { depth: 2.5 })).rejects.toThrow(/got 2\.5/);
    await expect(int8.embed(["q"], { depth: "deep" as unknown as "auto" })).rejects.toThrow(/got deep/);
    await expect(int8.embed(["q"], { earlyExit: "no" as unknown as boolean })).rejects.toThrow(/earlyExit must be a boolean/);
    await expect(int8.embed(["q"], { tokenVectors: 1 as unknown as boolean })).rejects.toThrow(/tokenVectors must be a boolean, got number/);
    // a rejected call does not poison later ones
    await expect(int8.embed(["q"])).resolves.toMatchObject({ depth: 1 });
  });

  it("refuses artifacts that fail verification or break the graph contract", async () => {
    const tampered = files["int8/embed.onnx"]!.slice();
    tampered[100]! ^= 1;
    await expect(
      TaesrEncoder.create({ ort: ortNode, manifest, files: { ...files, "int8/embed.onnx": tampered }, variant: "int8", tokenizer }),
    ).rejects.toThrow(/"int8\/embed\.onnx" has sha256/);
    const swapped = { ...manifest, variants: { ...manifest.variants, int8: { embed: "int8/step.onnx", step: "int8/embed.onnx" } } };
    await expect(TaesrEncoder.create({ ort: ortNode, manifest: swapped, files, variant: "int8", tokenizer })).rejects.toThrow(
      /int8\/step\.onnx does not match the embed graph contract/,
    );
    await expect(
      TaesrEncoder.create({ ort: ortNode, manifest, files, variant: "fp16" as unknown as "int8", tokenizer }),
    ).rejects.toThrow(/variant must be one of "fp32", "int8", "int4", "int8w", got "fp16"/);
    const garbage = new Uint8Array([1, 2, 3, 4]);
    const garbageManifest = structuredClone(manifest);
    garbageManifest.files["int8/step.onnx"] = { sha256: await sha256Hex(garbage), bytes: garbage.byteLength };
    await expect(
      TaesrEncoder.create({ ort: ortNode, manifest: garbageManifest, files: { ...files, "int8/step.onnx": garbage }, variant: "int8", tokenizer }),
    ).rejects.toThrow(/cannot load "int8\/step\.onnx": /);
    const { ["int8/step.onnx"]: _gone, ...missing } = files;
    await expect(TaesrEncoder.create({ ort: ortNode, manifest, files: missing, variant: "int8", tokenizer })).rejects.toThrow(
      /"int8\/step\.onnx" is missing/,
    );
  });
});

describe("token vectors", () => {
  /** Rows of a token matrix as plain arrays. */
  const rows = (m: { count: number; dims: number; data: Float32Array }): number[][] =>
    Array.from({ length: m.count }, (_, t) => Array.from(m.data.subarray(t * m.dims, (t + 1) * m.dims)));

  it("are off by default and cost nothing then", async () => {
    expect(await fp32.embed(["vector search"], { depth: 1 })).not.toHaveProperty("tokenVectors");
    expect(await fp32.embed(["vector search"], { depth: 1, tokenVectors: false })).not.toHaveProperty("tokenVectors");
  });

  it("give one centred unit-length row of H components per real token, [UNK] counting as one", async () => {
    const texts = ["how fast is the edge model", "vector search", "", textOfTokens(20)];
    for (const encoder of [fp32, int8]) {
      const r = await encoder.embed(texts, { depth: 3, tokenVectors: true });
      expect(r.tokenVectors).toHaveLength(texts.length);
      r.tokenVectors!.forEach((m, i) => {
        const count = Math.max(tokenizer.encode(texts[i]!).length, 1);
        expect(m).toMatchObject({ count, dims: manifest.architecture.hidden });
        expect(m.data).toBeInstanceOf(Float32Array);
        expect(m.data).toHaveLength(count * manifest.architecture.hidden);
        for (const row of rows(m)) {
          expect(Math.hypot(...row)).toBeCloseTo(1, 5);
          expect(row.reduce((s, v) => s + v, 0) / row.length).toBeCloseTo(0, 6);
        }
      });
      expect(r.tokenVectors!.map((m) => m.count)).toEqual([6, 2, 1, 20]);
      // they are retrieval's TokenMatrix as they are: unit rows, so a text's MaxSim with itself is its token count
      expect(maxSim(r.tokenVectors![0]!, r.tokenVectors![0]!)).toBeCloseTo(6, 4);
    }
  });

  it("are the centred, normalised last hidden states of a plain-JS forward pass (fp32)", async () => {
    const weights = initWeights(manifest.architecture, SEED);
    const text = "how fast is the edge model";
    const ids = tokenizer.encode(text, { maxLength: manifest.architecture.maxLength });
    for (const depth of [1, 3]) {
      const { hidden } = referenceForward(manifest.architecture, weights, ids, depth);
      const { tokenVectors } = await fp32.embed([text], { depth, earlyExit: false, tokenVectors: true });
      rows(tokenVectors![0]!).forEach((row, t) => {
        const mean = hidden[t]!.reduce((s, v) => s + v, 0) / hidden[t]!.length;
        const centred = hidden[t]!.map((v) => v - mean);
        const length = Math.hypot(...centred);
        row.forEach((v, i) => expect(v).toBeCloseTo(centred[i]! / length, 4));
      });
    }
  });

  it("are unaffected by padding at a fixed depth (fp32, within 1e-5)", async () => {
    const short = "vector search";
    const alone = await fp32.embed([short], { depth: 3, earlyExit: false, tokenVectors: true });
    const padded = await fp32.embed([textOfTokens(20), short], { depth: 3, earlyExit: false, tokenVectors: true });
    const a = alone.tokenVectors![0]!;
    const b = padded.tokenVectors![1]!;
    expect(b.count).toBe(a.count);
    a.data.forEach((v, i) => expect(Math.abs(v - b.data[i]!)).toBeLessThan(1e-5));
  });

  it("centre and normalise each real token row, dropping padding; a constant row stays zero", () => {
    // two batch rows padded to length 2, H = 3: row 0 has tokens [1,2,3] and [9,9,9]; row 1 has [0,0,4] then padding
    const hidden = Float32Array.from([1, 2, 3, 9, 9, 9, 0, 0, 4, 7, 7, 1]);
    const [first, second] = centredTokenRows(hidden, 2, 3, [2, 1]);
    const r2 = Math.SQRT1_2;
    expect(first!.count).toBe(2);
    Array.from(first!.data).forEach((v, i) => expect(v).toBeCloseTo([-r2, 0, r2, 0, 0, 0][i]!, 6));
    // [0,0,4] − 4/3 = [−4/3, −4/3, 8/3], length (4/3)·√6
    expect(second!.count).toBe(1);
    Array.from(second!.data).forEach((v, i) => expect(v).toBeCloseTo([-1, -1, 2][i]! / Math.sqrt(6), 6));
    expect(() => centredTokenRows(hidden, 2, 3, [3, 1])).toThrow(/row 0 has 3 tokens/);
    expect(() => centredTokenRows(hidden, 2, 4, [2, 1])).toThrow(/hidden states have 12 values/);
  });
});

/** spec.ts forward pass (see {@link referenceForward}): e_depth only. */
function referenceEmbedding(arch: TaesrArchitecture, w: Record<WeightName, Float32Array>, ids: number[], depth: number): Float32Array {
  return referenceForward(arch, w, ids, depth).embedding;
}

/**
 * spec.ts forward pass for one unpadded sequence, in float64, straight from the formulas: returns e_depth and h_depth [T,H].
 * Row-major matrices [in, out] with y = xW + b.
 */
function referenceForward(
  arch: TaesrArchitecture,
  w: Record<WeightName, Float32Array>,
  ids: number[],
  depth: number,
): { embedding: Float32Array; hidden: number[][] } {
  const { hidden: H, heads, ffn: F, outputDim: D } = arch;
  const T = ids.length;
  const dh = H / heads;
  const dense = (x: number[][], W: Float32Array, b: Float32Array, inDim: number, outDim: number): number[][] =>
    x.map((row) => Array.from({ length: outDim }, (_, j) => row.reduce((s, v, i) => s + v * W[i * outDim + j]!, b[j]!)));
  const ln = (x: number[][], g: Float32Array, b: Float32Array): number[][] =>
    x.map((row) => {
      const mean = row.reduce((s, v) => s + v, 0) / row.length;
      const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
      return row.map((v, i) => ((v - mean) / Math.sqrt(variance + LAYER_NORM_EPS)) * g[i]! + b[i]!);
    });
  const add = (a: number[][], b: number[][]): number[][] => a.map((row, t) => row.map((v, i) => v + b[t]![i]!));
  const gelu = (z: number): number => 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));

  const x = ids.map((id, t) => Array.from({ length: H }, (_, i) => w["embed.token"][id * H + i]! + w["embed.position"][t * H + i]!));
  let h = x.map(() => new Array<number>(H).fill(0));
  for (let step = 0; step < depth; step++) {
    const u = add(h, x);
    const n1 = ln(u, w["block.ln1.gamma"], w["block.ln1.beta"]);
    const q = dense(n1, w["block.attn.wq"], w["block.attn.bq"], H, H);
    const k = dense(n1, w["block.attn.wk"], w["block.attn.bk"], H, H);
    const v = dense(n1, w["block.attn.wv"], w["block.attn.bv"], H, H);
    const ctx = x.map(() => new Array<number>(H).fill(0));
    for (let head = 0; head < heads; head++) {
      const o = head * dh;
      for (let i = 0; i < T; i++) {
        // A single unpadded sequence: no key is masked, so spec.ts's −1e9 mask bias never applies here.
        const scores = Array.from({ length: T }, (_, j) => {
          let s = 0;
          for (let d = 0; d < dh; d++) s += q[i]![o + d]! * k[j]![o + d]!;
          return s / Math.sqrt(dh);
        });
        const max = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - max));
        const sum = exps.reduce((s, e) => s + e, 0);
        for (let j = 0; j < T; j++) for (let d = 0; d < dh; d++) ctx[i]![o + d]! += (exps[j]! / sum) * v[j]![o + d]!;
      }
    }
    const a = dense(ctx, w["block.attn.wo"], w["block.attn.bo"], H, H);
    const vres = add(u, a);
    const n2 = ln(vres, w["block.ln2.gamma"], w["block.ln2.beta"]);
    const m = dense(dense(n2, w["block.ffn.w1"], w["block.ffn.b1"], H, F).map((r) => r.map(gelu)), w["block.ffn.w2"], w["block.ffn.b2"], F, H);
    h = add(add(h, a), m);
  }
  const out = ln(h, w["out.ln.gamma"], w["out.ln.beta"]);
  const pooled = [Array.from({ length: H }, (_, i) => out.reduce((s, row) => s + row[i]!, 0) / Math.max(T, 1))];
  return { embedding: Float32Array.from(dense(pooled, w["out.proj.w"], w["out.proj.b"], H, D)[0]!), hidden: h };
}

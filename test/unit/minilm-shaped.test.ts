/**
 * The all-MiniLM-L6-v2-shaped speed peer (bench/peers/minilm-shaped.ts): its parameter count against the real
 * checkpoint's, and a test-sized graph of the same construction in a real onnxruntime-node session — output shape,
 * padding that changes nothing (the mask works), int8 close to fp32 — plus its token-id stand-ins and the graph cache.
 */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MINILM_L6_SHAPE,
  MINILM_L6_V2_PARAMETERS,
  bertParameterCount,
  buildMinilmShapedGraph,
  ensureMinilmShapedGraphs,
  initBertWeights,
  type BertShape,
} from "../../bench/peers/minilm-shaped.js";
import {
  MinilmShapedRunner,
  PEER_CLS_ID,
  PEER_MAX_SEQ_LENGTH,
  PEER_SEP_ID,
  peerTokenCount,
  peerTokenIds,
} from "../../bench/peers/minilm-shaped-runner.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

const SMALL: BertShape = { vocabSize: 128, hidden: 32, layers: 2, heads: 4, ffn: 64, maxPositions: 64, typeVocabSize: 2 };
const noTokenizer = { encode: () => [] };

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}

describe("parameter count", () => {
  it("is all-MiniLM-L6-v2's 22,713,216 for the real shape", () => {
    const { vocabSize: V, hidden: H, layers, ffn: F, maxPositions: P, typeVocabSize: TV } = MINILM_L6_SHAPE;
    // Written out independently of bertWeightShapes: embeddings (+ LayerNorm), per layer Q/K/V/O, 2 LayerNorms and
    // the FFN, then the pooler.
    const embeddings = V * H + P * H + TV * H + 2 * H;
    const perLayer = 4 * (H * H + H) + 2 * H + (H * F + F) + (F * H + H) + 2 * H;
    const pooler = H * H + H;
    expect(embeddings + layers * perLayer + pooler).toBe(22_713_216);
    expect(bertParameterCount(MINILM_L6_SHAPE)).toEqual({ total: MINILM_L6_V2_PARAMETERS, inGraph: MINILM_L6_V2_PARAMETERS - pooler });
    expect(MINILM_L6_V2_PARAMETERS).toBe(22_713_216);
  });

  it("matches the tensors initBertWeights draws", () => {
    const weights = initBertWeights(SMALL, 3);
    const total = [...weights.values()].reduce((sum, w) => sum + w.data.length, 0);
    expect(total).toBe(bertParameterCount(SMALL).total);
    // Deterministic from the seed, and BERT-like: N(0, 0.02²) matrices, γ 1, β and biases 0.
    const ffn = "encoder.layer.1.intermediate.dense.weight";
    expect(initBertWeights(SMALL, 3).get(ffn)!.data).toEqual(weights.get(ffn)!.data);
    const table = weights.get("embeddings.word_embeddings")!.data;
    const std = Math.sqrt(table.reduce((sum, v) => sum + v * v, 0) / table.length);
    expect(std).toBeGreaterThan(0.017);
    expect(std).toBeLessThan(0.023);
    expect(weights.get("encoder.layer.0.output.LayerNorm.gamma")!.data.every((v) => v === 1)).toBe(true);
    expect(weights.get("encoder.layer.0.attention.self.query.bias")!.data.every((v) => v === 0)).toBe(true);
  });
});

describe("test-sized graph in onnxruntime-node", () => {
  let fp32: MinilmShapedRunner;
  let int8: MinilmShapedRunner;
  const rows = [
    [101, 7, 42, 99, 3, 120, 102],
    [101, 55, 102],
    [101, 12, 13, 14, 15, 16, 17, 18, 19, 102],
  ];

  beforeAll(async () => {
    const weights = initBertWeights(SMALL, 11);
    const { vocabSize, hidden } = SMALL;
    const make = (variant: "fp32" | "int8") =>
      MinilmShapedRunner.create({ ort: ortNode, model: buildMinilmShapedGraph(SMALL, weights, variant), tokenizer: noTokenizer, vocabSize, hidden });
    [fp32, int8] = await Promise.all([make("fp32"), make("int8")]);
  });

  afterAll(async () => {
    await Promise.all([fp32?.release(), int8?.release()]);
  });

  it("embeds a batch to [batch, hidden], finite and unit length after normalising", async () => {
    const out = await fp32.embedIds(rows);
    expect(out).toHaveLength(rows.length);
    for (const v of out) {
      expect(v).toHaveLength(SMALL.hidden);
      expect(v.every(Number.isFinite)).toBe(true);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
    // Different inputs, different embeddings.
    expect(cosine(out[0]!, out[1]!)).toBeLessThan(0.9999);
  });

  it("ignores padding: a row alone and padded in a batch embed the same", async () => {
    const [alone] = await fp32.embedIds([rows[1]!]);
    const [, padded] = await fp32.embedIds(rows); // padded from 3 to 10 positions
    for (let i = 0; i < SMALL.hidden; i++) expect(padded![i]!).toBeCloseTo(alone![i]!, 5);
    // The same [PAD] ids fed as real tokens (mask 1) do change it: the test would notice a mask that did nothing.
    const [unmasked] = await fp32.embedIds([[...rows[1]!, 0, 0, 0, 0, 0, 0, 0]]);
    expect(cosine(unmasked!, alone!)).toBeLessThan(0.999);
  });

  it("int8 agrees with fp32 (cosine > 0.99 per row)", async () => {
    const [a, b] = await Promise.all([fp32.embedIds(rows), int8.embedIds(rows)]);
    rows.forEach((_, r) => expect(cosine(a[r]!, b[r]!)).toBeGreaterThan(0.99));
    // int8's padding invariance holds up to the per-tensor activation scale that padding rows can shift.
    const [alone] = await int8.embedIds([rows[1]!]);
    expect(cosine(alone!, b[1]!)).toBeGreaterThan(0.99);
  });
});

describe("peer token ids", () => {
  it("are [CLS] ordinary… [SEP], deterministic per text, inside the vocabulary", () => {
    const ids = peerTokenIds("why do volcanoes erupt", 6);
    expect(ids).toHaveLength(6);
    expect(ids[0]).toBe(PEER_CLS_ID);
    expect(ids[5]).toBe(PEER_SEP_ID);
    expect(ids.slice(1, 5).every((id) => id >= 999 && id < MINILM_L6_SHAPE.vocabSize)).toBe(true);
    expect(peerTokenIds("why do volcanoes erupt", 6)).toEqual(ids);
    expect(peerTokenIds("tide pool animals", 6)).not.toEqual(ids);
  });

  it("count our pieces + 2, capped at MiniLM's 256", () => {
    const pieces = (n: number) => ({
      encode: (_text: string, { maxLength }: { maxLength: number }) => Array.from({ length: Math.min(n, maxLength) }, () => 5),
    });
    expect(peerTokenCount("x", pieces(4))).toBe(6);
    expect(peerTokenCount("x", pieces(1000))).toBe(PEER_MAX_SEQ_LENGTH);
  });
});

describe("graph cache", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "taesr-minilm-shaped-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("builds both variants once, smoke-tests them, and reuses them while the key matches", async () => {
    const first = await ensureMinilmShapedGraphs({ dir, shape: SMALL, seed: 5 });
    expect(first.parameters.total).toBe(bertParameterCount(SMALL).total);
    const mtime = (await stat(first.paths.fp32)).mtimeMs;
    expect((await stat(first.paths.int8)).size).toBe(first.bytes.int8);
    expect(first.bytes.int8).toBeLessThan(first.bytes.fp32);
    const again = await ensureMinilmShapedGraphs({ dir, shape: SMALL, seed: 5 });
    expect(again.paths).toEqual(first.paths);
    expect((await stat(again.paths.fp32)).mtimeMs).toBe(mtime);
    const reseeded = await ensureMinilmShapedGraphs({ dir, shape: SMALL, seed: 6 });
    expect(reseeded.key).not.toBe(first.key);
  });
});

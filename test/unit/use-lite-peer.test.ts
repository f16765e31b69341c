/**
 * The USE-Lite quality peer with the real model from node_modules (loaded offline, ~1 s) and its on-disk embedding
 * cache: vector shape and length, a semantic sanity check, batching that preserves input order across workers, and a
 * cache that serves hits without the model and recomputes damaged or mismatched entries.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { cachedEmbed } from "../../bench/peers/embedding-cache.js";
import type { PeerTextEncoder } from "../../bench/peers/types.js";
import { createUseLitePeer } from "../../bench/peers/use-lite.js";

const TEXTS = [
  "How do I reset my password?",
  "What are the steps to change my login password?",
  "Monarch butterflies migrate thousands of kilometres every autumn.",
];

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

/** The peer, counting the texts it is asked to embed, so a test can tell a cache hit from a recomputation. */
function counting(peer: PeerTextEncoder): PeerTextEncoder & { texts: number } {
  const wrapper = {
    name: peer.name,
    dims: peer.dims,
    texts: 0,
    embed(texts: readonly string[]) {
      wrapper.texts += texts.length;
      return peer.embed(texts);
    },
    release: () => peer.release(),
  };
  return wrapper;
}

let peer: PeerTextEncoder;
let cacheDir: string;

beforeAll(async () => {
  // Two workers and batches of two, so the three texts are split across workers and must come back in order.
  peer = await createUseLitePeer({ workers: 2, batchSize: 2 });
  cacheDir = await mkdtemp(path.join(tmpdir(), "use-lite-cache-"));
}, 60_000);

afterAll(async () => {
  await peer?.release();
  if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
});

describe("USE-Lite peer", () => {
  it("names the package, version and backend", () => {
    expect(peer.name).toMatch(/@energetic-ai\/model-embeddings-en \d+\.\d+\.\d+/);
    expect(peer.name).toMatch(/wasm/);
    expect(peer.dims).toBe(512);
  });

  it("embeds into unit-length 512-d vectors where a paraphrase is closer than an unrelated sentence", async () => {
    const [question, paraphrase, unrelated] = await peer.embed(TEXTS);
    for (const vector of [question!, paraphrase!, unrelated!]) {
      expect(vector).toHaveLength(512);
      expect(Math.sqrt(dot(vector, vector))).toBeCloseTo(1, 5);
    }
    expect(dot(question!, paraphrase!)).toBeGreaterThan(dot(question!, unrelated!) + 0.2);
  });

  it("returns the same vector for a text whether batched or alone, in input order", async () => {
    const batched = await peer.embed(TEXTS);
    const alone = await Promise.all(TEXTS.map(async (text) => (await peer.embed([text]))[0]!));
    batched.forEach((vector, index) => expect(dot(vector, alone[index]!)).toBeCloseTo(1, 5));
  });

  it("refuses an empty text instead of misaligning the batch", async () => {
    await expect(peer.embed(["fine", " \n "])).rejects.toThrow(/empty text \(input 1\)/);
    expect(await peer.embed([])).toEqual([]);
  });
});

describe("embedding cache", () => {
  it("serves a second call from disk without calling the model", async () => {
    const model = counting(peer);
    const first = await cachedEmbed(model, TEXTS, "unit", cacheDir);
    expect(first.fromCache).toBe(false);
    expect(model.texts).toBe(3);
    const second = await cachedEmbed(model, TEXTS, "unit", cacheDir);
    expect(second.fromCache).toBe(true);
    expect(model.texts).toBe(3);
    expect(second.vectors.map((vector) => Array.from(vector))).toEqual(first.vectors.map((vector) => Array.from(vector)));
    expect(second.embedSeconds).toBe(first.embedSeconds);
    // Other texts (or another model) make another key, hence another entry: never a stale hit.
    const other = await cachedEmbed(model, TEXTS.slice(0, 2), "unit", cacheDir);
    expect(other.fromCache).toBe(false);
    expect(other.file).not.toBe(first.file);
  });

  it("recomputes and rewrites an entry whose binary or sidecar is damaged", async () => {
    const warnings = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      const model = counting(peer);
      const original = await cachedEmbed(model, TEXTS, "damaged", cacheDir);
      const sidecarFile = original.file.replace(/\.f32$/, ".json");
      const expected = original.vectors.map((vector) => Array.from(vector));

      const bytes = await readFile(original.file);
      bytes[100]! ^= 0xff; // same length, different content: only the checksum can tell
      await writeFile(original.file, bytes);
      const afterFlip = await cachedEmbed(model, TEXTS, "damaged", cacheDir);
      expect(afterFlip.fromCache).toBe(false);
      expect(afterFlip.vectors.map((vector) => Array.from(vector))).toEqual(expected);

      await writeFile(original.file, (await readFile(original.file)).subarray(0, 512 * 4)); // truncated
      expect((await cachedEmbed(model, TEXTS, "damaged", cacheDir)).fromCache).toBe(false);

      const sidecar = JSON.parse(await readFile(sidecarFile, "utf8")) as { dims: number };
      await writeFile(sidecarFile, JSON.stringify({ ...sidecar, dims: 256 }));
      expect((await cachedEmbed(model, TEXTS, "damaged", cacheDir)).fromCache).toBe(false);

      await writeFile(sidecarFile, "{ not json");
      expect((await cachedEmbed(model, TEXTS, "damaged", cacheDir)).fromCache).toBe(false);

      expect(model.texts).toBe(5 * 3);
      expect(warnings).toHaveBeenCalledTimes(4);
      // Each recomputation rewrote the entry, so the next call is a clean hit again.
      const repaired = await cachedEmbed(model, TEXTS, "damaged", cacheDir);
      expect(repaired.fromCache).toBe(true);
      expect(repaired.vectors.map((vector) => Array.from(vector))).toEqual(expected);
    } finally {
      warnings.mockRestore();
    }
  });
});

/**
 * The trained late-interaction head at run time: TaesrEncoder's token vectors come from the artifact's late.onnx when
 * it has the head (lateHead.dim components, equal to TAESRModel.tokenVectors on the same final state, padding and
 * batching changing nothing), from the hidden-state stand-in when it has not (hidden components), and are refused when
 * the manifest declares the head but its graph was not given. Real exporter, onnxruntime-node.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { TaesrEncoder, parseManifest, variantFiles, type ArtifactManifest } from "../../src/model/index.js";
import { maxSim } from "../../src/retrieval/late.js";
import { fixtureArchitecture, writeFixtureArtifact } from "../support/fixture-artifact.js";
import { readArtifactFiles, useFixtureEncoder } from "../support/fixture-encoder.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

const DIM = 16;
const FIXTURE = { name: "taesr-late", hidden: 32, vocabSize: 256, lateHead: { dim: DIM }, seed: 5 };
const ARCH = fixtureArchitecture(FIXTURE);

describe("TaesrEncoder token vectors from the late-interaction head", () => {
  const fixture = useFixtureEncoder(() => FIXTURE);

  it("uses late.onnx: one unit vector of lateHead.dim components per real token, equal to TAESRModel.tokenVectors", async () => {
    const { manifest, tokenizer, encoder, model } = fixture;
    expect(encoder.tokenVectorSource).toEqual({ kind: "late-head", dims: DIM });
    expect(variantFiles(manifest, "int8")).toContain("int8/late.onnx");
    const texts = ["how fast is the edge model", "vector search", ""];
    const r = await encoder.embed(texts, { depth: 3, earlyExit: false, tokenVectors: true });
    expect(r.tokenVectors).toHaveLength(3);
    for (const [i, text] of texts.entries()) {
      const ids = tokenizer.encode(text, { maxLength: ARCH.maxLength });
      const row = ids.length > 0 ? ids : [tokenizer.unkId];
      const expected = model.tokenVectors(model.forward({ inputIds: [row] }, { depth: 3, earlyExit: false }).lastHiddenState[0]!);
      const got = r.tokenVectors![i]!;
      expect(got.dims).toBe(DIM);
      expect(got.count).toBe(row.length);
      for (let k = 0; k < got.data.length; k++) expect(Math.abs(got.data[k]! - expected.data[k]!)).toBeLessThan(1e-4);
      for (let t = 0; t < got.count; t++) {
        let norm = 0;
        for (let j = 0; j < DIM; j++) norm += got.data[t * DIM + j]! ** 2;
        expect(Math.sqrt(norm)).toBeCloseTo(1, 4);
      }
    }
    // MaxSim of a text with itself is its token count (every token finds itself).
    expect(maxSim(r.tokenVectors![0]!, r.tokenVectors![0]!)).toBeCloseTo(r.tokenVectors![0]!.count, 4);
  });

  it("int8 runs its own late graph, close to fp32", async () => {
    const { manifest, files, tokenizer, encoder } = fixture;
    const int8 = await TaesrEncoder.create({ ort: ortNode, manifest, files, variant: "int8", tokenizer });
    try {
      const text = ["how fast is the edge model"];
      const a = (await encoder.embed(text, { depth: 3, earlyExit: false, tokenVectors: true })).tokenVectors![0]!;
      const b = (await int8.embed(text, { depth: 3, earlyExit: false, tokenVectors: true })).tokenVectors![0]!;
      expect(b.dims).toBe(DIM);
      expect(maxSim(a, b) / a.count).toBeGreaterThan(0.95);
    } finally {
      await int8.release();
    }
  });

  it("refuses token vectors when the head's graph was not given, and still embeds densely", async () => {
    const { manifest, files, tokenizer } = fixture;
    const { ["fp32/late.onnx"]: _, ...withoutLate } = files;
    const e = await TaesrEncoder.create({ ort: ortNode, manifest, files: withoutLate, variant: "fp32", tokenizer });
    try {
      expect((await e.embed(["vector search"])).embeddings).toHaveLength(1);
      await expect(e.embed(["x"], { tokenVectors: true })).rejects.toThrow(/late-interaction head, whose graph \("fp32\/late\.onnx"\) was not given/);
    } finally {
      await e.release();
    }
  });

  it("an artifact without the head falls back to the hidden-state stand-in (hidden components)", async () => {
    const { tokenizer } = fixture;
    const plainDir = await mkdtemp(path.join(tmpdir(), "taesr-plain-"));
    try {
      const plain = await writeFixtureArtifact({ outDir: plainDir, hidden: 32, vocabSize: 256 });
      expect(plain.manifest.variants.fp32.late).toBeUndefined();
      expect("lateHead" in plain.manifest.architecture).toBe(false);
      const e = await TaesrEncoder.create({ ort: ortNode, manifest: plain.manifest, files: await readArtifactFiles(plain.dir, plain.manifest), variant: "int8", tokenizer });
      expect(e.tokenVectorSource).toEqual({ kind: "hidden-state", dims: 32 });
      const r = await e.embed(["vector search"], { tokenVectors: true });
      expect(r.tokenVectors![0]!.dims).toBe(32);
      await e.release();
    } finally {
      await rm(plainDir, { recursive: true, force: true });
    }
  });

  it("the manifest: late graphs listed iff architecture.lateHead", () => {
    const { manifest } = fixture;
    const noGraph = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete noGraph.variants.fp32.late;
    expect(() => parseManifest(noGraph)).toThrow(/late-interaction head but the variant lists no late graph[\s\S]*variants\.fp32\.late/);
    const noHead = JSON.parse(JSON.stringify(manifest)) as ArtifactManifest;
    delete noHead.architecture.lateHead;
    expect(() => parseManifest(noHead)).toThrow(/a late graph without architecture\.lateHead/);
    expect(() => parseManifest({ ...manifest, architecture: { ...manifest.architecture, lateHead: { dim: 16, bias: true } } })).toThrow(/bias/);
  });
});

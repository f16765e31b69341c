/**
 * The int4 variant's 4-bit token table (src/model/int4-table.ts, training/src/onnx/quantize.ts quantizeInt4Groups) and
 * its embed graph (training/src/onnx/taesr-graphs.ts): float16 conversion exact over all 65,536 bit patterns; the
 * quantiser's error bounded per value and never above plain max-abs scaling; the layout as documented; and the graph run
 * by onnxruntime-node and onnxruntime-web (wasm) equal, bit for bit, to the reference decoder plus the position table,
 * read back from the graph by onnx-weights; manifests with and without the variant.
 */
import * as ortNode from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseManifest, variantFiles, variantGraphs } from "../../src/model/manifest.js";
import { dequantizeInt4Table, float16ToFloat32, INT4_CENTRE, int4Code } from "../../src/model/int4-table.js";
import { initializerToFloat32, readOnnxInitializers, tokenTableFromEmbedGraph, weightsFromArtifactGraphs } from "../../src/model/onnx-weights.js";
import type { TaesrArchitecture } from "../../src/model/spec.js";
import { initWeights, mulberry32 } from "../../training/src/model/params.js";
import { float32ToFloat16Bits, quantizeInt4Groups } from "../../training/src/onnx/quantize.js";
import { buildEmbedGraph, buildStepGraph } from "../../training/src/onnx/taesr-graphs.js";

const ARCH: TaesrArchitecture = {
  vocabSize: 300,
  hidden: 64,
  heads: 4,
  ffn: 128,
  maxLength: 24,
  outputDim: 384,
  matryoshkaDims: [64, 128, 256, 384],
  depths: { easy: 1, medium: 3, hard: 6 },
};

/** Roughly normal values with a few outliers per row, like a trained embedding table. */
function table(rows: number, cols: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    const gaussian = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
    out[i] = 0.04 * gaussian * (rand() < 0.02 ? 4 : 1);
  }
  return out;
}

describe("float16 conversion", () => {
  it("round-trips every non-NaN float16 bit pattern exactly", () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = float16ToFloat32(bits);
      if (Number.isNaN(v)) continue;
      expect(float32ToFloat16Bits(v)).toBe(bits);
    }
  });

  it("rounds to nearest, ties to even, with subnormals, overflow and underflow", () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // halfway to 2^16 rounds to even = Infinity
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even mantissa
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even mantissa (up)
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie → even (zero)
    expect(float32ToFloat16Bits(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16Bits(2 ** -30)).toBe(0x0000);
    expect(float16ToFloat32(float32ToFloat16Bits(0.1))).toBeCloseTo(0.1, 4);
  });
});

describe("quantizeInt4Groups", () => {
  const rows = 200;
  const cols = 64;
  const w = table(rows, cols, 3);

  it("lays codes out as documented: value j in the low nibble of byte j, value j + cols/2 in its high nibble", () => {
    const q = quantizeInt4Groups(w, rows, cols, 32);
    expect(q.codes.length).toBe((rows * cols) / 2);
    expect(q.scales.length).toBe(rows * 2);
    const decoded = dequantizeInt4Table(q);
    for (const [r, c] of [
      [0, 0],
      [0, 31],
      [0, 32],
      [7, 63],
      [199, 40],
    ] as const) {
      const byte = q.codes[r * 32 + (c % 32)]!;
      const nibble = c < 32 ? byte & 15 : byte >> 4;
      expect(int4Code(q, r, c)).toBe(nibble);
      expect(decoded[r * cols + c]).toBe(Math.fround((nibble - INT4_CENTRE) * float16ToFloat32(q.scales[r * 2 + (c >= 32 ? 1 : 0)]!)));
    }
  });

  it("bounds the error: half a step inside the grid, the clipped excess outside it; no worse than max-abs scaling", () => {
    const relative: number[] = [];
    for (const groupSize of [64, 32, 16]) {
      const q = quantizeInt4Groups(w, rows, cols, groupSize);
      const decoded = dequantizeInt4Table(q);
      const groups = cols / groupSize;
      let error = 0;
      let signal = 0;
      for (let r = 0; r < rows; r++) {
        for (let g = 0; g < groups; g++) {
          const scale = float16ToFloat32(q.scales[r * groups + g]!);
          let groupError = 0;
          let maxAbs = 0;
          for (let i = 0; i < groupSize; i++) {
            const k = r * cols + g * groupSize + i;
            const v = w[k]!;
            const d = Math.abs(decoded[k]! - v);
            const outside = Math.max(0, Math.abs(v) - 7.5 * scale);
            expect(d).toBeLessThanOrEqual(scale / 2 + outside + 1e-9);
            groupError += d * d;
            maxAbs = Math.max(maxAbs, Math.abs(v));
            error += d * d;
            signal += v * v;
          }
          // The search includes α = 1 (plain max-abs scaling): its choice is never worse.
          const plain = float16ToFloat32(float32ToFloat16Bits(maxAbs / 7.5));
          let plainError = 0;
          for (let i = 0; i < groupSize; i++) {
            const v = w[r * cols + g * groupSize + i]!;
            const n = Math.max(0, Math.min(15, Math.round(v / plain + INT4_CENTRE)));
            plainError += ((n - INT4_CENTRE) * plain - v) ** 2;
          }
          expect(groupError).toBeLessThanOrEqual(plainError * (1 + 1e-9) + 1e-18);
        }
      }
      // 16 levels on this synthetic table (normal, 2 % of values 4× wider): relative RMS error 0.129 / 0.105 / 0.087 at
      // groups of 64 / 32 / 16 (the trained edge-small table: 0.084 at 32). A broken grid or scale is far above this.
      relative.push(Math.sqrt(error / signal));
    }
    expect(relative[0]).toBeLessThan(0.14);
    for (let i = 1; i < relative.length; i++) expect(relative[i]).toBeLessThan(relative[i - 1]!); // smaller groups, less error
  });

  it("decodes an all-zero group to (almost) zero and refuses shapes and values it cannot store", () => {
    const zeros = quantizeInt4Groups(new Float32Array(64), 1, 64, 32);
    for (const v of dequantizeInt4Table(zeros)) expect(Math.abs(v)).toBeLessThan(1e-6);
    expect(() => quantizeInt4Groups(new Float32Array(63), 1, 63, 21)).toThrow(/must be even/);
    expect(() => quantizeInt4Groups(new Float32Array(64), 1, 64, 24)).toThrow(/multiple of groupSize/);
    expect(() => quantizeInt4Groups(new Float32Array(10), 1, 64, 32)).toThrow(/10 values/);
    expect(() => quantizeInt4Groups(Float32Array.of(Number.NaN, ...new Float32Array(63)), 1, 64, 32)).toThrow(/non-finite value at row 0, column 0/);
    expect(() => dequantizeInt4Table({ ...zeros, scales: new Uint16Array(3) })).toThrow(/3 scales/);
  });
});

describe("the int4 embed graph", () => {
  const weights = initWeights(ARCH, 9);
  // Trained-looking values (initWeights' table is small and uniform): outliers make the group scales differ.
  weights["embed.token"].set(table(ARCH.vocabSize, ARCH.hidden, 5));
  const embed = buildEmbedGraph(ARCH, weights, "int4");
  const decoded = tokenTableFromEmbedGraph(embed, ARCH);
  const position = initializerToFloat32(readOnnxInitializers(embed).find((t) => t.name === "embed.position")!);

  it("stores 4-bit codes and float16 scales: under a third of the int8 graph's table bytes, a sixth of fp32's", () => {
    const byName = new Map(readOnnxInitializers(embed).map((t) => [t.name, t]));
    expect(byName.get("embed.token.int4")!.dims).toEqual([ARCH.vocabSize, ARCH.hidden / 2]);
    expect(byName.get("embed.token.int4.scale")!.dims).toEqual([ARCH.vocabSize, ARCH.hidden / 32, 1]);
    expect(byName.has("embed.token")).toBe(false);
    const fp32 = buildEmbedGraph(ARCH, weights, "fp32");
    const tableBytes = ARCH.vocabSize * ARCH.hidden;
    expect(fp32.byteLength - embed.byteLength).toBeGreaterThan(tableBytes * 4 - tableBytes / 2 - (tableBytes / 32) * 2 - 1000);
  });

  it("onnx-weights decodes the table within the quantiser's bounds of the fp32 table, and refuses it as weights", () => {
    let error = 0;
    let signal = 0;
    weights["embed.token"].forEach((v, i) => {
      error += (decoded[i]! - v) ** 2;
      signal += v * v;
    });
    expect(Math.sqrt(error / signal)).toBeLessThan(0.12);
    expect(tokenTableFromEmbedGraph(buildEmbedGraph(ARCH, weights, "fp32"), ARCH)).toEqual(weights["embed.token"]);
    const step = buildStepGraph(ARCH, weights, "int8");
    expect(() => weightsFromArtifactGraphs(embed, step, ARCH)).toThrow(/embed\.token is stored at 4 bits .*int4 embed graph/);
    expect(() => tokenTableFromEmbedGraph(embed, { ...ARCH, vocabSize: 301 })).toThrow(/embed\.token\.int4 in embed\.onnx has shape \[300,32\], expected \[301,32\]/);
  });

  const ids = [
    [1, 2, 299, 0, 150, 77, 3],
    [42, 42, 5, 298, 9, 0, 1],
  ];
  for (const [name, ort] of [
    ["onnxruntime-node", ortNode],
    ["onnxruntime-web (wasm)", ortWeb],
  ] as const) {
    it(`run by ${name}, equals the decoded table plus positions bit for bit, at any batch and length`, async () => {
      const session = await (ort as typeof ortNode).InferenceSession.create(embed);
      try {
        for (const rows of [ids, [ids[0]!.slice(0, 1)], ids.map((r) => r.slice(0, 5))]) {
          const [B, T] = [rows.length, rows[0]!.length];
          const input = new (ort as typeof ortNode).Tensor("int64", BigInt64Array.from(rows.flat().map(BigInt)), [B, T]);
          const out = await session.run({ input_ids: input });
          expect(out["x"]!.dims).toEqual([B, T, ARCH.hidden]);
          const x = out["x"]!.data as Float32Array;
          const expected = new Float32Array(B * T * ARCH.hidden);
          rows.forEach((row, b) =>
            row.forEach((id, t) => {
              for (let h = 0; h < ARCH.hidden; h++) {
                expected[(b * T + t) * ARCH.hidden + h] = decoded[id * ARCH.hidden + h]! + position[t * ARCH.hidden + h]!;
              }
            }),
          );
          expect(x).toEqual(expected);
        }
      } finally {
        await session.release();
      }
    });
  }
});

describe("the int4 variant in a manifest", () => {
  it("is optional: a manifest written before it parses, and asking it for int4 says how to add it", async () => {
    const text = await readFile(path.resolve(import.meta.dirname, "../fixtures/taesr-random@0.0.0-test/manifest.json"), "utf8");
    const withInt4 = parseManifest(text);
    expect(variantFiles(withInt4, "int4")).toEqual(["int4/embed.onnx", "int8/step.onnx", "tokenizer.json"]);
    const raw = JSON.parse(text) as { files: Record<string, unknown>; variants: Record<string, unknown> };
    // As written before int4 (and int8w, which came later still).
    delete raw.variants["int4"];
    delete raw.files["int4/embed.onnx"];
    delete raw.variants["int8w"];
    delete raw.files["int8w/step.onnx"];
    const old = parseManifest(raw);
    expect(old.variants.int4).toBeUndefined();
    expect(() => variantGraphs(old, "int4")).toThrow(
      /taesr-random@0\.0\.0-test has no int4 variant \(it has fp32, int8\); add it with `npm run export -- --add-variant int4 --artifact <dir>`/,
    );
    // A variant pointing at an unlisted file is refused like the others.
    const dangling = { ...raw, variants: { ...raw.variants, int4: { embed: "int4/embed.onnx", step: "int8/step.onnx" } } };
    expect(() => parseManifest(dangling)).toThrow(/"int4\/embed\.onnx" is not listed in files[\s\S]*variants\.int4\.embed/);
  });
});

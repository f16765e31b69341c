/**
 * Adding the int4 and int8w variants to an artifact exported before they existed (training/src/export/add-variant.ts
 * and `npm run export -- --add-variant`): each new graph is byte for byte the one a fresh export writes, every existing
 * file and manifest field is kept, the result verifies and loads in onnxruntime-node, and mistakes are refused with
 * messages that say what to do.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../../src/model/manifest.js";
import type { ArtifactManifest, TaesrArchitecture } from "../../src/model/spec.js";
import { addVariant, initializerBytes } from "../src/export/add-variant.js";
import { exportArtifact, verifyArtifactDir, type ExportArtifactOptions } from "../src/export/artifact.js";
import { loadVariant, padBatch, rowCosine, runSteps } from "../src/export/onnx-runner.js";
import { initWeights, mulberry32 } from "../src/model/params.js";

const run = promisify(execFile);
const trainingDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const ARCH: TaesrArchitecture = {
  vocabSize: 400,
  hidden: 64,
  heads: 4,
  ffn: 128,
  maxLength: 16,
  outputDim: 384,
  matryoshkaDims: [64, 128, 256, 384],
  depths: { easy: 1, medium: 3, hard: 6 },
};

/** The files only the later variants own (every other graph they run is int8's). */
const LATER_FILES = { int4: "int4/embed.onnx", int8w: "int8w/step.onnx" } as const;

/** An artifact as exported before int4 and int8w: their files and manifest entries taken out again (`fresh` keeps
 * the bytes the export wrote), plus a CHANGELOG beside it. */
async function legacyArtifact(
  options: ExportArtifactOptions,
): Promise<{ dir: string; fresh: Record<keyof typeof LATER_FILES, Uint8Array>; files: Record<string, Uint8Array> }> {
  const { dir } = await exportArtifact(options);
  const manifestPath = path.join(dir, "manifest.json");
  const raw = JSON.parse(await readFile(manifestPath, "utf8")) as ArtifactManifest;
  const fresh = {} as Record<keyof typeof LATER_FILES, Uint8Array>;
  for (const [variant, rel] of Object.entries(LATER_FILES) as Array<[keyof typeof LATER_FILES, string]>) {
    fresh[variant] = new Uint8Array(await readFile(path.join(dir, rel)));
    await rm(path.join(dir, path.dirname(rel)), { recursive: true });
    delete raw.files[rel];
    delete raw.variants[variant];
  }
  await writeFile(manifestPath, JSON.stringify(raw, null, 2) + "\n");
  const files: Record<string, Uint8Array> = {};
  for (const rel of Object.keys(raw.files)) files[rel] = new Uint8Array(await readFile(path.join(dir, rel)));
  return { dir, fresh, files };
}

describe("adding the int4 and int8w variants to an existing artifact", () => {
  let tmp: string;
  let options: ExportArtifactOptions;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-add-variant-"));
    const weights = initWeights(ARCH, 4);
    const rand = mulberry32(8);
    weights["embed.token"].forEach((v, i, a) => (a[i] = v + 0.05 * (rand() * 2 - 1)));
    options = {
      outDir: tmp,
      name: "taesr-old",
      version: "0.1.0",
      arch: ARCH,
      weights,
      tokenizerJson: { format: "taesr-wordpiece/1", vocab: ["[PAD]", "[UNK]"] },
      router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 24 },
      earlyExitEpsilon: 0.001,
      training: { steps: 1 },
      eval: { heldOutValidation: { ndcg10: 0.5 } },
      createdAt: "2025-01-01T00:00:00.000Z",
    };
    await writeFile(path.join(tmp, "CHANGELOG.md"), "# Model artifacts\n\n| version |\n| --- |\n| taesr-old@0.1.0 |\n");
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("writes the graph a fresh export writes, keeps every other file and field, and logs one CHANGELOG line", async () => {
    const { dir, fresh, files } = await legacyArtifact(options);
    const before = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as Record<string, unknown>;
    const added = await addVariant(dir, "int4", { date: "2026-11-27" });

    expect(added.files).toEqual(["int4/embed.onnx"]);
    expect(new Uint8Array(await readFile(path.join(dir, "int4", "embed.onnx")))).toEqual(fresh.int4);
    for (const [rel, bytes] of Object.entries(files)) expect(new Uint8Array(await readFile(path.join(dir, rel))), rel).toEqual(bytes);
    const manifest = await verifyArtifactDir(dir);
    expect(manifest.variants.int4).toEqual({ embed: "int4/embed.onnx", step: "int8/step.onnx" });
    const after = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as Record<string, unknown>;
    for (const key of Object.keys(before)) if (!["files", "variants", "eval"].includes(key)) expect(after[key], key).toEqual(before[key]);
    expect(Object.keys(after["files"] as object)).toEqual(Object.keys(after["files"] as object).sort());
    expect(manifest.eval).toMatchObject({ heldOutValidation: { ndcg10: 0.5 }, variants: { int4: { graphBytes: added.bytes.int4 } } });
    expect(added.bytes.int4).toBeLessThan(added.bytes.int8!);
    expect(added.tensors["int4/embed.onnx"]![0]).toMatchObject({ name: "embed.token.int4", dataType: "uint8", dims: [400, 32], bytes: 400 * 32 });
    expect(initializerBytes(fresh.int4).map((t) => t.name)).toContain("embed.token.int4.scale");

    const changelog = await readFile(path.join(tmp, "CHANGELOG.md"), "utf8");
    expect(changelog).toMatch(/\| taesr-old@0\.1\.0 \|\n\n- variant added: taesr-old@0\.1\.0, 2026-11-27 — int4 \(int4\/embed\.onnx \+ int8\/step\.onnx/);
    expect(changelog.trim().split("\n").filter((l) => l.startsWith("- "))).toHaveLength(1);

    // And it runs: int4 embeddings stay close to int8's (same step graph, 4-bit token rows).
    const rand = mulberry32(3);
    const batch = padBatch([9, 4, 13].map((n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (ARCH.vocabSize - 1)))));
    const [int8, int4] = await Promise.all([loadVariant(dir, "int8"), loadVariant(dir, "int4")]);
    const [e8, e4] = await Promise.all([runSteps(int8, batch, 3), runSteps(int4, batch, 3)]);
    for (let s = 0; s < 3; s++) for (let r = 0; r < batch.batch; r++) expect(rowCosine(e8[s]!, e4[s]!, r, ARCH.outputDim)).toBeGreaterThan(0.95);
  });

  it("adds int8w as its own step graph on int8's embed graph: int8's size, closer to fp32 than int8", async () => {
    const { dir, fresh, files } = await legacyArtifact({ ...options, version: "0.5.0" });
    const added = await addVariant(dir, "int8w", { date: "2026-11-27" });

    expect(added.files).toEqual(["int8w/step.onnx"]);
    expect(new Uint8Array(await readFile(path.join(dir, "int8w", "step.onnx")))).toEqual(fresh.int8w);
    for (const [rel, bytes] of Object.entries(files)) expect(new Uint8Array(await readFile(path.join(dir, rel))), rel).toEqual(bytes);
    const manifest = await verifyArtifactDir(dir);
    expect(manifest.variants.int8w).toEqual({ embed: "int8/embed.onnx", step: "int8w/step.onnx" });
    // Every matrix is stored int8 (plus a float scale per column): the step graph is no bigger than int8's.
    const int8Step = manifest.files["int8/step.onnx"]!.bytes;
    expect(manifest.files["int8w/step.onnx"]!.bytes).toBeLessThanOrEqual(int8Step);
    expect(added.tensors["int8w/step.onnx"]!.find((t) => t.name === "block.ffn.w1.int8")).toMatchObject({ dataType: "int8", dims: [64, 128] });
    expect(added.tensors["int8w/step.onnx"]!.filter((t) => t.dataType === "float32" && t.dims.length === 2)).toEqual([]);

    const changelog = await readFile(path.join(tmp, "CHANGELOG.md"), "utf8");
    expect(changelog).toMatch(/— int8w \(int8\/embed\.onnx \+ int8w\/step\.onnx: int8 weights, float arithmetic in the block\)/);

    // Float arithmetic on the same int8 weights: nearer fp32 than int8's integer arithmetic, at every step.
    const rand = mulberry32(5);
    const batch = padBatch([9, 4, 13, 16].map((n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (ARCH.vocabSize - 1)))));
    const [fp32, int8, int8w] = await Promise.all([loadVariant(dir, "fp32"), loadVariant(dir, "int8"), loadVariant(dir, "int8w")]);
    const [e32, e8, e8w] = await Promise.all([runSteps(fp32, batch, 3), runSteps(int8, batch, 3), runSteps(int8w, batch, 3)]);
    for (let s = 0; s < 3; s++) {
      let gapInt8 = 0;
      let gapInt8w = 0;
      for (let r = 0; r < batch.batch; r++) {
        const cosInt8w = rowCosine(e32[s]!, e8w[s]!, r, ARCH.outputDim);
        expect(cosInt8w).toBeGreaterThan(0.999);
        gapInt8w += 1 - cosInt8w;
        gapInt8 += 1 - rowCosine(e32[s]!, e8[s]!, r, ARCH.outputDim);
      }
      expect(gapInt8w, `step ${s + 1}`).toBeLessThan(gapInt8);
    }
  });

  it("refuses a second addition, an unknown variant, a stray file and a tampered fp32 graph", async () => {
    const dir = path.join(tmp, "taesr-old@0.1.0");
    await expect(addVariant(dir, "int4")).rejects.toThrow(/already has the int4 variant/);
    await expect(addVariant(dir, "int2")).rejects.toThrow(/cannot add variant "int2": only int4, int8w/);

    const second = await legacyArtifact({ ...options, version: "0.2.0" });
    await mkdir(path.join(second.dir, "int4"));
    await writeFile(path.join(second.dir, "int4", "embed.onnx"), "stray");
    await expect(addVariant(second.dir, "int4")).rejects.toThrow(/exists but is not in the manifest/);

    const third = await legacyArtifact({ ...options, version: "0.3.0" });
    const graph = path.join(third.dir, "fp32", "embed.onnx");
    const bytes = await readFile(graph);
    bytes[bytes.length - 3]! ^= 1;
    await writeFile(graph, bytes);
    await expect(addVariant(third.dir, "int4")).rejects.toThrow(/fp32\/embed\.onnx" has sha256/);
    expect(parseManifest(await readFile(path.join(third.dir, "manifest.json"), "utf8")).variants.int4).toBeUndefined();
  });

  it("runs from the export CLI, which refuses options that belong to a fresh export", async () => {
    const { dir } = await legacyArtifact({ ...options, version: "0.4.0" });
    const cli = (...args: string[]) => run(process.execPath, ["--import", "tsx", "src/cli/export.ts", ...args], { cwd: trainingDir });
    await expect(cli("--add-variant", "int4", "--artifact", dir, "--version", "9.9.9")).rejects.toMatchObject({
      stderr: expect.stringMatching(/reads the artifact's own fp32 graphs; drop --version/),
    });
    await expect(cli("--add-variant", "int4")).rejects.toMatchObject({ stderr: expect.stringMatching(/--add-variant and --artifact go together/) });
    await expect(cli("--version", "1.0.0")).rejects.toMatchObject({ stderr: expect.stringMatching(/--checkpoint, --tokenizer required/) });
    const { stdout } = await cli("--add-variant", "int4", "--artifact", dir);
    expect(stdout).toMatch(/added int4 to .*taesr-old@0\.4\.0: int4\/embed\.onnx/);
    expect(stdout).toMatch(/embed\.token\.int4\.scale\s+float16\s+\[400,2,1\]\s+1600 B/);
    await expect(verifyArtifactDir(dir)).resolves.toMatchObject({ variants: { int4: { embed: "int4/embed.onnx" } } });
  });
});

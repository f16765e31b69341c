/**
 * The artifact directory and its manifest: hashes match the files, the runtime's manifest parser accepts it, versions are
 * immutable unless forced, the params checkpoint round-trips, and the export CLI works end to end.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest, verifyArtifactFiles } from "../../src/model/manifest.js";
import { WEIGHT_NAMES, type TaesrArchitecture } from "../../src/model/spec.js";
import { exportArtifact, sha256Hex, verifyArtifactDir, type ExportArtifactOptions } from "../src/export/artifact.js";
import { decodeParams, encodeParams, initWeights, loadParams, parameterCount, saveParams } from "../src/model/params.js";

const run = promisify(execFile);
const trainingDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const ARCH: TaesrArchitecture = {
  vocabSize: 300,
  hidden: 32,
  heads: 4,
  ffn: 64,
  maxLength: 16,
  outputDim: 384,
  matryoshkaDims: [64, 128, 256, 384],
  depths: { easy: 1, medium: 3, hard: 6 },
};

describe("artifact export", () => {
  let tmp: string;
  let options: ExportArtifactOptions;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-artifact-"));
    options = {
      outDir: tmp,
      name: "taesr-test",
      version: "1.2.3",
      arch: ARCH,
      weights: initWeights(ARCH, 1),
      tokenizerJson: { format: "taesr-wordpiece/1", vocab: ["[PAD]", "[UNK]"] },
      router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 24 },
      earlyExitEpsilon: 0.001,
      training: { steps: 0 },
      eval: { note: "untrained" },
      createdAt: "2025-01-01T00:00:00.000Z",
    };
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("writes the layout of spec.ts with sha256 and byte length of every file", async () => {
    const { dir, manifest } = await exportArtifact(options);
    expect(path.basename(dir)).toBe("taesr-test@1.2.3");
    expect(Object.keys(manifest.files).sort()).toEqual(
      ["fp32/embed.onnx", "fp32/step.onnx", "int8/embed.onnx", "int8/step.onnx", "int4/embed.onnx", "int8w/step.onnx", "tokenizer.json"].sort(),
    );
    // int4 shares the int8 step graph, int8w the int8 embed graph: one file each, listed once.
    expect(manifest.variants).toEqual({
      fp32: { embed: "fp32/embed.onnx", step: "fp32/step.onnx" },
      int8: { embed: "int8/embed.onnx", step: "int8/step.onnx" },
      int4: { embed: "int4/embed.onnx", step: "int8/step.onnx" },
      int8w: { embed: "int8/embed.onnx", step: "int8w/step.onnx" },
    });
    for (const [rel, { sha256, bytes }] of Object.entries(manifest.files)) {
      const data = await readFile(path.join(dir, rel));
      expect(data.byteLength).toBe(bytes);
      expect(sha256Hex(data)).toBe(sha256);
    }
    expect(manifest.parameters).toBe(parameterCount(ARCH));
    expect(manifest.architecture).toEqual(ARCH);
    await expect(verifyArtifactDir(dir)).resolves.toEqual(manifest);
  });

  it("is accepted by the runtime's manifest parser and integrity check", async () => {
    const dir = path.join(tmp, "taesr-test@1.2.3");
    const manifest = parseManifest(await readFile(path.join(dir, "manifest.json"), "utf8"));
    const files: Record<string, Uint8Array> = {};
    for (const rel of Object.keys(manifest.files)) files[rel] = new Uint8Array(await readFile(path.join(dir, rel)));
    await expect(verifyArtifactFiles(manifest, files)).resolves.toBeUndefined();
  });

  it("refuses to overwrite an existing version, unless forced", async () => {
    await expect(exportArtifact(options)).rejects.toThrow(/already exists/);
    const { manifest } = await exportArtifact({ ...options, force: true, eval: { note: "replaced" } });
    expect(manifest.eval).toEqual({ note: "replaced" });
  });

  it("detects a tampered file", async () => {
    const { dir } = await exportArtifact({ ...options, version: "1.2.4" });
    const target = path.join(dir, "int8", "step.onnx");
    const bytes = await readFile(target);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(target, bytes);
    await expect(verifyArtifactDir(dir)).rejects.toThrow(/int8\/step\.onnx has sha256/);
  });

  it("rejects weights that do not fit the architecture", async () => {
    const weights = { ...options.weights, "block.ffn.w1": new Float32Array(3) };
    await expect(exportArtifact({ ...options, version: "9.9.9", weights })).rejects.toThrow(/block\.ffn\.w1/);
  });
});

describe("params checkpoint", () => {
  it("round-trips architecture, every weight bit-exactly, and meta", async () => {
    const weights = initWeights(ARCH, 5);
    const decoded = decodeParams(encodeParams(weights, ARCH, { step: 42 }));
    expect(decoded.architecture).toEqual(ARCH);
    expect(decoded.meta).toEqual({ step: 42 });
    for (const name of WEIGHT_NAMES) expect(decoded.weights[name]).toEqual(weights[name]);
  });

  it("rejects a file that is not a checkpoint", () => {
    expect(() => decodeParams(new TextEncoder().encode("not a checkpoint at all"))).toThrow(/magic/);
  });
});

describe("export CLI", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-cli-"));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("exports a saved checkpoint and tokenizer, then refuses the same version again", async () => {
    const checkpoint = path.join(tmp, "ckpt.taesr");
    const tokenizer = path.join(tmp, "tokenizer.json");
    await saveParams(checkpoint, initWeights(ARCH, 2), ARCH, { step: 7 });
    await writeFile(tokenizer, JSON.stringify({ format: "taesr-wordpiece/1" }));
    const args = ["--import", "tsx", "src/cli/export.ts", "--checkpoint", checkpoint, "--tokenizer", tokenizer, "--version", "0.1.0", "--out", tmp];
    const { stdout } = await run(process.execPath, args, { cwd: trainingDir });
    expect(stdout).toMatch(/exported .*taesr-edge@0\.1\.0/);
    const manifest = await verifyArtifactDir(path.join(tmp, "taesr-edge@0.1.0"));
    expect(manifest.training).toMatchObject({ step: 7 });
    expect((await loadParams(checkpoint)).architecture).toEqual(ARCH);
    await expect(run(process.execPath, args, { cwd: trainingDir })).rejects.toMatchObject({ stderr: expect.stringMatching(/already exists/) });
  });
});

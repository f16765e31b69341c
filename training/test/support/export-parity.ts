/**
 * Set-up shared by the tests that hold the exported ONNX graphs to the tfjs model (export-parity, blocks, sparse-export,
 * late-export): weights moved away from the initialisation, a throw-away artifact export, the tfjs reference (every
 * step's embedding, or a head on the last state), a head's whole parity fixture (export plus reference, with clean-up),
 * one head graph run on onnxruntime-node with its IO checked, a padded batch split back into TAESRModel's rows, and the
 * largest element-wise difference.
 *
 * @example
 *   const weights = nontrivialWeights(ARCH, 11, { tokenAmplitude: 0.15 });
 *   const { dir } = await exportTestArtifact({ outDir: tmp, name: "taesr-test", arch: ARCH, weights });
 *   const parity = useHeadParity({ name: "taesr-late-test", arch: ARCH, weights: () => weights, batch, steps: 3, head: lateTokenVectors });
 *   const onnx = await runHeadGraph(path.join(parity.dir, "fp32/late.onnx"), "late", parity.h, batch, ARCH.hidden, [B, T, DIM]);
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, expect } from "vitest";
import { GRAPH_IO, weightNames, type ArtifactManifest, type TaesrArchitecture, type WeightName } from "../../../src/model/spec.js";
import { initBackend } from "../../src/backend.js";
import { exportArtifact, type ExportedArtifact } from "../../src/export/artifact.js";
import type { PaddedBatch } from "../../src/export/onnx-runner.js";
import { encode, forward } from "../../src/model/forward.js";
import { initWeights, mulberry32, paramsFromWeights, type TaesrParams, type TaesrWeights } from "../../src/model/params.js";

export interface NontrivialWeightOptions {
  /** The token table's noise amplitude (default 0.05, as every other matrix's). */
  tokenAmplitude?: number;
  /** Constants subtracted from every element of a weight after its noise (e.g. a negative bias). */
  shift?: Partial<Record<WeightName, number>>;
}

/**
 * initWeights(arch, seed) plus seeded uniform noise on every weight, so no LayerNorm is the identity and no bias is
 * zero: amplitude 0.3 on LayerNorm gains, 0.1 on betas and biases, 0.05 on the rest (see tokenAmplitude).
 */
export function nontrivialWeights(arch: TaesrArchitecture, seed: number, options: NontrivialWeightOptions = {}): TaesrWeights {
  const w = initWeights(arch, seed);
  const rand = mulberry32(seed + 1000);
  for (const name of weightNames(arch)) {
    const amp =
      name === "embed.token" ? (options.tokenAmplitude ?? 0.05) : name.endsWith(".gamma") ? 0.3 : name.endsWith(".beta") || /\.b[a-z0-9]*$/.test(name) ? 0.1 : 0.05;
    const shift = options.shift?.[name] ?? 0;
    const a = w[name];
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + amp * (rand() * 2 - 1) - shift;
  }
  return w;
}

/** Exports `weights` as `<outDir>/<name>@0.0.1` with a stub tokenizer, the rule router (8/24 tokens) and ε 1e-3. */
export function exportTestArtifact(options: { outDir: string; name: string; arch: TaesrArchitecture; weights: TaesrWeights }): Promise<ExportedArtifact> {
  return exportArtifact({
    ...options,
    version: "0.0.1",
    tokenizerJson: { format: "test" },
    router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 24 },
    earlyExitEpsilon: 1e-3,
    training: {},
    eval: {},
  });
}

/** tfjs forward on the padded batch: every step's embedding [B, outputDim], 1..steps. */
export function tfForward(params: TaesrParams, batch: PaddedBatch, steps: number): Float32Array[] {
  return tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids, [batch.batch, batch.seq], "int32");
    const mask = tf.tensor2d(batch.mask, [batch.batch, batch.seq], "float32");
    return forward(params, ids, mask, steps).map((e) => e.dataSync() as Float32Array);
  });
}

/** tfjs on the padded batch: the state h after `steps` steps [B,T,H] and `head(params, h, mask)`'s output. */
export function tfHeadReference(
  params: TaesrParams,
  batch: PaddedBatch,
  steps: number,
  head: (params: TaesrParams, h: tf.Tensor3D, mask: tf.Tensor2D) => tf.Tensor,
): { h: Float32Array; head: Float32Array } {
  const [h, out] = tf.tidy(() => {
    const ids = tf.tensor2d(batch.ids, [batch.batch, batch.seq], "int32");
    const mask = tf.tensor2d(batch.mask, [batch.batch, batch.seq], "float32");
    const { states } = encode(params, ids, mask, steps);
    const last = states[steps - 1]!;
    return [last.dataSync() as Float32Array, head(params, last, mask).dataSync() as Float32Array];
  });
  return { h: h!, head: out! };
}

/** A head's parity fixture: the exported artifact, its weights, and tfjs's values on the batch. */
export interface HeadParity {
  dir: string;
  manifest: ArtifactManifest;
  weights: TaesrWeights;
  /** tfjs: the state h after `steps` steps [B,T,H]. */
  h: Float32Array;
  /** tfjs: the head's output on h (sparse weights [B,V], late token vectors [B,T,dim]). */
  reference: Float32Array;
}

/**
 * Registers hooks in the calling describe block. Before its tests: initialises the wasm backend, exports `weights()`
 * as `name` (exportTestArtifact) into a fresh temp directory, and computes the tfjs reference of `head` on `batch`
 * after `steps` steps. After them: disposes the params and removes the directory. The returned object's fields are
 * set once that beforeAll has run.
 */
export function useHeadParity(o: {
  name: string;
  arch: TaesrArchitecture;
  weights: () => TaesrWeights;
  batch: PaddedBatch;
  steps: number;
  head: (params: TaesrParams, h: tf.Tensor3D, mask: tf.Tensor2D) => tf.Tensor;
}): HeadParity {
  const parity = {} as HeadParity;
  let tmp: string | undefined;
  let params: TaesrParams | undefined;
  beforeAll(async () => {
    await initBackend("wasm");
    const weights = o.weights();
    params = paramsFromWeights(o.arch, weights);
    tmp = await mkdtemp(path.join(os.tmpdir(), `${o.name}-`));
    const { dir, manifest } = await exportTestArtifact({ outDir: tmp, name: o.name, arch: o.arch, weights });
    const { h, head } = tfHeadReference(params, o.batch, o.steps, o.head);
    Object.assign(parity, { dir, manifest, weights, h, reference: head });
  });
  afterAll(async () => {
    Object.values(params ?? {}).forEach((v) => v.dispose());
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });
  return parity;
}

/**
 * Runs a head graph (sparse.onnx or late.onnx) on onnxruntime-node with the state `h` [B,T,hidden] and the batch's
 * mask; expects spec.ts GRAPH_IO's input and output names and `outputDims` as the output's shape, and returns it.
 */
export async function runHeadGraph(
  file: string,
  graph: "sparse" | "late",
  h: Float32Array,
  batch: PaddedBatch,
  hidden: number,
  outputDims: number[],
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(await readFile(file));
  expect(session.inputNames).toEqual([...GRAPH_IO[graph].inputs]);
  expect(session.outputNames).toEqual([...GRAPH_IO[graph].outputs]);
  const out = await session.run({
    h: new ort.Tensor("float32", h, [batch.batch, batch.seq, hidden]),
    attention_mask: new ort.Tensor("float32", batch.mask, [batch.batch, batch.seq]),
  });
  const result = out[GRAPH_IO[graph].outputs[0]]!;
  expect(result.dims).toEqual(outputDims);
  return Float32Array.from(result.data as Float32Array);
}

/** The padded batch as TAESRModel.forward takes it: one id row and one mask row per sequence (views, not copies). */
export function modelRows(batch: PaddedBatch): { inputIds: Int32Array[]; attentionMask: Float32Array[] } {
  const T = batch.seq;
  return {
    inputIds: Array.from({ length: batch.batch }, (_, b) => batch.ids.subarray(b * T, (b + 1) * T)),
    attentionMask: Array.from({ length: batch.batch }, (_, b) => batch.mask.subarray(b * T, (b + 1) * T)),
  };
}

/** max |a_i − b_i|, expecting equal lengths. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

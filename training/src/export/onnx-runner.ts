/**
 * Runs exported TAESR graphs with onnxruntime-node the way the runtime composes them: embed once, then step k times
 * from h₀ = 0, collecting e_1 … e_k. Used by the export parity test and by `variantAgreement`, which checks int8 against
 * fp32 on real, tokenised sentences from a trained artifact.
 *
 * onnxruntime-node is a devDependency of the workspace root, so this module is for tests and tools, not training.
 *
 * @example
 *   const tokenizer = new WordPieceTokenizer(JSON.parse(await readFile(`${dir}/tokenizer.json`, "utf8")));
 *   const ids = sentences.map((s) => tokenizer.encode(s).ids);      // whatever the tokenizer's encode returns
 *   const report = await variantAgreement(dir, ids, 6);
 *   console.log(report.perStep.map((s) => s.minCosine));
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as ort from "onnxruntime-node";
import { variantGraphs, type ArtifactVariant } from "../../../src/model/manifest.js";
import type { ArtifactManifest } from "../../../src/model/spec.js";
import { MANIFEST_FILE } from "./artifact.js";

export interface OnnxTaesr {
  embed: ort.InferenceSession;
  step: ort.InferenceSession;
  hidden: number;
  outputDim: number;
}

/** Sessions from in-memory graph bytes. */
export async function loadGraphs(embedBytes: Uint8Array, stepBytes: Uint8Array, hidden: number, outputDim: number): Promise<OnnxTaesr> {
  const [embed, step] = await Promise.all([ort.InferenceSession.create(embedBytes), ort.InferenceSession.create(stepBytes)]);
  return { embed, step, hidden, outputDim };
}

/** Sessions for one variant of an artifact directory. */
export async function loadVariant(dir: string, variant: ArtifactVariant): Promise<OnnxTaesr> {
  const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), "utf8")) as ArtifactManifest;
  const v = variantGraphs(manifest, variant);
  const [embedBytes, stepBytes] = await Promise.all([readFile(path.join(dir, v.embed)), readFile(path.join(dir, v.step))]);
  return loadGraphs(embedBytes, stepBytes, manifest.architecture.hidden, manifest.architecture.outputDim);
}

export interface PaddedBatch {
  batch: number;
  seq: number;
  /** Row-major [batch, seq], padding id 0. */
  ids: Int32Array;
  /** Row-major [batch, seq], 1 token, 0 padding. */
  mask: Float32Array;
}

/** Right-pads variable-length id sequences to the longest one (pad id 0, mask 0). */
export function padBatch(sequences: ReadonlyArray<ReadonlyArray<number>>, padId = 0): PaddedBatch {
  const batch = sequences.length;
  const seq = Math.max(1, ...sequences.map((s) => s.length));
  const ids = new Int32Array(batch * seq).fill(padId);
  const mask = new Float32Array(batch * seq);
  sequences.forEach((s, b) => {
    s.forEach((id, t) => {
      ids[b * seq + t] = id;
      mask[b * seq + t] = 1;
    });
  });
  return { batch, seq, ids, mask };
}

/** e_1 … e_steps, each row-major [batch, outputDim], composed exactly as the runtime does. */
export async function runSteps(model: OnnxTaesr, input: PaddedBatch, steps: number): Promise<Float32Array[]> {
  const { batch: B, seq: T } = input;
  const ids = new ort.Tensor("int64", BigInt64Array.from(input.ids, (v) => BigInt(v)), [B, T]);
  const mask = new ort.Tensor("float32", input.mask, [B, T]);
  const { x } = await model.embed.run({ input_ids: ids });
  if (!x) throw new Error("embed graph produced no output named x");
  let h: ort.Tensor = new ort.Tensor("float32", new Float32Array(B * T * model.hidden), [B, T, model.hidden]);
  const out: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const r = await model.step.run({ h, x, attention_mask: mask });
    const next = r.h_next;
    const e = r.embedding;
    if (!next || !e) throw new Error("step graph must produce h_next and embedding");
    h = next;
    out.push(Float32Array.from(e.data as Float32Array));
  }
  return out;
}

/** Cosine similarity of row `row` of two row-major [rows, dims] matrices (optionally on a Matryoshka prefix). */
export function rowCosine(a: Float32Array, b: Float32Array, row: number, dims: number, prefix = dims): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let j = 0; j < prefix; j++) {
    const u = a[row * dims + j]!;
    const v = b[row * dims + j]!;
    dot += u * v;
    na += u * u;
    nb += v * v;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : na === nb ? 1 : 0;
}

export interface AgreementReport {
  rows: number;
  /** Per recursion step: min and mean row cosine of int8 vs fp32 embeddings, over the full width and each prefix. */
  perStep: Array<{ step: number; minCosine: number; meanCosine: number; byPrefix: Record<number, { min: number; mean: number }> }>;
}

/**
 * int8 vs fp32 agreement of an artifact on tokenised inputs (token ids without padding, specials as the runtime adds
 * them). Intended for a trained artifact and real sentences; the acceptance bar is min cosine ≥ 0.99.
 */
export async function variantAgreement(
  dir: string,
  sequences: ReadonlyArray<ReadonlyArray<number>>,
  steps: number,
  prefixes: number[] = [],
): Promise<AgreementReport> {
  const [fp32, int8] = await Promise.all([loadVariant(dir, "fp32"), loadVariant(dir, "int8")]);
  const batch = padBatch(sequences);
  const [ef, eq] = await Promise.all([runSteps(fp32, batch, steps), runSteps(int8, batch, steps)]);
  const D = fp32.outputDim;
  const perStep = ef.map((f, s) => {
    const stats = (prefix: number): { min: number; mean: number } => {
      const c = Array.from({ length: batch.batch }, (_, r) => rowCosine(f, eq[s]!, r, D, prefix));
      return { min: Math.min(...c), mean: c.reduce((p, x) => p + x, 0) / c.length };
    };
    const full = stats(D);
    return {
      step: s + 1,
      minCosine: full.min,
      meanCosine: full.mean,
      byPrefix: Object.fromEntries(prefixes.map((p) => [p, stats(p)])),
    };
  });
  return { rows: batch.batch, perStep };
}

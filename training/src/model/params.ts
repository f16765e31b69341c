/**
 * TAESR parameters: initialisation, conversion to plain arrays, and the single-file checkpoint format.
 *
 * Weight names and shapes come from src/model/spec.ts (the contract); nothing here invents a tensor. Which names a model
 * has depends on its block (spec.ts weightNames): a record holds exactly those.
 *
 * Checkpoint file layout (little-endian):
 *   bytes 0..7    magic "TAESRPRM"
 *   bytes 8..11   uint32 header length n (bytes of UTF-8 JSON)
 *   bytes 12..    JSON header { format, architecture, tensors: [{ name, shape, offset, length }], meta }
 *                 (architecture.block only for the non-default blocks, so a self-attention file is byte-identical to
 *                 one written before blocks were selectable)
 *   padding to a multiple of 4, then every tensor's float32 data back to back (offset/length in elements,
 *   relative to the start of the data section).
 * One file, readable without TensorFlow.js (the exporter and tests load it into Float32Arrays).
 *
 * @example
 *   const params = initParams(arch, 42);
 *   await saveParams("ckpt/step-1000.taesr", params, arch, { step: 1000 });
 *   const { weights, architecture } = await loadParams("ckpt/step-1000.taesr");
 *
 * @module
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { fillNormal, initialWeights, mulberry32 } from "../../../src/model/init.js";
import { blockOf, weightNames, weightNamesIn, weightShapes, type TaesrArchitecture, type WeightName } from "../../../src/model/spec.js";

export type TaesrParams = Record<WeightName, tf.Variable>;
export type TaesrWeights = Record<WeightName, Float32Array>;

/** Initialisation must be reproducible across backends, so it is drawn in JS (src/model/init.ts), not by tfjs. */
export { mulberry32, fillNormal };

/** Initial values as plain arrays (src/model/init.ts {@link initialWeights}; also used by tests that need weights without variables). */
export function initWeights(arch: TaesrArchitecture, seed: number): TaesrWeights {
  return initialWeights(arch, seed);
}

/** The architecture each params object was built for (heads cannot be read off weight shapes). */
const architectures = new WeakMap<object, TaesrArchitecture>();

/** The architecture recorded for params made by initParams/paramsFromWeights (or registered explicitly). */
export function architectureOf(params: object): TaesrArchitecture | undefined {
  return architectures.get(params);
}

/** Records the architecture of a params record built by other means (e.g. constant tensors for evaluation). */
export function registerArchitecture(params: object, arch: TaesrArchitecture): void {
  architectures.set(params, arch);
}

/** Trainable tf.Variables for every weight of the contract, created from `weights`. Unnamed: tfjs requires globally
 * unique variable names, and a trainer may hold several models (teacher, EMA) at once. */
export function paramsFromWeights(arch: TaesrArchitecture, weights: TaesrWeights): TaesrParams {
  const shapes = weightShapes(arch);
  const out = {} as TaesrParams;
  const names = weightNames(arch);
  const foreign = weightNamesIn(weights).filter((n) => !names.includes(n));
  if (foreign.length > 0) throw new Error(`weights ${foreign.join(", ")} do not belong to a ${blockOf(arch)} model`);
  for (const name of names) {
    const data = weights[name];
    if (!data) throw new Error(`weight ${name} is missing (a ${blockOf(arch)} model has it)`);
    const shape = shapes[name];
    const size = shape.reduce((p, d) => p * d, 1);
    if (data.length !== size) {
      throw new Error(`weight ${name}: expected ${size} values for shape [${shape.join(",")}], got ${data.length}`);
    }
    const initial = tf.tensor(data, shape, "float32");
    out[name] = tf.variable(initial, true);
    initial.dispose(); // the variable holds its own reference to the data

  }
  architectures.set(out, arch);
  return out;
}

/** Freshly initialised trainable parameters (see initWeights for the scheme). */
export function initParams(arch: TaesrArchitecture, seed: number): TaesrParams {
  return paramsFromWeights(arch, initWeights(arch, seed));
}

/** Copies every parameter out of the backend (synchronous read; call between steps, not inside a tape). */
export function paramsToFloat32(params: Record<WeightName, tf.Tensor>): TaesrWeights {
  const out = {} as TaesrWeights;
  for (const name of weightNamesIn(params)) out[name] = params[name].dataSync() as Float32Array;
  return out;
}

/** Total number of scalar parameters of an architecture. */
export function parameterCount(arch: TaesrArchitecture): number {
  const shapes = weightShapes(arch);
  return weightNames(arch).reduce((sum, n) => sum + shapes[n].reduce((p, d) => p * d, 1), 0);
}

const MAGIC = "TAESRPRM";
const FORMAT = "taesr-params/1";

interface CheckpointHeader {
  format: typeof FORMAT;
  architecture: TaesrArchitecture;
  tensors: Array<{ name: WeightName; shape: number[]; offset: number; length: number }>;
  meta: Record<string, unknown>;
}

export interface LoadedParams {
  architecture: TaesrArchitecture;
  weights: TaesrWeights;
  meta: Record<string, unknown>;
}

/** Serialises weights to the checkpoint byte layout described in the module comment. */
export function encodeParams(
  weights: TaesrWeights,
  arch: TaesrArchitecture,
  meta: Record<string, unknown> = {},
): Uint8Array {
  const shapes = weightShapes(arch);
  const tensors: CheckpointHeader["tensors"] = [];
  let offset = 0;
  for (const name of weightNames(arch)) {
    const length = weights[name].length;
    tensors.push({ name, shape: shapes[name], offset, length });
    offset += length;
  }
  const header: CheckpointHeader = { format: FORMAT, architecture: arch, tensors, meta };
  const headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const dataStart = Math.ceil((12 + headerBytes.length) / 4) * 4;
  const bytes = new Uint8Array(dataStart + offset * 4);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, headerBytes.length, true);
  bytes.set(headerBytes, 12);
  for (const t of tensors) {
    const src = weights[t.name];
    const base = dataStart + t.offset * 4;
    for (let i = 0; i < src.length; i++) view.setFloat32(base + i * 4, src[i]!, true);
  }
  return bytes;
}

/** Parses the checkpoint byte layout, validating shapes against the stored architecture. */
export function decodeParams(bytes: Uint8Array): LoadedParams {
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw new Error(`not a TAESR params file (magic ${JSON.stringify(magic)})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength))) as CheckpointHeader;
  if (header.format !== FORMAT) throw new Error(`unsupported params format ${String(header.format)}`);
  const dataStart = Math.ceil((12 + headerLength) / 4) * 4;
  const shapes = weightShapes(header.architecture);
  const weights = {} as TaesrWeights;
  for (const name of weightNames(header.architecture)) {
    const t = header.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`params file lacks weight ${name}`);
    const expected = shapes[name];
    if (t.shape.join(",") !== expected.join(",")) {
      throw new Error(`weight ${name}: shape [${t.shape.join(",")}] ≠ architecture's [${expected.join(",")}]`);
    }
    const out = new Float32Array(t.length);
    const base = dataStart + t.offset * 4;
    if (base + t.length * 4 > bytes.length) throw new Error(`params file truncated in ${name}`);
    for (let i = 0; i < t.length; i++) out[i] = view.getFloat32(base + i * 4, true);
    weights[name] = out;
  }
  return { architecture: header.architecture, weights, meta: header.meta ?? {} };
}

/**
 * Writes a checkpoint. Accepts live variables or plain arrays. The file is written beside its target and renamed into
 * place, so a crash mid-write never leaves a truncated checkpoint under the final name.
 */
export async function saveParams(
  filePath: string,
  params: Record<WeightName, tf.Tensor> | TaesrWeights,
  arch: TaesrArchitecture,
  meta: Record<string, unknown> = {},
): Promise<void> {
  const first = params["embed.token"];
  const weights = first instanceof Float32Array ? (params as TaesrWeights) : paramsToFloat32(params as Record<WeightName, tf.Tensor>);
  const bytes = encodeParams(weights, arch, meta);
  await mkdir(path.dirname(filePath), { recursive: true });
  const tmp = `${filePath}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, filePath);
}

/** Reads a checkpoint written by saveParams. */
export async function loadParams(filePath: string): Promise<LoadedParams> {
  const buf = await readFile(filePath);
  return decodeParams(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
}

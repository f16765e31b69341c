/**
 * Training checkpoints: everything needed to continue a run bit-exactly — parameters, AdamW moments and its t, the
 * global step, the data cursor (epoch, batch index; the batch order itself is a pure function of the seed), the
 * accumulated counters and the config the run started with.
 *
 * Layout: <runDir>/checkpoints/step-00001234/{state.json, tensors.bin}. A checkpoint is written into a temporary
 * directory and renamed into place, so a run killed mid-write never leaves a half checkpoint that `--resume` would
 * pick; only the last `keep` checkpoints are kept.
 *
 * tensors.bin is the float32 data of every tensor back to back (little-endian, the platform order of every machine we
 * run on); state.json lists name, shape and element offset of each.
 *
 * @module
 */
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";

export interface DataCursor {
  epoch: number;
  /** Index of the next batch within the epoch. */
  batch: number;
}

export interface CheckpointState {
  format: "taesr-train-checkpoint/1";
  /** Optimizer updates completed. */
  step: number;
  cursor: DataCursor;
  adamT: number;
  /** Updates applied by the subspace probes' optimiser (train/subspace-loss.ts), when the run trains them. */
  probeAdamT?: number;
  /** Running totals carried across resumes (tokens seen, wall seconds spent training). */
  counters: { tokens: number; trainSeconds: number };
  /** The last logged loss per supervised step, so an export after a resume records it too (absent in older
   * checkpoints: the trainer then reads it back from the run's metrics.jsonl). */
  lastLoss?: Record<string, number>;
  /** The validated config of the run; resume refuses a different one. */
  config: unknown;
  /** Fingerprint of the training pairs, so a resume on changed data fails loudly instead of silently drifting. */
  dataFingerprint: string;
  savedAt: string;
}

interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
  length: number;
}

const CKPT_DIR = "checkpoints";
const PREFIX = "step-";

function checkpointName(step: number): string {
  return `${PREFIX}${String(step).padStart(8, "0")}`;
}

/** Saves tensors (params under "param.", moments under "adam.m." / "adam.v.") and state; prunes to the last `keep`. */
export async function saveCheckpoint(
  runDir: string,
  state: CheckpointState,
  tensors: Record<string, tf.Tensor>,
  keep: number,
): Promise<string> {
  const root = path.join(runDir, CKPT_DIR);
  await mkdir(root, { recursive: true });
  const entries: TensorEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const data = (await t.data()) as Float32Array;
    entries.push({ name, shape: [...t.shape], offset, length: data.length });
    chunks.push(data);
    offset += data.length;
  }
  const blob = new Float32Array(offset);
  let at = 0;
  for (const c of chunks) {
    blob.set(c, at);
    at += c.length;
  }
  const finalDir = path.join(root, checkpointName(state.step));
  const tmpDir = path.join(root, `.tmp-${checkpointName(state.step)}-${process.pid}`);
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  await writeFile(path.join(tmpDir, "tensors.bin"), new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength));
  await writeFile(path.join(tmpDir, "state.json"), JSON.stringify({ ...state, tensors: entries }, null, 1));
  await rm(finalDir, { recursive: true, force: true });
  await rename(tmpDir, finalDir);
  const all = await listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) {
    await rm(path.join(root, old), { recursive: true, force: true });
  }
  return finalDir;
}

/** Checkpoint directory names, oldest first. */
export async function listCheckpoints(runDir: string): Promise<string[]> {
  try {
    const names = await readdir(path.join(runDir, CKPT_DIR));
    return names.filter((n) => /^step-\d{8}$/.test(n)).sort();
  } catch {
    return [];
  }
}

export interface LoadedCheckpoint {
  dir: string;
  state: CheckpointState;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const raw = JSON.parse(await readFile(path.join(dir, "state.json"), "utf8")) as CheckpointState & { tensors: TensorEntry[] };
  if (raw.format !== "taesr-train-checkpoint/1") throw new Error(`${dir}: unknown checkpoint format ${String(raw.format)}`);
  const bytes = await readFile(path.join(dir, "tensors.bin"));
  // Copy into an aligned buffer: Buffer slices from readFile may start at an offset not divisible by 4.
  const all = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(all.buffer).set(bytes);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of raw.tensors) tensors.set(e.name, { shape: e.shape, data: all.subarray(e.offset, e.offset + e.length) });
  const { tensors: _entries, ...state } = raw;
  return { dir, state, tensors };
}

/** The newest checkpoint of a run, or undefined when it has none. */
export async function loadLatestCheckpoint(runDir: string): Promise<LoadedCheckpoint | undefined> {
  const all = await listCheckpoints(runDir);
  const last = all[all.length - 1];
  return last ? loadCheckpoint(path.join(runDir, CKPT_DIR, last)) : undefined;
}

/** Assigns saved values to variables by name; every variable must be present with the same shape. */
export function restoreVariables(
  loaded: LoadedCheckpoint,
  prefix: string,
  variables: Record<string, tf.Variable>,
): void {
  for (const [name, variable] of Object.entries(variables)) {
    const saved = loaded.tensors.get(prefix + name);
    if (!saved) throw new Error(`${loaded.dir}: checkpoint has no tensor ${prefix + name}`);
    if (saved.shape.join(",") !== variable.shape.join(",")) {
      throw new Error(`${loaded.dir}: ${prefix + name} has shape [${saved.shape}] but the model wants [${variable.shape}]`);
    }
    tf.tidy(() => variable.assign(tf.tensor(saved.data, variable.shape, "float32")));
  }
}

/**
 * On-disk cache of a peer's embeddings, so that a second evaluation run does not re-embed a corpus (USE-Lite manages
 * ~10–20 docs/s here: minutes for SciFact). One entry is two files in the cache directory (bench/out/, gitignored):
 *
 *   <name>-<key prefix>.f32   the vectors, row-major little-endian float32, count × dims
 *   <name>-<key prefix>.json  the sidecar: format, key, model, dims, count, sha256 of the .f32, embedding time
 *
 * The key is sha256 over the model name, its width and every text, so a different model, corpus or text order lands in
 * a different entry and can never be served stale. On read, everything in the sidecar is checked against the request
 * and against the binary (length and checksum); any mismatch or damage means the entry is recomputed and rewritten.
 * The binary is written before the sidecar and both via rename, so a run killed mid-write leaves no valid-looking entry.
 *
 * @module
 * @example
 *   const { vectors, fromCache } = await cachedEmbed(peer, corpus.map(documentText), "scifact-corpus");
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sha256Hex } from "../../src/digest.js";
import type { PeerTextEncoder } from "./types.js";

/** bench/out/cache, wherever the process was started from. */
export const DEFAULT_CACHE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../out/cache");

const FORMAT = "peer-embeddings/1";

interface Sidecar {
  format: typeof FORMAT;
  key: string;
  model: string;
  dims: number;
  count: number;
  sha256: string;
  /** Wall time the peer took to embed the texts when the entry was computed; lets a cached run still report docs/s. */
  embedSeconds: number;
}

export interface CachedEmbeddings {
  /** One unit-length vector per text, in input order (views into one shared buffer). */
  vectors: Float32Array[];
  fromCache: boolean;
  /** Seconds the peer spent embedding these texts — in this run, or in the run that filled the cache. */
  embedSeconds: number;
  /** The binary file of the entry. */
  file: string;
}

export interface CacheOptions {
  /** Called after every chunk embedded on a cache miss (not called on a hit). */
  onProgress?(done: number, total: number): void;
  /** Texts per `peer.embed` call on a miss, i.e. the progress granularity. Default 128. */
  chunkSize?: number;
}

/** sha256 over the model name, width and every text, JSON-encoded so that no two different requests share a key. */
export async function embeddingCacheKey(peer: Pick<PeerTextEncoder, "name" | "dims">, texts: readonly string[]): Promise<string> {
  return sha256Hex(JSON.stringify([FORMAT, peer.name, peer.dims, texts]));
}

function slug(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  if (!cleaned) throw new RangeError(`cache name "${name}" has no usable characters (letters, digits, . _ -)`);
  return cleaned;
}

/** The cached vectors when the entry is present, intact and made for exactly this request; otherwise why not. */
async function readEntry(binFile: string, jsonFile: string, expected: Omit<Sidecar, "sha256" | "embedSeconds">): Promise<{ vectors: Float32Array[]; embedSeconds: number } | string> {
  let sidecar: Partial<Sidecar>;
  let bytes: Buffer;
  try {
    sidecar = JSON.parse(await readFile(jsonFile, "utf8")) as Partial<Sidecar>;
    bytes = await readFile(binFile);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" ? "no entry" : `unreadable entry (${(error as Error).message})`;
  }
  for (const field of ["format", "key", "model", "dims", "count"] as const) {
    if (sidecar[field] !== expected[field]) return `sidecar ${field} is ${JSON.stringify(sidecar[field])}, expected ${JSON.stringify(expected[field])}`;
  }
  const byteLength = expected.count * expected.dims * Float32Array.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== byteLength) return `binary has ${bytes.byteLength} bytes, expected ${byteLength}`;
  if ((await sha256Hex(bytes)) !== sidecar.sha256) return "binary checksum does not match the sidecar";
  // Copy into a fresh, aligned ArrayBuffer (a Buffer may sit at any offset of a pooled one).
  const matrix = new Float32Array(expected.count * expected.dims);
  new Uint8Array(matrix.buffer).set(bytes);
  const vectors = Array.from({ length: expected.count }, (_, row) => matrix.subarray(row * expected.dims, (row + 1) * expected.dims));
  return { vectors, embedSeconds: typeof sidecar.embedSeconds === "number" ? sidecar.embedSeconds : Number.NaN };
}

/** Writes via a temporary name and rename, so a reader never sees a half-written file. */
async function writeAtomically(file: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, data);
  await rename(temporary, file);
}

/**
 * `peer.embed(texts)`, served from the cache when an intact entry for this exact model and text list exists, otherwise
 * computed (in chunks, reporting progress) and stored. `name` is a readable label for the files, e.g. "scifact-corpus".
 * Little-endian hosts only (every platform Node runs on in practice).
 */
export async function cachedEmbed(
  peer: PeerTextEncoder,
  texts: readonly string[],
  name: string,
  dir: string = DEFAULT_CACHE_DIR,
  options: CacheOptions = {},
): Promise<CachedEmbeddings> {
  const chunkSize = options.chunkSize ?? 128;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  const key = await embeddingCacheKey(peer, texts);
  const base = path.join(dir, `${slug(name)}-${key.slice(0, 16)}`);
  const binFile = `${base}.f32`;
  const jsonFile = `${base}.json`;
  const expected = { format: FORMAT, key, model: peer.name, dims: peer.dims, count: texts.length } as const;

  const cached = await readEntry(binFile, jsonFile, expected);
  if (typeof cached !== "string") return { ...cached, fromCache: true, file: binFile };
  if (cached !== "no entry") process.emitWarning(`embedding cache ${binFile}: ${cached}; recomputing`, { code: "EMBEDDING_CACHE_INVALID" });

  const matrix = new Float32Array(texts.length * peer.dims);
  const started = performance.now();
  for (let start = 0; start < texts.length; start += chunkSize) {
    const chunk = texts.slice(start, start + chunkSize);
    const vectors = await peer.embed(chunk);
    if (vectors.length !== chunk.length) throw new Error(`${peer.name} returned ${vectors.length} vectors for ${chunk.length} texts`);
    vectors.forEach((vector, offset) => {
      if (vector.length !== peer.dims) throw new Error(`${peer.name} returned a ${vector.length}-d vector, expected ${peer.dims}`);
      matrix.set(vector, (start + offset) * peer.dims);
    });
    options.onProgress?.(start + chunk.length, texts.length);
  }
  const embedSeconds = (performance.now() - started) / 1000;

  const bytes = new Uint8Array(matrix.buffer);
  const sidecar: Sidecar = { ...expected, sha256: await sha256Hex(bytes), embedSeconds };
  await mkdir(dir, { recursive: true });
  await writeAtomically(binFile, bytes);
  await writeAtomically(jsonFile, `${JSON.stringify(sidecar, null, 2)}\n`);
  const vectors = Array.from({ length: texts.length }, (_, row) => matrix.subarray(row * peer.dims, (row + 1) * peer.dims));
  return { vectors, fromCache: false, embedSeconds, file: binFile };
}

/**
 * Writes a versioned TAESR artifact directory: tokenizer, fp32, int8 and int4 ONNX graphs, and manifest.json.
 *
 *   <outDir>/<name>@<version>/
 *     tokenizer.json
 *     fp32/embed.onnx  fp32/step.onnx
 *     int8/embed.onnx  int8/step.onnx
 *     int4/embed.onnx                  (4-bit token table; the int4 variant runs int8/step.onnx)
 *     fp32/sparse.onnx int8/sparse.onnx (only with arch.sparseHead: the SPLADE-style head; int4 runs the int8 one)
 *     fp32/late.onnx   int8/late.onnx   (only with arch.lateHead: the late-interaction head; int4 runs the int8 one)
 *     manifest.json    (ArtifactManifest of src/model/spec.ts: sha256 + byte length of every other file)
 *
 * A published version is immutable: exporting into an existing version directory fails unless `force` is set. The
 * directory is assembled under a temporary name beside the target and renamed into place, so a crash never leaves a
 * half-written version that looks complete.
 *
 * @example
 *   const { dir, manifest } = await exportArtifact({ outDir: "../model-artifacts", name: "taesr-edge", version: "0.1.0",
 *     arch, weights, tokenizerJson, router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 24 },
 *     earlyExitEpsilon: 1e-3, training: {...}, eval: {...} });
 *
 * @module
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  blockOf,
  hasLateHead,
  hasSparseHead,
  MODEL_VARIANTS,
  weightNames,
  weightNamesIn,
  weightShapes,
  type ArtifactManifest,
  type RouterRule,
  type TaesrArchitecture,
  type VariantGraphs,
  type WeightName,
} from "../../../src/model/spec.js";
import { parameterCount } from "../model/params.js";
import { buildEmbedGraph, buildLateGraph, buildSparseGraph, buildStepGraph, VARIANT_GRAPHS, type Variant } from "../onnx/taesr-graphs.js";
import { pathExists } from "../path-exists.js";

export interface ExportArtifactOptions {
  outDir: string;
  name: string;
  version: string;
  arch: TaesrArchitecture;
  weights: Record<WeightName, Float32Array>;
  /** The tokenizer as JSON text or as the object to serialise. */
  tokenizerJson: string | object;
  router: RouterRule;
  earlyExitEpsilon: number;
  training: Record<string, unknown>;
  eval: Record<string, unknown>;
  /** The manifest's `adaptation` record, for a model fine-tuned from another artifact on a user's corpus. */
  adaptation?: Record<string, unknown>;
  /** The manifest's `retrieval` record (e.g. the document depth a run trained its documents at). */
  retrieval?: ArtifactManifest["retrieval"];
  /** Replace an existing version directory (default: refuse). */
  force?: boolean;
  /** Timestamp to record (default: now); fixed in tests for reproducible manifests. */
  createdAt?: string;
}

export interface ExportedArtifact {
  dir: string;
  manifest: ArtifactManifest;
}

export const MANIFEST_FILE = "manifest.json";
export const TOKENIZER_FILE = "tokenizer.json";
const VARIANTS: readonly Variant[] = MODEL_VARIANTS;

/**
 * A variant's graph paths in the artifact: each graph lives in the folder of the build it runs (VARIANT_GRAPHS), so a
 * graph two variants share is stored once (int4 runs int8/step.onnx; int8w runs int8/embed.onnx and int8/sparse.onnx).
 * Without heads the entry is exactly what it was before the heads existed.
 */
export function variantPaths(variant: Variant, arch: Pick<TaesrArchitecture, "sparseHead" | "lateHead"> = {}): VariantGraphs {
  const builds = VARIANT_GRAPHS[variant];
  const paths: VariantGraphs = { embed: `${builds.embed}/embed.onnx`, step: `${builds.step}/step.onnx` };
  if (hasSparseHead(arch)) paths.sparse = `${builds.sparse}/sparse.onnx`;
  if (hasLateHead(arch)) paths.late = `${builds.late}/late.onnx`;
  return paths;
}

/** Names and versions become one path segment: keep them to a safe alphabet. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export function artifactDirName(name: string, version: string): string {
  return `${name}@${version}`;
}

/**
 * The version the next export of `name` into `outDir` gets: the minor after the highest existing `<name>@x.y.z`
 * (pre-release and build suffixes count as their x.y.z, so an experiment's 0.2.0-exp also takes 0.2), or 0.1.0 when
 * there is none. Every export is a new, immutable version; exportArtifact still refuses to overwrite if two runs race.
 */
export async function nextMinorVersion(outDir: string, name: string): Promise<string> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch {
    return "0.1.0";
  }
  let best: [number, number] | undefined;
  const prefix = `${name}@`;
  for (const entry of entries) {
    if (!entry.startsWith(prefix)) continue;
    const m = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(entry.slice(prefix.length));
    if (!m) continue;
    const v: [number, number] = [Number(m[1]), Number(m[2])];
    if (!best || v[0] > best[0] || (v[0] === best[0] && v[1] > best[1])) best = v;
  }
  return best ? `${best[0]}.${best[1] + 1}.0` : "0.1.0";
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function checkWeights(arch: TaesrArchitecture, weights: Record<WeightName, Float32Array>): void {
  const shapes = weightShapes(arch);
  const names = weightNames(arch);
  const foreign = weightNamesIn(weights).filter((n) => !names.includes(n));
  if (foreign.length > 0) throw new Error(`exportArtifact: weights ${foreign.join(", ")} do not belong to a ${blockOf(arch)} model`);
  for (const name of names) {
    const w = weights[name];
    const size = shapes[name].reduce((p, d) => p * d, 1);
    if (!w) throw new Error(`exportArtifact: weight ${name} is missing`);
    if (w.length !== size) throw new Error(`exportArtifact: weight ${name} has ${w.length} values, shape [${shapes[name].join(",")}] needs ${size}`);
    for (let i = 0; i < w.length; i++) {
      if (!Number.isFinite(w[i]!)) throw new Error(`exportArtifact: weight ${name} has a non-finite value at ${i}`);
    }
  }
}

/** Builds every file of the artifact in memory (relative POSIX path → bytes), manifest excluded. */
export function buildArtifactFiles(options: Pick<ExportArtifactOptions, "arch" | "weights" | "tokenizerJson" | "name" | "version">): Map<string, Uint8Array> {
  const { arch, weights, name, version } = options;
  const files = new Map<string, Uint8Array>();
  const tokenizerText = typeof options.tokenizerJson === "string" ? options.tokenizerJson : JSON.stringify(options.tokenizerJson);
  files.set(TOKENIZER_FILE, new TextEncoder().encode(tokenizerText));
  const metadata = { "taesr.name": name, "taesr.version": version };
  for (const variant of VARIANTS) {
    const paths = variantPaths(variant, arch);
    const builds = VARIANT_GRAPHS[variant];
    // A graph shared by two variants is built once.
    if (!files.has(paths.embed)) files.set(paths.embed, buildEmbedGraph(arch, weights, builds.embed, { metadata }));
    if (!files.has(paths.step)) files.set(paths.step, buildStepGraph(arch, weights, builds.step, { metadata }));
    if (paths.sparse && !files.has(paths.sparse)) files.set(paths.sparse, buildSparseGraph(arch, weights, builds.sparse, { metadata }));
    if (paths.late && !files.has(paths.late)) files.set(paths.late, buildLateGraph(arch, weights, builds.late, { metadata }));
  }
  return files;
}

/** Exports the artifact (see module comment). Returns its directory and manifest. */
export async function exportArtifact(options: ExportArtifactOptions): Promise<ExportedArtifact> {
  const { outDir, name, version, arch } = options;
  if (!SEGMENT.test(name)) throw new Error(`exportArtifact: invalid artifact name ${JSON.stringify(name)}`);
  if (!SEGMENT.test(version)) throw new Error(`exportArtifact: invalid version ${JSON.stringify(version)}`);
  checkWeights(arch, options.weights);

  const dir = path.join(outDir, artifactDirName(name, version));
  if ((await pathExists(dir)) && !options.force) {
    throw new Error(`exportArtifact: ${dir} already exists; a published version is immutable (bump the version or pass force)`);
  }

  const files = buildArtifactFiles(options);
  const manifest: ArtifactManifest = {
    format: "taesr-artifact/1",
    name,
    version,
    createdAt: options.createdAt ?? new Date().toISOString(),
    architecture: arch,
    files: Object.fromEntries(
      [...files.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([rel, bytes]) => [rel, { sha256: sha256Hex(bytes), bytes: bytes.byteLength }]),
    ),
    tokenizer: TOKENIZER_FILE,
    variants: { fp32: variantPaths("fp32", arch), int8: variantPaths("int8", arch), int4: variantPaths("int4", arch), int8w: variantPaths("int8w", arch) },
    parameters: parameterCount(arch),
    router: options.router,
    earlyExitEpsilon: options.earlyExitEpsilon,
    ...(options.adaptation ? { adaptation: options.adaptation } : {}),
    ...(options.retrieval ? { retrieval: options.retrieval } : {}),
    training: options.training,
    eval: options.eval,
  };

  await mkdir(outDir, { recursive: true });
  const staging = path.join(outDir, `.${artifactDirName(name, version)}.tmp-${process.pid}-${Date.now()}`);
  try {
    for (const [rel, bytes] of files) {
      const target = path.join(staging, ...rel.split("/"));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, bytes);
    }
    await writeFile(path.join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
    if (await pathExists(dir)) {
      // Only reachable with force (checked above).
      await rm(dir, { recursive: true, force: true });
    }
    await rename(staging, dir);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return { dir, manifest };
}

async function listFiles(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(root, child)));
    else out.push(child);
  }
  return out;
}

/**
 * Re-reads an artifact directory and checks it against its manifest: every listed file present with the recorded byte
 * length and sha256, and no unlisted file besides manifest.json. Returns the manifest.
 */
export async function verifyArtifactDir(dir: string): Promise<ArtifactManifest> {
  const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), "utf8")) as ArtifactManifest;
  const onDisk = new Set(await listFiles(dir));
  onDisk.delete(MANIFEST_FILE);
  for (const [rel, expected] of Object.entries(manifest.files)) {
    if (!onDisk.has(rel)) throw new Error(`${dir}: ${rel} is listed in the manifest but missing`);
    onDisk.delete(rel);
    const bytes = await readFile(path.join(dir, ...rel.split("/")));
    if (bytes.byteLength !== expected.bytes) throw new Error(`${dir}: ${rel} has ${bytes.byteLength} bytes, manifest says ${expected.bytes}`);
    const sha = sha256Hex(bytes);
    if (sha !== expected.sha256) throw new Error(`${dir}: ${rel} has sha256 ${sha}, manifest says ${expected.sha256}`);
  }
  if (onDisk.size > 0) throw new Error(`${dir}: files not listed in the manifest: ${[...onDisk].join(", ")}`);
  return manifest;
}

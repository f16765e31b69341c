/**
 * Adds a variant to an existing artifact from its fp32 graphs: int4 (4-bit token table, src/model/int4-table.ts) and
 * int8w (int8 weights, float arithmetic in the step graph) for artifacts exported before they existed. The fp32 graphs
 * hold the trained weights exactly (src/model/onnx-weights.ts reads them back), so no training checkpoint is needed and
 * the result is the graph a fresh export of the same weights writes.
 *
 * Only additions: the variant's graphs the artifact already lists are shared (int4 runs int8/step.onnx, int8w runs
 * int8/embed.onnx and int8/sparse.onnx); the others are built into files no earlier export wrote, and the manifest gains
 * their sha256s, the variant's paths and an `eval.variants.<variant>` record of the graph sizes. Every existing file
 * stays byte for byte what it was, so everything that loaded the artifact before loads it identically. One line goes
 * to the artifacts directory's CHANGELOG.md, when there is one.
 *
 * @example
 *   const added = await addVariant("model-artifacts/taesr-edge-small@0.3.0", "int8w");
 *   console.log(added.files, added.bytes); // ["int8w/step.onnx"], { fp32, int8, int8w } graph bytes per variant
 *
 * @module
 */
import { readFile, rm, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { appendChangelogLine } from "../../../src/model/changelog.js";
import { parseManifest, variantGraphs, type ArtifactVariant } from "../../../src/model/manifest.js";
import { readOnnxInitializers } from "../../../src/model/onnx-weights.js";
import type { ArtifactManifest } from "../../../src/model/spec.js";
import { loadArtifactWeights } from "../model/artifact-weights.js";
import { buildEmbedGraph, buildLateGraph, buildSparseGraph, buildStepGraph, VARIANT_GRAPHS, type Weights } from "../onnx/taesr-graphs.js";
import { MANIFEST_FILE, sha256Hex, variantPaths } from "./artifact.js";
import { pathExists } from "../path-exists.js";

/** Variants this tool can add: those that came after the first artifacts (fp32 and int8 are in every one). */
export const ADDABLE_VARIANTS = ["int4", "int8w"] as const;
export type AddableVariant = (typeof ADDABLE_VARIANTS)[number];

/** What each added variant changes, for the CHANGELOG line. */
const VARIANT_SUMMARY: Record<AddableVariant, string> = {
  int4: "4-bit token table, int8 block",
  int8w: "int8 weights, float arithmetic in the block",
};

/** Bytes per element of the ONNX data types the graphs use (TensorProto.DataType code → size). */
const ELEMENT_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8, 10: 2 };
const DATA_TYPE_NAMES: Record<number, string> = { 1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16" };

/** One initializer's stored size, for the per-tensor breakdown. */
export interface TensorBytes {
  name: string;
  dataType: string;
  dims: number[];
  bytes: number;
}

/** Initializers of a graph by stored payload size, largest first (what the file's size is made of). */
export function initializerBytes(model: Uint8Array, what = "ONNX model"): TensorBytes[] {
  return readOnnxInitializers(model, what)
    .map((t) => ({
      name: t.name,
      dataType: DATA_TYPE_NAMES[t.dataType] ?? String(t.dataType),
      dims: t.dims,
      bytes: t.rawData?.byteLength ?? (t.floatData?.length ?? 0) * (ELEMENT_BYTES[t.dataType] ?? 4),
    }))
    .sort((a, b) => b.bytes - a.bytes);
}

/** Bytes of a variant's two graphs as the manifest lists them (the tokenizer, the same for all, not included). */
export function variantGraphBytes(manifest: ArtifactManifest, variant: ArtifactVariant): number {
  const { embed, step } = variantGraphs(manifest, variant);
  return [embed, step].reduce((total, file) => total + (manifest.files[file]?.bytes ?? 0), 0);
}

export interface AddVariantOptions {
  /** ISO date for the CHANGELOG line (default: today). */
  date?: string;
  /** The command to quote in the CHANGELOG line. */
  command?: string;
}

export interface AddedVariant {
  dir: string;
  variant: AddableVariant;
  /** The new files (relative paths); the variant's other graphs were listed already. */
  files: string[];
  /** Graph bytes per variant after the addition. */
  bytes: Partial<Record<ArtifactVariant, number>>;
  /** Each new graph's initializers, largest first. */
  tensors: Record<string, TensorBytes[]>;
  changelog: string | null;
  line: string;
}

/**
 * Adds `variant` to the artifact in `dir` (see the module comment).
 * @throws Error when the variant is unknown or already present, a file is in the way, or the fp32 graphs fail their
 *   sha256 check (a corrupted graph must not become a new variant).
 */
export async function addVariant(dir: string, variant: string, options: AddVariantOptions = {}): Promise<AddedVariant> {
  if (!(ADDABLE_VARIANTS as readonly string[]).includes(variant)) {
    throw new Error(`cannot add variant ${JSON.stringify(variant)}: only ${ADDABLE_VARIANTS.join(", ")} can be added to an existing artifact`);
  }
  const added = variant as AddableVariant;
  const manifestPath = path.join(dir, MANIFEST_FILE);
  const { architecture, weights, manifest } = await loadArtifactWeights(dir);
  if (manifest.variants[added]) throw new Error(`${manifest.name}@${manifest.version} already has the ${added} variant (${manifest.variants[added].embed})`);
  const paths = variantPaths(added, architecture);
  const builds = VARIANT_GRAPHS[added];
  const metadata = { "taesr.name": manifest.name, "taesr.version": manifest.version };
  const build: Record<keyof typeof paths, (w: Weights) => Uint8Array> = {
    embed: (w) => buildEmbedGraph(architecture, w, builds.embed, { metadata }),
    step: (w) => buildStepGraph(architecture, w, builds.step, { metadata }),
    sparse: (w) => buildSparseGraph(architecture, w, builds.sparse, { metadata }),
    late: (w) => buildLateGraph(architecture, w, builds.late, { metadata }),
  };
  // A graph the manifest lists is shared as it is; a graph it does not list is built, into a file nobody wrote.
  const built = new Map<string, Uint8Array>();
  for (const [kind, rel] of Object.entries(paths) as Array<[keyof typeof paths, string]>) {
    if (rel in manifest.files || built.has(rel)) continue;
    const target = path.join(dir, ...rel.split("/"));
    if (await pathExists(target)) throw new Error(`${target} exists but is not in the manifest; remove it or check where it came from`);
    built.set(rel, build[kind](weights));
  }

  // Edit the manifest as JSON text → object, keeping every field (validated or not) and its order; files stay sorted.
  const raw = JSON.parse(await readFile(manifestPath, "utf8")) as Record<string, unknown> & {
    files: Record<string, unknown>;
    variants: Record<string, unknown>;
    eval?: Record<string, unknown>;
  };
  raw.files = Object.fromEntries(
    [...Object.entries(raw.files), ...[...built].map(([rel, bytes]) => [rel, { sha256: sha256Hex(bytes), bytes: bytes.byteLength }] as const)].sort(([a], [b]) =>
      a.localeCompare(b),
    ),
  );
  raw.variants = { ...raw.variants, [added]: paths };
  const updated = parseManifest(raw);
  const bytes: Partial<Record<ArtifactVariant, number>> = {};
  for (const v of ["fp32", "int8", added] as const) bytes[v] = variantGraphBytes(updated, v);
  const evalRecord = raw.eval ?? {};
  const variantsRecord = (typeof evalRecord["variants"] === "object" && evalRecord["variants"] !== null ? evalRecord["variants"] : {}) as Record<string, unknown>;
  raw.eval = {
    ...evalRecord,
    variants: {
      ...variantsRecord,
      [added]: {
        addedFrom: "fp32 graphs (training/src/export/add-variant.ts)",
        graphBytes: bytes[added],
        fp32GraphBytes: bytes.fp32,
        smallerThanFp32: Math.round((bytes.fp32! / bytes[added]!) * 100) / 100,
      },
    },
  };
  parseManifest(raw); // the final manifest must still validate

  const written: string[] = [];
  try {
    for (const [rel, bytes] of built) {
      const target = path.join(dir, ...rel.split("/"));
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, bytes);
      written.push(target);
    }
    await writeFile(manifestPath, JSON.stringify(raw, null, 2) + "\n");
  } catch (err) {
    // The manifest is the commit point: without it, the new files must not be left behind as strays.
    await Promise.all(written.map((target) => rm(target, { force: true })));
    throw err;
  }

  const ratio = (bytes.fp32! / bytes[added]!).toFixed(2);
  const line =
    `- variant added: ${manifest.name}@${manifest.version}, ${options.date ?? new Date().toISOString().slice(0, 10)} — ${added} ` +
    `(${paths.embed} + ${paths.step}: ${VARIANT_SUMMARY[added]}) ${bytes[added]!.toLocaleString("en-US")} B of graphs, ` +
    `${ratio}× smaller than fp32 (${bytes.fp32!.toLocaleString("en-US")} B; int8 ${bytes.int8!.toLocaleString("en-US")} B); ` +
    `existing files unchanged (\`${options.command ?? `npm run export -- --add-variant ${added} --artifact ${dir}`}\`)`;
  const changelogPath = path.join(path.dirname(path.resolve(dir)), "CHANGELOG.md");
  const hasChangelog = await pathExists(changelogPath);
  if (hasChangelog) await writeFile(changelogPath, appendChangelogLine(await readFile(changelogPath, "utf8"), line));
  return {
    dir,
    variant: added,
    files: [...built.keys()],
    bytes,
    tensors: Object.fromEntries([...built].map(([rel, bytes]) => [rel, initializerBytes(bytes, rel)])),
    changelog: hasChangelog ? changelogPath : null,
    line,
  };
}

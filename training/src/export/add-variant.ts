/**
 * Adds a variant to an existing artifact from its fp32 graphs: today the int4 variant (4-bit token table,
 * src/model/int4-table.ts) for artifacts exported before it existed. The fp32 graphs hold the trained weights exactly
 * (src/model/onnx-weights.ts reads them back), so no training checkpoint is needed and the result is the graph a fresh
 * export of the same weights writes.
 *
 * Only additions: the new graph gets a file no earlier export wrote (`int4/embed.onnx`; its step graph is the
 * artifact's int8/step.onnx, already listed), and the manifest gains that file's sha256, the variant's paths and an
 * `eval.variants.<variant>` record of the graph sizes. Every existing file stays byte for byte what it was, so
 * everything that loaded the artifact before loads it identically. One line goes to the artifacts directory's
 * CHANGELOG.md, when there is one.
 *
 * @example
 *   const added = await addVariant("model-artifacts/taesr-edge-small@0.2.0", "int4");
 *   console.log(added.bytes); // { fp32, int8, int4 } graph bytes per variant
 *
 * @module
 */
import { access, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { appendChangelogLine } from "../../../src/model/changelog.js";
import { parseManifest, variantGraphs, type ArtifactVariant } from "../../../src/model/manifest.js";
import { readOnnxInitializers } from "../../../src/model/onnx-weights.js";
import type { ArtifactManifest } from "../../../src/model/spec.js";
import { loadArtifactWeights } from "../model/artifact-weights.js";
import { buildEmbedGraph } from "../onnx/taesr-graphs.js";
import { MANIFEST_FILE, sha256Hex, variantPaths } from "./artifact.js";

/** Variants this tool can add: those whose graphs are built from the float weights alone and share a listed step graph. */
export const ADDABLE_VARIANTS = ["int4"] as const;
export type AddableVariant = (typeof ADDABLE_VARIANTS)[number];

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
  /** The new file (relative path) and its bytes. */
  file: string;
  /** Graph bytes per variant after the addition. */
  bytes: Partial<Record<ArtifactVariant, number>>;
  /** The new embed graph's initializers, largest first. */
  tensors: TensorBytes[];
  changelog: string | null;
  line: string;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
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
  if (!(paths.step in manifest.files)) {
    throw new Error(`${manifest.name}@${manifest.version} does not list ${paths.step}, the step graph the ${added} variant runs`);
  }
  if (paths.embed in manifest.files) throw new Error(`${manifest.name}@${manifest.version} already lists ${paths.embed}`);
  const target = path.join(dir, ...paths.embed.split("/"));
  if (await exists(target)) throw new Error(`${target} exists but is not in the manifest; remove it or check where it came from`);

  const metadata = { "taesr.name": manifest.name, "taesr.version": manifest.version };
  const embed = buildEmbedGraph(architecture, weights, added, { metadata });

  // Edit the manifest as JSON text → object, keeping every field (validated or not) and its order; files stay sorted.
  const raw = JSON.parse(await readFile(manifestPath, "utf8")) as Record<string, unknown> & {
    files: Record<string, unknown>;
    variants: Record<string, unknown>;
    eval?: Record<string, unknown>;
  };
  raw.files = Object.fromEntries(
    [...Object.entries(raw.files), [paths.embed, { sha256: sha256Hex(embed), bytes: embed.byteLength }] as const].sort(([a], [b]) => a.localeCompare(b)),
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

  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, embed);
  try {
    await writeFile(manifestPath, JSON.stringify(raw, null, 2) + "\n");
  } catch (err) {
    await rm(target, { force: true });
    throw err;
  }

  const ratio = (bytes.fp32! / bytes[added]!).toFixed(2);
  const line =
    `- variant added: ${manifest.name}@${manifest.version}, ${options.date ?? new Date().toISOString().slice(0, 10)} — ${added} ` +
    `(${paths.embed} + ${paths.step}: 4-bit token table, int8 block) ${bytes[added]!.toLocaleString("en-US")} B of graphs, ` +
    `${ratio}× smaller than fp32 (${bytes.fp32!.toLocaleString("en-US")} B; int8 ${bytes.int8!.toLocaleString("en-US")} B); ` +
    `existing files unchanged (\`${options.command ?? `npm run export -- --add-variant ${added} --artifact ${dir}`}\`)`;
  const changelogPath = path.join(path.dirname(path.resolve(dir)), "CHANGELOG.md");
  const hasChangelog = await exists(changelogPath);
  if (hasChangelog) await writeFile(changelogPath, appendChangelogLine(await readFile(changelogPath, "utf8"), line));
  return {
    dir,
    variant: added,
    file: paths.embed,
    bytes,
    tensors: initializerBytes(embed, paths.embed),
    changelog: hasChangelog ? changelogPath : null,
    line,
  };
}

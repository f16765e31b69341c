/**
 * The model side of the evaluation: a TAESR artifact directory opened once (manifest, tokenizer, one encoder per
 * variant on onnxruntime-node, created on first use), its size as shipped, and which retrieval heads it has.
 *
 * Heads: every artifact has the dense head (the pooled, projected embedding) and token vectors for late interaction
 * (its trained late-interaction head's late.onnx when architecture.lateHead is set, else a stand-in from the last
 * hidden state; see src/model/encoder.ts). A sparse (SPLADE-style) head is a separate graph that an artifact
 * declares (architecture.sparseHead, variants.*.sparse); for an artifact without one `--mode sparse` stops with a
 * message that names the artifact instead of printing a number it did not measure. The declaration is looked for in the
 * raw manifest.json too, so a hand-written or foreign declaration is named rather than ignored.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { TaesrEncoder, variantGraphs, type ArtifactManifest, type ArtifactVariant, type RouterSpec } from "../../src/model/index.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { readArtifactDir, type ArtifactOnDisk } from "../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

export interface EvalModel {
  dir: string;
  /** "name@version". */
  label: string;
  manifest: ArtifactManifest;
  /** manifest.json as written (unvalidated fields included), for head declarations the validator does not know. */
  rawManifest: Record<string, unknown>;
  tokenizer: WordPieceTokenizer;
  /** The encoder of a variant, created (and its files verified) on first use. */
  encoder(variant: ArtifactVariant): Promise<TaesrEncoder>;
  release(): Promise<void>;
}

/**
 * `router`: what depth "auto" routes by instead of the manifest's own router (`npm run eval -- --router`), given the
 * validated manifest. The manifest is outside its sha256 list, so this changes no verified file.
 */
export async function openModel(
  dir: string,
  variants: readonly ArtifactVariant[],
  options: { router?: (manifest: ArtifactManifest) => RouterSpec } = {},
): Promise<EvalModel> {
  const opened: ArtifactOnDisk = await readArtifactDir(dir, variants);
  const artifact = options.router ? { ...opened, manifest: { ...opened.manifest, router: options.router(opened.manifest) } } : opened;
  const rawManifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as Record<string, unknown>;
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const encoders = new Map<ArtifactVariant, Promise<TaesrEncoder>>();
  return {
    dir,
    label: `${artifact.manifest.name}@${artifact.manifest.version}`,
    manifest: artifact.manifest,
    rawManifest,
    tokenizer,
    encoder(variant) {
      if (!variants.includes(variant)) throw new Error(`the ${variant} variant was not loaded (loaded: ${variants.join(", ")})`);
      let encoder = encoders.get(variant);
      if (!encoder) {
        encoder = TaesrEncoder.create({ ort: ortNode, manifest: artifact.manifest, files: artifact.files, variant, tokenizer });
        encoders.set(variant, encoder);
      }
      return encoder;
    },
    async release() {
      for (const encoder of encoders.values()) await (await encoder).release();
      encoders.clear();
    },
  };
}

/** Bytes a deployment of one variant ships: its two graphs and the tokenizer, as the manifest lists them. */
export function artifactBytes(manifest: ArtifactManifest, variant: ArtifactVariant): number {
  const { embed, step } = variantGraphs(manifest, variant);
  return [embed, step, manifest.tokenizer].reduce((total, file) => total + (manifest.files[file]?.bytes ?? 0), 0);
}

/**
 * Where a manifest declares a sparse head, if it does: `heads.sparse`, `outputs.sparse`, or a `sparse` graph in a
 * variant. Null for every artifact so far.
 */
export function sparseHeadDeclaration(rawManifest: Record<string, unknown>): string | null {
  const has = (value: unknown, key: string) => typeof value === "object" && value !== null && key in value && (value as Record<string, unknown>)[key] != null;
  if (has(rawManifest.heads, "sparse")) return "heads.sparse";
  if (has(rawManifest.outputs, "sparse")) return "outputs.sparse";
  const variants = rawManifest.variants;
  if (typeof variants === "object" && variants !== null) {
    for (const [name, variant] of Object.entries(variants)) if (has(variant, "sparse")) return `variants.${name}.sparse`;
  }
  return null;
}

/** Why sparse retrieval cannot be evaluated with this artifact (always, for now), as one line for a person. */
export function sparseUnavailableReason(model: Pick<EvalModel, "label" | "dir" | "rawManifest">): string {
  const declared = sparseHeadDeclaration(model.rawManifest);
  if (declared) {
    return `${model.label} declares a sparse head (${declared}), but its architecture has no sparseHead: the manifest contradicts itself`;
  }
  const manifest = path.join(model.dir, "manifest.json");
  const relative = path.relative(process.cwd(), manifest);
  const shown = relative && !relative.startsWith("..") && !path.isAbsolute(relative) ? relative : manifest;
  return `${model.label} has no sparse head: ${shown} declares no sparse (SPLADE) output — train one with arch.sparseHead and training.objectives.sparse`;
}

/**
 * Model artifacts in R2, for live model updates: `models/<name>@<version>/<path>` holds the files of an artifact
 * directory (model-artifacts/<name>@<version>/), uploaded file by file through the admin API or `npm run model:publish`.
 * Only what the edge runs is needed: manifest.json, the tokenizer, and the edge variant's graphs.
 *
 * Nothing here trusts an upload: the loader (model-loader.ts) verifies every graph's sha256 against the manifest before
 * creating a session, and an activation loads the model first, so a broken artifact is refused before it can serve.
 *
 * @module
 */
import { edgeVariantFor, parseManifest, variantFiles, variantGraphs, type ArtifactManifest, type ArtifactVariant } from "../../../src/model/index.js";
import { sha256Hex } from "../../../src/digest.js";
import { MODEL_REF_PATTERN } from "./model-route.js";


const PREFIX = "models/";
export const MANIFEST_FILE = "manifest.json";

/** Why an artifact cannot be used: absent (404) or present but unusable (422). */
export class ModelArtifactError extends Error {
  constructor(
    readonly kind: "missing" | "invalid",
    message: string,
  ) {
    super(message);
    this.name = "ModelArtifactError";
  }
}

/** A file path inside an artifact: relative, `/`-separated, no `.`/`..` segments, a JSON or ONNX file. */
export function checkArtifactPath(path: string): string | undefined {
  if (path.length > 200) return "a file path is at most 200 characters";
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(path)) return `"${path}" is not a relative path of letters, digits, '.', '_', '-' and '/'`;
  if (path.split("/").some((segment) => segment === "." || segment === "..")) return `"${path}" must not contain "." or ".." segments`;
  if (!/\.(json|onnx)$/.test(path)) return `"${path}" is neither a .json nor an .onnx file: an artifact holds nothing else`;
  return undefined;
}

function keyOf(ref: string, path: string): string {
  return `${PREFIX}${ref}/${path}`;
}

export interface StoredArtifactFile {
  model: string;
  path: string;
  bytes: number;
  sha256: string;
}

/** Stores one file of an artifact (replacing it), answering its size and sha256 so the uploader can compare. */
export async function putArtifactFile(bucket: R2Bucket, ref: string, path: string, body: ArrayBuffer): Promise<StoredArtifactFile> {
  if (!MODEL_REF_PATTERN.test(ref)) throw new ModelArtifactError("invalid", `"${ref}" is not a model name@version`);
  const problem = checkArtifactPath(path);
  if (problem) throw new ModelArtifactError("invalid", problem);
  const sha256 = await sha256Hex(new Uint8Array(body));
  await bucket.put(keyOf(ref, path), body, { customMetadata: { sha256 } });
  return { model: ref, path, bytes: body.byteLength, sha256 };
}

/** The models that have a manifest in the bucket, by name@version. */
export async function listArtifacts(bucket: R2Bucket): Promise<string[]> {
  const refs: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: PREFIX, delimiter: "/", ...(cursor ? { cursor } : {}) });
    refs.push(...page.delimitedPrefixes.map((prefix) => prefix.slice(PREFIX.length, -1)));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  const withManifest = await Promise.all(refs.map(async (ref) => ((await bucket.head(keyOf(ref, MANIFEST_FILE))) ? ref : null)));
  return withManifest.filter((ref): ref is string => ref !== null).sort();
}

/** What the loader needs to build a model: the same shape as the bundled model module. */
export interface ArtifactFiles {
  manifest: ArtifactManifest;
  tokenizerJson: unknown;
  files: Record<string, Uint8Array>;
  variant: ArtifactVariant;
}

/**
 * Reads an artifact's manifest, tokenizer and the graphs of its edge variant from the bucket (src/model/manifest.ts
 * edgeVariantFor: int8w, or int8 for artifacts exported before it; `npm run model:publish` uploads the same graphs).
 * @throws ModelArtifactError naming the missing file, or what is wrong with the manifest.
 */
export async function readArtifact(bucket: R2Bucket, ref: string): Promise<ArtifactFiles> {
  const manifestObject = await bucket.get(keyOf(ref, MANIFEST_FILE));
  if (!manifestObject) throw new ModelArtifactError("missing", `no model "${ref}": its ${MANIFEST_FILE} is not in the artifact store (upload it first)`);
  let manifest: ArtifactManifest;
  let variant: ArtifactVariant;
  try {
    manifest = parseManifest(await manifestObject.text());
    variant = edgeVariantFor(manifest);
    variantGraphs(manifest, variant);
  } catch (error) {
    throw new ModelArtifactError("invalid", `model "${ref}": ${(error as Error).message}`);
  }
  if (`${manifest.name}@${manifest.version}` !== ref) {
    throw new ModelArtifactError("invalid", `the manifest uploaded as "${ref}" names ${manifest.name}@${manifest.version}`);
  }
  const paths = variantFiles(manifest, variant);
  const objects = await Promise.all(paths.map((path) => bucket.get(keyOf(ref, path))));
  const absent = paths.filter((_, i) => !objects[i]);
  if (absent.length > 0) throw new ModelArtifactError("missing", `model "${ref}" is incomplete: ${absent.join(", ")} not uploaded`);
  const files: Record<string, Uint8Array> = {};
  for (const [i, path] of paths.entries()) files[path] = new Uint8Array(await objects[i]!.arrayBuffer());
  let tokenizerJson: unknown;
  try {
    tokenizerJson = JSON.parse(new TextDecoder().decode(files[manifest.tokenizer]));
  } catch (error) {
    throw new ModelArtifactError("invalid", `model "${ref}": ${manifest.tokenizer} is not JSON (${(error as Error).message})`);
  }
  return { manifest, tokenizerJson, files, variant };
}

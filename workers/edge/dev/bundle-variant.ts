/**
 * Which variant `npm run bundle` ships: the asked one (it must be an edge variant; the artifact must have it), else the
 * one bundled.json names when the artifact has it (a chosen int4 survives switching models), else the edge's own choice
 * for the artifact (edgeVariantFor: int8w, or int8 for artifacts exported before it).
 *
 * @example
 *   bundleVariant({ manifest, previous: "int4" }); // "int4" when the artifact has it, else "int8w" or "int8"
 */
import { ARTIFACT_VARIANTS, edgeVariantFor, variantGraphs, type ArtifactManifest, type ArtifactVariant } from "../../../src/model/index.js";

/** fp32 is the origin's: 5 MB of graphs, slower on WASM. */
export const EDGE_VARIANTS: readonly ArtifactVariant[] = ARTIFACT_VARIANTS.filter((v) => v !== "fp32");

/**
 * @throws Error when `asked` is not an edge variant, or the artifact lacks it (naming `npm run export -- --add-variant`).
 */
export function bundleVariant(options: { manifest: ArtifactManifest; asked?: string | undefined; previous?: string | undefined }): ArtifactVariant {
  const { manifest, asked, previous } = options;
  if (asked !== undefined) {
    const variant = EDGE_VARIANTS.find((v) => v === asked);
    if (!variant) throw new Error(`--variant must be ${EDGE_VARIANTS.join(" or ")}, got ${JSON.stringify(asked)}`);
    variantGraphs(manifest, variant); // throws, naming the fix, when the artifact predates the variant
    return variant;
  }
  return EDGE_VARIANTS.find((v) => v === previous && manifest.variants[v]) ?? edgeVariantFor(manifest);
}

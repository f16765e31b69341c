/**
 * The artifact's manifest.json: parsing with validation, and integrity checks of the files it lists.
 *
 * A manifest is trusted by every consumer (runtime shapes, router, early exit), so it is validated structurally and for
 * consistency (Matryoshka dims end at outputDim, every referenced file is listed, …) before anything is loaded.
 * Integrity uses `crypto.subtle` (present in Workers, Node ≥ 19 and browsers), so this module stays platform-neutral.
 *
 * @module
 */
import { sha256Hex } from "../digest.js";
import { z } from "zod";
import { fastRemRouterSchema, routerRuleSchema } from "./fastrem.js";
import { BLOCK_ARCHITECTURES, MODEL_VARIANTS, type ArtifactManifest, type VariantGraphs } from "./spec.js";

const positiveInt = z.number().int().positive();
const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith("/") && !p.split("/").includes(".."), "must be a relative path inside the artifact");

const architectureSchema = z
  .object({
    // Absent in every manifest written before the mixer blocks (= self_attention); kept absent when parsed, so such a
    // manifest reads back exactly as written.
    block: z.enum(BLOCK_ARCHITECTURES).optional(),
    vocabSize: positiveInt,
    hidden: positiveInt,
    heads: positiveInt,
    ffn: positiveInt,
    maxLength: positiveInt,
    outputDim: positiveInt,
    matryoshkaDims: z.array(positiveInt).min(1),
    depths: z.object({ easy: positiveInt, medium: positiveInt, hard: positiveInt }),
    // The SPLADE-style sparse head (spec.ts); absent in every manifest without one.
    sparseHead: z.boolean().optional(),
    // The late-interaction head (spec.ts); absent in every manifest without one.
    lateHead: z.strictObject({ dim: positiveInt }).optional(),
  })
  .superRefine((a, ctx) => {
    if (a.hidden % a.heads !== 0) {
      ctx.addIssue({ code: "custom", path: ["heads"], message: `hidden (${a.hidden}) must be divisible by heads` });
    }
    const dims = a.matryoshkaDims;
    if (dims.some((d, i) => i > 0 && d <= dims[i - 1]!)) {
      ctx.addIssue({ code: "custom", path: ["matryoshkaDims"], message: "must be strictly ascending" });
    }
    if (dims[dims.length - 1] !== a.outputDim) {
      ctx.addIssue({ code: "custom", path: ["matryoshkaDims"], message: `last entry must equal outputDim (${a.outputDim})` });
    }
    if (!(a.depths.easy <= a.depths.medium && a.depths.medium <= a.depths.hard)) {
      ctx.addIssue({ code: "custom", path: ["depths"], message: "must satisfy easy ≤ medium ≤ hard" });
    }
  });

// sparse / late: a head's graph, only in artifacts whose architecture has that head.
const variantSchema = z.object({ embed: relativePath, step: relativePath, sparse: relativePath.optional(), late: relativePath.optional() });

const fusionWeight = z.number().finite().nonnegative();

/** The split a shipped default was chosen on: any but test, because the figures reported are test figures. */
function validationSplit(message: string) {
  return z
    .string()
    .min(1)
    .refine((split) => split !== "test", `${message} (the figures reported are test figures)`);
}

// Validated like the rest: a Worker fuses every hybrid search with these numbers, so a typo must fail the load, not
// quietly rank by NaN. Both weights 0 would leave nothing to rank by.
const tunedFusionSchema = z.object({
  method: z.enum(["convex", "rrf"]),
  weights: z
    .object({ lexical: fusionWeight, dense: fusionWeight, sparse: fusionWeight.optional() })
    .refine((w) => w.lexical > 0 || w.dense > 0 || (w.sparse ?? 0) > 0, "at least one fusion weight must be above 0"),
  withoutSparse: z
    .strictObject({
      method: z.enum(["convex", "rrf"]),
      weights: z.strictObject({ lexical: fusionWeight, dense: fusionWeight }).refine((w) => w.lexical > 0 || w.dense > 0, "at least one fusion weight must be above 0"),
      ndcg10: z.number().min(0).max(1),
    })
    .optional(),
  tunedOn: z.object({
    dataset: z.string().min(1),
    split: validationSplit("a fusion must not be tuned on the test split"),
    queries: z.number().int().positive(),
    ndcg10: z.number().min(0).max(1),
    lexicalOnly: z.number().min(0).max(1),
    denseOnly: z.number().min(0).max(1),
    sparseOnly: z.number().min(0).max(1).optional(),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be an ISO date (YYYY-MM-DD)"),
    dims: positiveInt.optional(),
    variant: z.enum(MODEL_VARIANTS).optional(),
  }),
});

// The documents' depth, validated like the fusion: every indexed document runs this many steps.
const tunedDocumentDepthSchema = z.strictObject({
  depth: positiveInt,
  // Set by the export of a run that trained documents only at this depth (training.documentSteps).
  trainedWith: z.strictObject({ documentSteps: z.array(positiveInt).length(1) }).optional(),
  tunedOn: z.strictObject({
    dataset: z.string().min(1),
    split: validationSplit("a document depth must not be chosen on the test split"),
    queries: z.number().int().positive(),
    ndcg10: z.number().min(0).max(1),
    ndcg10Auto: z.number().min(0).max(1),
    standardError: z.number().nonnegative(),
    meanStepsAuto: z.number().nonnegative(),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be an ISO date (YYYY-MM-DD)"),
    dims: positiveInt,
    variant: z.enum(MODEL_VARIANTS),
  }).optional(),
})
  .refine((d) => d.tunedOn !== undefined || d.trainedWith !== undefined, "needs tunedOn (a measured choice) or trainedWith (the depth the model was trained at)")
  .refine((d) => d.trainedWith === undefined || d.trainedWith.documentSteps[0] === d.depth, "trainedWith.documentSteps must be [depth]");

const pairedNdcg = z.strictObject({ ndcg10: z.number().min(0).max(1), ndcg10Whole: z.number().min(0).max(1), standardError: z.number().nonnegative() });

// maxPieces is checked against architecture.maxLength in the manifest's superRefine (checkPassageOptions' bounds).
const tunedDocumentPassagesSchema = z.strictObject({
  maxPieces: z.number().int().min(16),
  maxPassages: z.number().int().min(1).max(64),
  tunedOn: z.strictObject({
    dataset: z.string().min(1),
    split: validationSplit("document passages must not be chosen on the test split"),
    queries: z.number().int().positive(),
    dense: pairedNdcg,
    hybrid: pairedNdcg,
    meanPassages: z.number().min(1),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be an ISO date (YYYY-MM-DD)"),
    dims: positiveInt,
    variant: z.enum(MODEL_VARIANTS),
  }),
});

// The late rerank default, validated like the fusion: every reranked search fuses with these numbers.
const tunedLateFusionSchema = z.strictObject({
  k: positiveInt.max(100),
  weights: z
    .strictObject({ first: fusionWeight, late: fusionWeight })
    .refine((w) => w.first > 0 || w.late > 0, "at least one late fusion weight must be above 0"),
  tunedOn: z.strictObject({
    dataset: z.string().min(1),
    split: validationSplit("a late fusion must not be tuned on the test split"),
    queries: z.number().int().positive(),
    ndcg10: z.number().min(0).max(1),
    firstStageOnly: z.number().min(0).max(1),
    lateOnly: z.number().min(0).max(1),
    fusion: z.strictObject({
      method: z.enum(["convex", "rrf"]),
      weights: z.strictObject({ lexical: fusionWeight, dense: fusionWeight, sparse: fusionWeight.optional() }),
    }),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be an ISO date (YYYY-MM-DD)"),
    dims: positiveInt.optional(),
    variant: z.enum(MODEL_VARIANTS).optional(),
  }),
});

const moments = z.strictObject({ mean: z.number().finite(), std: z.number().finite().nonnegative() });

// Validated in full: the worker scores live traffic against these numbers, so a malformed baseline must fail the load.
const driftBaselineSchema = z
  .strictObject({
    embedding: z.strictObject({
      variant: z.enum(MODEL_VARIANTS),
      dims: positiveInt,
      depth: z.union([positiveInt, z.literal("auto")]),
      ranking: z.enum(["dense", "hybrid"]),
    }),
    count: positiveInt,
    mean: z.array(z.number().finite()),
    std: z.array(z.number().finite().nonnegative()),
    coverage: moments,
    logLength: moments,
    minimumCount: positiveInt,
    threshold: z.number().finite().nonnegative(),
    falseAlarmRate: z.number().min(0).max(1),
    calibration: z.strictObject({
      replicates: positiveInt,
      seed: z.number().int(),
      nullQuantiles: z.strictObject({ p50: z.number().finite(), p90: z.number().finite(), p99: z.number().finite() }),
    }),
    source: z.strictObject({ dataset: z.string().min(1), file: z.string().min(1), split: z.string().min(1).optional(), queries: positiveInt }),
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "must be an ISO date (YYYY-MM-DD)"),
  })
  .superRefine((b, ctx) => {
    for (const key of ["mean", "std"] as const) {
      if (b[key].length !== b.embedding.dims) {
        ctx.addIssue({ code: "custom", path: [key], message: `has ${b[key].length} entries, embedding.dims is ${b.embedding.dims}` });
      }
    }
  });

const manifestSchema = z
  .object({
    format: z.literal("taesr-artifact/1"),
    name: z.string().min(1),
    version: z.string().min(1),
    createdAt: z.string().min(1),
    architecture: architectureSchema,
    files: z.record(
      relativePath,
      z.object({
        sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
        bytes: z.number().int().nonnegative(),
      }),
    ),
    tokenizer: relativePath,
    // int4 and int8w are optional: artifacts exported before they existed have fp32 and int8 only.
    variants: z.object({ fp32: variantSchema, int8: variantSchema, int4: variantSchema.optional(), int8w: variantSchema.optional() }),
    parameters: z.number().int().nonnegative(),
    // The length rule, or a trained FastREM router (validated in full: the encoder routes every "auto" input by it).
    router: z.discriminatedUnion("kind", [routerRuleSchema, fastRemRouterSchema]),
    earlyExitEpsilon: z.number().nonnegative(),
    training: z.record(z.string(), z.unknown()),
    eval: z.record(z.string(), z.unknown()),
    adaptation: z.record(z.string(), z.unknown()).optional(),
    retrieval: z
      .object({
        fusion: tunedFusionSchema.optional(),
        late: tunedLateFusionSchema.optional(),
        documentDepth: tunedDocumentDepthSchema.optional(),
        documentPassages: tunedDocumentPassagesSchema.optional(),
      })
      .optional(),
    drift: driftBaselineSchema.optional(),
  })
  .superRefine((m, ctx) => {
    const referenced: [string, (string | number)[]][] = [[m.tokenizer, ["tokenizer"]]];
    for (const variant of ARTIFACT_VARIANTS) {
      const graphs = m.variants[variant];
      if (!graphs) continue;
      referenced.push([graphs.embed, ["variants", variant, "embed"]]);
      referenced.push([graphs.step, ["variants", variant, "step"]]);
      if (graphs.sparse) referenced.push([graphs.sparse, ["variants", variant, "sparse"]]);
      if ((graphs.sparse !== undefined) !== (m.architecture.sparseHead === true)) {
        ctx.addIssue({
          code: "custom",
          path: ["variants", variant, "sparse"],
          message: m.architecture.sparseHead ? "the architecture has a sparse head but the variant lists no sparse graph" : "a sparse graph without architecture.sparseHead",
        });
      }
      if (graphs.late) referenced.push([graphs.late, ["variants", variant, "late"]]);
      if ((graphs.late !== undefined) !== (m.architecture.lateHead !== undefined)) {
        ctx.addIssue({
          code: "custom",
          path: ["variants", variant, "late"],
          message: m.architecture.lateHead ? "the architecture has a late-interaction head but the variant lists no late graph" : "a late graph without architecture.lateHead",
        });
      }
    }
    if (m.retrieval?.late && !m.architecture.lateHead) {
      ctx.addIssue({ code: "custom", path: ["retrieval", "late"], message: "a tuned late fusion without architecture.lateHead" });
    }
    const depths = Object.values(m.architecture.depths);
    if (m.retrieval?.documentDepth && !depths.includes(m.retrieval.documentDepth.depth)) {
      ctx.addIssue({ code: "custom", path: ["retrieval", "documentDepth", "depth"], message: `must be one of the architecture's depths (${depths.join(", ")})` });
    }
    const passages = m.retrieval?.documentPassages;
    if (passages && passages.maxPieces > m.architecture.maxLength) {
      ctx.addIssue({ code: "custom", path: ["retrieval", "documentPassages", "maxPieces"], message: `must be at most the architecture's maxLength (${m.architecture.maxLength})` });
    }
    if (m.drift && !m.architecture.matryoshkaDims.includes(m.drift.embedding.dims)) {
      ctx.addIssue({ code: "custom", path: ["drift", "embedding", "dims"], message: "must be one of architecture.matryoshkaDims" });
    }
    for (const [path, at] of referenced) {
      if (!(path in m.files)) ctx.addIssue({ code: "custom", path: at, message: `"${path}" is not listed in files` });
    }
  });

// Compile-time guarantee that the schema and the contract in spec.ts describe the same object.
type Parsed = z.infer<typeof manifestSchema>;
const _sameShape: [Parsed extends ArtifactManifest ? true : false, ArtifactManifest extends Parsed ? true : false] = [true, true];
void _sameShape;

/** The artifact variants (spec.ts MODEL_VARIANTS): fp32 and int8 always; int4 and int8w where the artifact has them. */
export type ArtifactVariant = keyof ArtifactManifest["variants"];
export const ARTIFACT_VARIANTS: readonly ArtifactVariant[] = MODEL_VARIANTS;

/**
 * The variant an artifact runs at the edge: int8w where the artifact has it — int8's size (~4× smaller than fp32) with
 * fp32's arithmetic, so a text's embedding does not depend on the batch it was embedded in (int8's per-batch activation
 * scale moves it by up to ~4e-3) and SciFact test keeps 99.4 % of fp32 (int8: 97.8 %) — else int8, which every artifact
 * has. int8 (faster indexing) and int4 (a 4-bit token table) stay bundle options.
 */
export function edgeVariantFor(manifest: Pick<ArtifactManifest, "variants">): "int8w" | "int8" {
  return manifest.variants.int8w ? "int8w" : "int8";
}

/** A variant's graph paths (two, plus one per head: sparse, late). @throws Error when the artifact has no such variant
 * (int4 or int8w in older artifacts). */
export function variantGraphs(manifest: ArtifactManifest, variant: ArtifactVariant): VariantGraphs {
  if (!(ARTIFACT_VARIANTS as readonly string[]).includes(variant)) {
    throw new Error(`variant must be one of ${ARTIFACT_VARIANTS.map((v) => `"${v}"`).join(", ")}, got ${JSON.stringify(variant)}`);
  }
  const graphs = manifest.variants[variant];
  if (!graphs) {
    throw new Error(
      `${manifest.name}@${manifest.version} has no ${variant} variant (it has ${Object.keys(manifest.variants).join(", ")}); ` +
        `add it with \`npm run export -- --add-variant ${variant} --artifact <dir>\``,
    );
  }
  return graphs;
}

/**
 * Parses and validates manifest.json (its text or the already-parsed JSON value).
 * @throws Error listing every problem with its JSON path.
 */
export function parseManifest(input: string | unknown): ArtifactManifest {
  let value: unknown = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new Error(`manifest.json is not valid JSON: ${(err as Error).message}`);
    }
  }
  const result = manifestSchema.safeParse(value);
  if (!result.success) throw new Error(`invalid manifest.json:\n${z.prettifyError(result.error)}`);
  return result.data;
}

/** The files one variant needs at run time: its graphs (the heads' too, when it has them) and the tokenizer. */
export function variantFiles(manifest: ArtifactManifest, variant: ArtifactVariant): string[] {
  const v = variantGraphs(manifest, variant);
  return [v.embed, v.step, ...(v.sparse ? [v.sparse] : []), ...(v.late ? [v.late] : []), manifest.tokenizer];
}

export interface VerifyOptions {
  /**
   * Paths that must be present and verified. Default: every file the manifest lists. A Worker usually bundles one
   * variant only, so it passes `variantFiles(manifest, "int8")`.
   */
  paths?: readonly string[];
}

/**
 * Checks byte length and sha256 of artifact files against the manifest. Every required path must be present, and every
 * file supplied must be listed in the manifest (an unlisted file means the caller mixed artifacts).
 * @throws Error naming the first offending file and what differs.
 */
export async function verifyArtifactFiles(
  manifest: ArtifactManifest,
  files: Readonly<Record<string, Uint8Array>>,
  options: VerifyOptions = {},
): Promise<void> {
  for (const path of Object.keys(files)) {
    if (!(path in manifest.files)) {
      throw new Error(`artifact file "${path}" is not listed in ${manifest.name}@${manifest.version}'s manifest`);
    }
  }
  const required = options.paths ?? Object.keys(manifest.files);
  const verified = new Set<string>();
  for (const path of [...required, ...Object.keys(files)]) {
    if (verified.has(path)) continue;
    verified.add(path);
    const expected = manifest.files[path];
    if (expected === undefined) throw new Error(`artifact file "${path}" is not listed in the manifest`);
    const bytes = files[path];
    if (bytes === undefined) throw new Error(`artifact file "${path}" is missing`);
    if (bytes.byteLength !== expected.bytes) {
      throw new Error(`artifact file "${path}" has ${bytes.byteLength} bytes, the manifest says ${expected.bytes}`);
    }
    const actual = await sha256Hex(bytes);
    if (actual !== expected.sha256) {
      throw new Error(`artifact file "${path}" has sha256 ${actual}, the manifest says ${expected.sha256}`);
    }
  }
}

export { sha256Hex };

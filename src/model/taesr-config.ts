/**
 * TAESRConfig: one validated description of a TAESR model — the block architecture, its sizes, the recursion depths,
 * the Matryoshka prefixes, the named subspaces of the embedding, early exit, the rule router and the training settings —
 * saved and loaded as JSON.
 *
 * Every field has a default, so `parseTaesrConfig({})` is the bundled model's shape (taesr-edge-small: 8,192 pieces,
 * hidden 128, 4 heads, FFN 256, 128 tokens). Unknown keys are refused rather than ignored: a misspelt field in a
 * hand-written config file would otherwise silently fall back to its default.
 *
 * Block architectures (spec.ts has each one's maths and weights): "self_attention" (the default), "mlp_mixer" (a
 * token-mixing MLP along the sequence axis in place of attention) and "hybrid" (mixer, then attention, then the FFN).
 * All three train, export to ONNX and run in TAESRModel.
 *
 * Subspaces: the 384-d embedding is read as four contiguous, named ranges — semantic [0,192), temporal [192,256),
 * procedural [256,320), contextual [320,384) by default — half-open [start, end). Semantic must come first and hold the
 * largest Matryoshka prefix below half the output width (128 in TAESR), so the narrow prefixes search serves are purely
 * semantic.
 *
 * @module
 */
import { z } from "zod";
import { BLOCK_ARCHITECTURES, DEFAULT_BLOCK, type RouterRule, type TaesrArchitecture } from "./spec.js";

export { BLOCK_ARCHITECTURES, type BlockArchitecture } from "./spec.js";

/** The subspaces in embedding order: each starts where the previous one ends. */
export const SUBSPACE_NAMES = ["semantic", "temporal", "procedural", "contextual"] as const;
export type SubspaceName = (typeof SUBSPACE_NAMES)[number];

const positiveInt = z.number().int().positive();
/** Half-open component range [start, end) of the output embedding. */
const range = z.tuple([z.number().int().nonnegative(), z.number().int().positive()]);

export const taesrConfigSchema = z
  .strictObject({
    block: z.enum(BLOCK_ARCHITECTURES).default("self_attention"),
    vocabSize: positiveInt.default(8192),
    hidden: positiveInt.default(128),
    heads: positiveInt.default(4),
    ffn: positiveInt.default(256),
    maxLength: positiveInt.default(128),
    outputDim: positiveInt.default(384),
    matryoshkaDims: z.array(positiveInt).min(1).default([64, 128, 256, 384]),
    // prefault, not default: zod 4 returns a default as-is, so nested defaults would not be filled in from `{}`.
    depths: z
      .strictObject({ easy: positiveInt.default(1), medium: positiveInt.default(3), hard: positiveInt.default(6) })
      .prefault({}),
    subspaces: z
      .strictObject({
        semantic: range.default([0, 192]),
        temporal: range.default([192, 256]),
        procedural: range.default([256, 320]),
        contextual: range.default([320, 384]),
      })
      .prefault({}),
    /** Early exit: a row stops recursing once 1 − cos(e_t, e_{t−1}) < earlyExitEpsilon (0 never exits). */
    earlyExitEpsilon: z.number().finite().nonnegative().default(0.002),
    /** The rule router's token thresholds (spec.ts RouterRule), used by depth "auto". */
    router: z
      .strictObject({ easyMaxTokens: z.number().int().nonnegative().default(8), mediumMaxTokens: z.number().int().nonnegative().default(32) })
      .prefault({}),
    /** The SPLADE-style sparse head (spec.ts; TAESRModel.sparse). Optional, so configs without it serialise as before. */
    sparseHead: z.boolean().optional(),
    /** The late-interaction head (spec.ts; TAESRModel.tokenVectors): the token vectors' width. Optional, like sparseHead. */
    lateHead: z.strictObject({ dim: positiveInt }).optional(),
    training: z
      .strictObject({ batchSize: positiveInt.default(64), epochs: positiveInt.default(1), lr: z.number().finite().positive().default(0.0015) })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.hidden % c.heads !== 0) {
      ctx.addIssue({ code: "custom", path: ["heads"], message: `must divide hidden (${c.hidden}); got ${c.heads}` });
    }
    const dims = c.matryoshkaDims;
    if (dims.some((d, i) => i > 0 && d <= dims[i - 1]!)) {
      ctx.addIssue({ code: "custom", path: ["matryoshkaDims"], message: "must be strictly ascending" });
    }
    if (dims[dims.length - 1] !== c.outputDim) {
      ctx.addIssue({ code: "custom", path: ["matryoshkaDims"], message: `last entry must equal outputDim (${c.outputDim})` });
    }
    if (!(c.depths.easy <= c.depths.medium && c.depths.medium <= c.depths.hard)) {
      ctx.addIssue({ code: "custom", path: ["depths"], message: "must satisfy easy ≤ medium ≤ hard" });
    }
    if (c.router.easyMaxTokens > c.router.mediumMaxTokens) {
      ctx.addIssue({ code: "custom", path: ["router", "mediumMaxTokens"], message: "must be at least easyMaxTokens" });
    }
    checkSubspaces(c.subspaces, c.outputDim, dims, ctx);
  });

export type TAESRConfig = z.output<typeof taesrConfigSchema>;
/** What a config file may contain: every field optional (defaults fill the rest). */
export type TAESRConfigInput = z.input<typeof taesrConfigSchema>;

function checkSubspaces(
  subspaces: Record<SubspaceName, readonly [number, number]>,
  outputDim: number,
  matryoshkaDims: readonly number[],
  ctx: z.RefinementCtx,
): void {
  let expectedStart = 0;
  for (const name of SUBSPACE_NAMES) {
    const [start, end] = subspaces[name];
    const path = ["subspaces", name];
    if (start !== expectedStart) {
      const after = expectedStart === 0 ? "start at 0" : `start where the previous subspace ends (${expectedStart})`;
      ctx.addIssue({ code: "custom", path, message: `must ${after}; subspaces are contiguous, got [${start}, ${end})` });
    }
    if (end <= start) ctx.addIssue({ code: "custom", path, message: `must be non-empty (end > start), got [${start}, ${end})` });
    expectedStart = end;
  }
  if (expectedStart !== outputDim) {
    ctx.addIssue({
      code: "custom",
      path: ["subspaces", "contextual"],
      message: `subspaces must cover the embedding exactly: the last one must end at outputDim (${outputDim}), got ${expectedStart}`,
    });
  }
  const narrow = matryoshkaDims.filter((d) => d < outputDim / 2);
  const largestNarrow = narrow[narrow.length - 1];
  if (largestNarrow !== undefined && subspaces.semantic[1] < largestNarrow) {
    ctx.addIssue({
      code: "custom",
      path: ["subspaces", "semantic"],
      message: `must hold the ${largestNarrow}-d Matryoshka prefix (the largest below outputDim / 2), so it must end at ${largestNarrow} or later`,
    });
  }
}

/** A config's validation failure; `message` lists every problem with its field path. */
export class TaesrConfigError extends Error {
  override readonly name = "TaesrConfigError";
  constructor(
    message: string,
    readonly issues: readonly z.core.$ZodIssue[] = [],
  ) {
    super(message);
  }
}

/** Validates `raw` and fills defaults; throws {@link TaesrConfigError} listing each bad field by path. */
export function parseTaesrConfig(raw: unknown): TAESRConfig {
  const result = taesrConfigSchema.safeParse(raw);
  if (!result.success) throw new TaesrConfigError(`invalid TAESR config:\n${z.prettifyError(result.error)}`, result.error.issues);
  return result.data;
}

/** The config as a JSON document (every field written out, defaults included, so the file is self-describing). */
export function taesrConfigToJSON(config: TAESRConfigInput): string {
  return `${JSON.stringify(parseTaesrConfig(config), null, 2)}\n`;
}

/** Parses and validates a JSON document written by {@link taesrConfigToJSON} (or by hand). */
export function taesrConfigFromJSON(text: string): TAESRConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TaesrConfigError(`invalid TAESR config: not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  return parseTaesrConfig(raw);
}

/**
 * The spec.ts architecture (the contract shared with training and the ONNX graphs) of a config. `block` is written only
 * for the non-default blocks, so a self-attention architecture is exactly what it was before blocks were selectable.
 */
export function architectureOf(config: TAESRConfig): TaesrArchitecture {
  const { block, vocabSize, hidden, heads, ffn, maxLength, outputDim, matryoshkaDims, depths, sparseHead, lateHead } = config;
  return {
    ...(block !== DEFAULT_BLOCK ? { block } : {}),
    vocabSize,
    hidden,
    heads,
    ffn,
    maxLength,
    outputDim,
    matryoshkaDims: [...matryoshkaDims],
    depths: { ...depths },
    ...(sparseHead ? { sparseHead: true } : {}),
    ...(lateHead ? { lateHead: { dim: lateHead.dim } } : {}),
  };
}

/** The config's router as spec.ts {@link RouterRule}. */
export function routerRuleOf(config: TAESRConfig): RouterRule {
  return { kind: "rule", ...config.router };
}

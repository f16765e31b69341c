/**
 * Request schemas (zod) for every route, with the limits the API promises. Objects are strict: an unknown field is an
 * error rather than silently ignored, so a typo like `top_k` is reported instead of quietly using the default.
 *
 * @module
 */
import { z } from "zod";
import { modelRef } from "./model-route.js";
import { FILTER_PATH, type MetadataFilter } from "../../../src/retrieval/index.js";
import { PAGE_DEPTH } from "./search-index.js";

export const LIMITS = {
  queryChars: 2_000,
  topK: { min: 1, max: 100, default: 10 },
  /** offset + topK: how deep pagination reaches (every list is read this deep, see search-index.ts). */
  pageDepth: PAGE_DEPTH,
  /** Late-interaction rerank depth k (src/retrieval/late.ts MAX_LATE_RERANK_DEPTH). */
  rerankDepth: 100,
  filter: { depth: 4, clauses: 32, inValues: 100, valueChars: 1_000 },
  embedInputs: 64,
  embedInputChars: 8_000,
  documentsPerRequest: 256,
  idChars: 256,
  titleChars: 1_000,
  textChars: 100_000,
  metadataBytes: 16_384,
  /** Request body caps, bytes. */
  body: { search: 16_384, embed: 1_048_576, documents: 8_388_608, modelFile: 67_108_864 },
} as const;

/** Search is served from stored 128-d vectors, so 64 and 128 are the widths it can answer. */
export const searchDims = z.union([z.literal(64), z.literal(128)], { error: "dims must be 64 or 128" });
export const embedDims = z.union([z.literal(64), z.literal(128), z.literal(256), z.literal(384)], {
  error: "dims must be 64, 128, 256 or 384",
});
export const depthSetting = z.union([z.literal(1), z.literal(3), z.literal(6), z.literal("auto")], {
  error: 'depth must be 1, 3, 6 or "auto"',
});
export const searchMode = z.enum(["hybrid", "dense", "lexical", "sparse"], { error: 'mode must be "hybrid", "dense", "lexical" or "sparse"' });
export const fusionMethod = z.enum(["convex", "rrf"], { error: 'fusion must be "convex" or "rrf"' });

const nonNegativeWeight = z.number().finite().min(0, "weights must be ≥ 0").max(1_000, "weights must be ≤ 1000");

const filterScalar = z.union([z.string().max(LIMITS.filter.valueChars), z.number().finite(), z.boolean(), z.null()], {
  error: "filter values must be strings, numbers, booleans or null",
});
const filterBound = z.union([z.string().max(LIMITS.filter.valueChars), z.number().finite()], {
  error: "$gt, $gte, $lt and $lte take a number or a string",
});
// Only objects reach this schema (scalars are checked as values), so zod's own "Unrecognized key" names a bad operator.
const filterCondition = z.strictObject({
  $eq: filterScalar.optional(),
  $ne: filterScalar.optional(),
  $in: z.array(filterScalar).max(LIMITS.filter.inValues, `$in takes at most ${LIMITS.filter.inValues} values`).optional(),
  $nin: z.array(filterScalar).max(LIMITS.filter.inValues, `$nin takes at most ${LIMITS.filter.inValues} values`).optional(),
  $gt: filterBound.optional(),
  $gte: filterBound.optional(),
  $lt: filterBound.optional(),
  $lte: filterBound.optional(),
  $exists: z.boolean({ error: "$exists takes true or false" }).optional(),
});

/** Counts clauses and nesting, so one request cannot make every shard evaluate an enormous filter per document. */
function filterSize(filter: unknown, depth = 1): { clauses: number; depth: number } {
  let clauses = 0;
  let deepest = depth;
  for (const [key, value] of Object.entries(filter as Record<string, unknown>)) {
    if ((key === "$and" || key === "$or") && Array.isArray(value)) {
      for (const inner of value) {
        const size = filterSize(inner, depth + 1);
        clauses += size.clauses;
        deepest = Math.max(deepest, size.depth);
      }
    } else {
      clauses += 1;
    }
  }
  return { clauses, depth: deepest };
}

/**
 * Checked by hand below rather than as a recursive zod type: the messages can then name the path and the operator,
 * and nesting depth and clause count are bounded before anything recurses further.
 */
export const metadataFilter: z.ZodType<MetadataFilter> = z
  .record(z.string(), z.unknown(), { error: "filter must be an object of metadata paths (and $and / $or)" })
  .superRefine((filter, ctx) => {
    for (const [key, value] of Object.entries(filter)) {
      if (key === "$and" || key === "$or") {
        if (!Array.isArray(value) || value.length === 0) {
          ctx.addIssue({ code: "custom", path: [key], message: `${key} takes a non-empty array of filters` });
          continue;
        }
        value.forEach((inner, index) => {
          const parsed = metadataFilter.safeParse(inner);
          if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [key, index, ...issue.path] } as never);
        });
      } else if (key.startsWith("$")) {
        ctx.addIssue({ code: "custom", path: [key], message: `unknown filter operator "${key}" (top level takes $and and $or)` });
      } else if (!FILTER_PATH.test(key)) {
        ctx.addIssue({ code: "custom", path: [key], message: `"${key}" is not a metadata path (letters, digits, _ and -, dotted for nesting)` });
      } else {
        const parsed = value !== null && typeof value === "object" && !Array.isArray(value) ? filterCondition.safeParse(value) : filterScalar.safeParse(value);
        if (!parsed.success) for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: [key, ...issue.path] } as never);
      }
    }
    const size = filterSize(filter);
    if (size.clauses > LIMITS.filter.clauses) ctx.addIssue({ code: "custom", message: `a filter may have at most ${LIMITS.filter.clauses} clauses` });
    if (size.depth > LIMITS.filter.depth) ctx.addIssue({ code: "custom", message: `filters may nest $and / $or at most ${LIMITS.filter.depth} deep` });
  }) as z.ZodType<MetadataFilter>;

export const searchRequest = z.strictObject({
  query: z
    .string({ error: (issue) => (issue.input === undefined ? "query is required" : "query must be a string") })
    .max(LIMITS.queryChars, `query must be at most ${LIMITS.queryChars} characters`)
    .refine((query) => query.trim().length > 0, "query must contain some text"),
  topK: z
    .number({ error: "topK must be a number" })
    .int("topK must be a whole number")
    .min(LIMITS.topK.min, `topK must be at least ${LIMITS.topK.min}`)
    .max(LIMITS.topK.max, `topK must be at most ${LIMITS.topK.max}`)
    .default(LIMITS.topK.default),
  /** Results to skip: page n (0-based) of size topK is offset n·topK. offset + topK ≤ LIMITS.pageDepth. */
  offset: z
    .number({ error: "offset must be a number" })
    .int("offset must be a whole number")
    .min(0, "offset must be ≥ 0")
    .default(0),
  /** Only documents whose metadata matches take part (see src/retrieval/metadata-filter.ts for the grammar). */
  filter: metadataFilter.optional(),
  dims: searchDims.default(128),
  depth: depthSetting.default("auto"),
  mode: searchMode.default("hybrid"),
  /**
   * How hybrid mode fuses dense and lexical: "convex" (weighted sum of per-list normalised scores) or "rrf" (weighted
   * reciprocal rank fusion, k = 60). Left undefined here so the default applies: the fusion tuned for the model and
   * shipped in its manifest, else convex (see GET /v1/health → model.fusion).
   */
  fusion: fusionMethod.optional(),
  /**
   * Weights per list for whichever fusion is chosen (hybrid mode); a list not named keeps its default — the model's
   * tuned weights when the chosen fusion is the tuned one, else convex: lexical 0.7, dense 0.3; rrf: lexical 3, dense 1.
   * sparse (models with the sparse head only; a weight above 0 for another model is a 400): default the lexical
   * default, untuned. Only the ratio matters.
   */
  weights: z
    .strictObject({ dense: nonNegativeWeight.optional(), lexical: nonNegativeWeight.optional(), sparse: nonNegativeWeight.optional() })
    .optional(),
  /**
   * Late-interaction rerank of the hybrid ranking's top k (MaxSim over the model's late head, fused with the hybrid
   * score): true/false, or {k?, weight?} (weight: MaxSim's share, 0–1; default the model's tuned k and weights).
   * Default: on for hybrid searches when the model ships a tuned late fusion, else off. A model without a late head,
   * another mode, or an index backend without token matrices answers an explicit request with 400.
   */
  rerank: z
    .union(
      [
        z.boolean(),
        z.strictObject({
          k: z
            .number({ error: "rerank.k must be a number" })
            .int("rerank.k must be a whole number")
            .min(1, "rerank.k must be at least 1")
            .max(LIMITS.rerankDepth, `rerank.k must be at most ${LIMITS.rerankDepth}`)
            .optional(),
          weight: z.number({ error: "rerank.weight must be a number" }).min(0, "rerank.weight must be ≥ 0").max(1, "rerank.weight must be ≤ 1").optional(),
        }),
      ],
      { error: "rerank must be true, false or {k?, weight?}" },
    )
    .optional(),
}).refine((request) => request.offset + request.topK <= LIMITS.pageDepth, {
  path: ["offset"],
  message: `offset + topK must be at most ${LIMITS.pageDepth}: results are ranked from the best ${LIMITS.pageDepth} candidates`,
});
export type SearchRequest = z.infer<typeof searchRequest>;

const embedText = z
  .string({ error: "each input must be a string" })
  .min(1, "input texts must not be empty")
  .max(LIMITS.embedInputChars, `input texts must be at most ${LIMITS.embedInputChars} characters`);

/**
 * Fields that take one item or an array of them, mapped to the item's schema. JSON Schema sees only the array behind
 * the preprocess step, so the OpenAPI document (openapi.ts) reads this to show both forms.
 */
export const oneOrMany = new WeakMap<z.ZodType, z.ZodType>();

/** One text or an array of them (/v1/embed, /v1/embeddings). */
export const embedInput = z.preprocess(
  // A single string is a batch of one; wrapping it first lets the array's limits and messages apply to both forms.
  (value) => (typeof value === "string" ? [value] : value),
  z
    .array(embedText, { error: "input must be a string or an array of strings" })
    .min(1, "input must not be an empty array")
    .max(LIMITS.embedInputs, `input takes at most ${LIMITS.embedInputs} texts`),
);
oneOrMany.set(embedInput, embedText);

export const embedRequest = z.strictObject({
  input: embedInput,
  dims: embedDims.default(128),
  depth: depthSetting.default("auto"),
});
export type EmbedRequest = z.infer<typeof embedRequest>;

export const documentId = z
  .string({ error: "id must be a string" })
  .min(1, "id must not be empty")
  .max(LIMITS.idChars, `id must be at most ${LIMITS.idChars} characters`)
  .regex(/^[^\p{Cc}]+$/u, "id must not contain control characters");

const metadata = z
  .record(z.string(), z.json(), { error: "metadata must be a JSON object" })
  .refine(
    (value) => new TextEncoder().encode(JSON.stringify(value)).byteLength <= LIMITS.metadataBytes,
    `metadata must serialise to at most ${LIMITS.metadataBytes} bytes`,
  );

export const documentInput = z.strictObject({
  id: documentId,
  title: z.string({ error: "title must be a string" }).max(LIMITS.titleChars, `title must be at most ${LIMITS.titleChars} characters`).default(""),
  text: z
    .string({ error: (issue) => (issue.input === undefined ? "text is required" : "text must be a string") })
    .max(LIMITS.textChars, `text must be at most ${LIMITS.textChars} characters`)
    .refine((text) => text.trim().length > 0, "text must contain some text"),
  metadata: metadata.optional(),
});
export type DocumentInput = z.infer<typeof documentInput>;
export type Metadata = NonNullable<DocumentInput["metadata"]>;

/** A batch of documents with distinct ids: two versions of one id in one batch would make the outcome order-dependent. */
const documentBatch = z
  .array(documentInput, { error: "documents must be an array" })
  .min(1, "documents must not be empty")
  .max(LIMITS.documentsPerRequest, `at most ${LIMITS.documentsPerRequest} documents per request`)
  .superRefine((documents, ctx) => {
    const seen = new Set<string>();
    documents.forEach((document, index) => {
      if (seen.has(document.id)) ctx.addIssue({ code: "custom", path: [index, "id"], message: `duplicate id "${document.id}" in this batch` });
      seen.add(document.id);
    });
  });

export const upsertRequest = z.strictObject({ documents: documentBatch });

const idBatch = z
  .array(documentId, { error: "ids must be an array of strings" })
  .min(1, "ids must not be empty")
  .max(LIMITS.documentsPerRequest, `at most ${LIMITS.documentsPerRequest} ids per request`);

export const webhookRequest = z.discriminatedUnion(
  "event",
  [
    z.strictObject({ event: z.literal("upsert"), documents: documentBatch }),
    z.strictObject({ event: z.literal("delete"), ids: idBatch }),
  ],
  { error: 'event must be "upsert" (with documents) or "delete" (with ids)' },
);
export type WebhookRequest = z.infer<typeof webhookRequest>;

/** GET /v1/admin/dead-letters?limit= */
export const deadLettersQuery = z.object({
  limit: z.coerce
    .number({ error: "limit must be a number" })
    .int("limit must be a whole number")
    .min(1, "limit must be at least 1")
    .max(1_000, "limit must be at most 1000")
    .default(100),
});

/** OpenAI's token-id input forms (number[] or number[][]): ids from another tokenizer mean nothing to this model. */
function isTokenIds(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((item) => typeof item === "number" || (Array.isArray(item) && item.every((id) => typeof id === "number")))
  );
}

const embeddingWidths = embedDims.options.map((option) => option.value);

/**
 * POST /v1/embeddings, OpenAI's request shape (openai-embeddings.ts answers it). `null` counts as absent for the
 * optional fields, as some OpenAI clients send it for "not set". `user` is accepted for compatibility and ignored.
 */
export const embeddingsRequest = z.strictObject({
  model: z
    .string({ error: (issue) => (issue.input === undefined ? "model is required" : "model must be a string") })
    .min(1, "model must not be empty")
    .max(LIMITS.idChars, `model must be at most ${LIMITS.idChars} characters`),
  input: z.preprocess((value, ctx) => {
    if (!isTokenIds(value)) return value;
    ctx.addIssue({ code: "custom", message: "token-id inputs are not supported (this model has its own tokenizer); send a string or an array of strings" });
    return z.NEVER;
  }, embedInput),
  dimensions: z
    .literal(embeddingWidths, { error: `dimensions must be ${embeddingWidths.slice(0, -1).join(", ")} or ${embeddingWidths.at(-1)}` })
    .nullish(),
  encoding_format: z.enum(["float", "base64"], { error: 'encoding_format must be "float" or "base64"' }).nullish(),
  user: z.string({ error: "user must be a string" }).max(LIMITS.idChars, `user must be at most ${LIMITS.idChars} characters`).nullish(),
});
export type EmbeddingsRequest = z.infer<typeof embeddingsRequest>;

/** POST /v1/admin/models/activate: the model to switch to, uploaded to the artifact store (or the bundled one). */
export const activateRequest = z.strictObject({ model: modelRef });
export type ActivateRequest = z.infer<typeof activateRequest>;

/**
 * Response shapes of every JSON route, as zod schemas, for the OpenAPI document (openapi.ts). Nothing validates
 * responses at run time; instead the compile-time checks at the bottom tie each schema to the TypeScript type the
 * route really returns, so a field added to a response without documenting it here fails `tsc`.
 *
 * @module
 */
import { z } from "zod";
import { ERROR_CODES, type ErrorBody } from "./errors.js";
import type { EmbeddingsResponse } from "./openai-embeddings.js";
import type { EmbedResponse, SearchResponse } from "./search-service.js";
import { deployment, modelRoute } from "./model-route.js";
import type { RolloutState } from "./model-rollout.js";
import type { StoredArtifactFile } from "./model-store.js";

const metadata = z.record(z.string(), z.json()).nullable().describe("the metadata the document was stored with, or null");
const route = z.enum(["easy", "medium", "hard", "fixed"]).describe('the router\'s verdict for depth "auto"; "fixed" when the request chose the depth');
const ids = z.array(z.string()).describe("the request's ids, in request order");

export const errorResponse = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      type: z.enum(["invalid_request_error", "server_error"]).describe("OpenAI's error class: 4xx → invalid_request_error, 5xx → server_error"),
      param: z.string().optional().describe('the first offending field, e.g. "dimensions" or "documents.3.id"'),
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional().describe("every validation problem found"),
    }),
  })
  .describe("Every failure, whatever the route");

export const searchResponse = z.object({
  results: z.array(
    z.object({
      id: z.string(),
      score: z.number(),
      title: z.string(),
      snippet: z.string().describe("a query-biased excerpt of the text"),
      metadata,
      ranks: z
        .object({
          dense: z.number().int().optional(),
          lexical: z.number().int().optional(),
          sparse: z.number().int().optional(),
          late: z.number().int().optional(),
        })
        .describe("1-based rank in each list that found it (sparse: the learned sparse list, models with the sparse head only); late: by MaxSim alone within the reranked top k"),
    }),
  ),
  page: z
    .object({
      offset: z.number().int(),
      topK: z.number().int(),
      hasMore: z.boolean().describe("the ranking continues past this page"),
      nextOffset: z.number().int().nullable().describe("the offset of the next page; null at the end or past the deepest page (offset + topK ≤ 100)"),
    })
    .describe("this page's place in the ranking"),
  model: z.object({
    version: z.string(),
    dims: z.number().int(),
    depth: z.number().int().describe("recursion steps run (0: lexical mode, no embedding)"),
    route: z.union([route, z.literal("none")]),
    earlyExit: z.boolean(),
    cached: z.boolean(),
    servedBy: z.enum(["edge", "origin", "none"]).describe("who embedded the query: the edge's model, or the GPU origin's for hard-routed queries"),
    originFallback: z
      .enum(["timeout", "circuit_open", "network", "bad_response", "model_mismatch"])
      .or(z.templateLiteral(["http_", z.number()]))
      .nullable()
      .describe("why a query routed to the origin was embedded at the edge instead (at full depth); null otherwise"),
  }),
  timings: z.object({
    embedMs: z.number(),
    searchMs: z.number(),
    totalMs: z.number(),
    cache: z.enum(["hit", "miss", "none"]),
    stages: z
      .record(z.string(), z.number())
      .describe(
        "milliseconds per step of the index search (backend-specific names, e.g. statsMs, shardsMs, shard.denseMs, shard.lexicalMs, shard.sparseMs, fuseMs, rerankFetchMs, rerankMs, fieldsMs)",
      ),
  }),
});

export const embedResponse = z.object({
  embeddings: z.array(z.array(z.number())).describe("unit-length vectors, one per input, in input order"),
  dims: z.number().int(),
  depth: z.number().int(),
  route,
  earlyExit: z.boolean(),
  model: z.object({ name: z.string(), version: z.string() }),
});

export const embeddingsResponse = z
  .object({
    object: z.literal("list"),
    data: z.array(
      z.object({
        object: z.literal("embedding"),
        index: z.number().int(),
        embedding: z
          .union([z.array(z.number()), z.string()])
          .describe('numbers for encoding_format "float"; for "base64", the little-endian float32 bytes, base64-encoded'),
      }),
    ),
    model: z.string().describe("name@version of the model that made the vectors"),
    usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }).describe("input tokens, counted by the model's tokenizer"),
  })
  .describe("OpenAI's CreateEmbeddingResponse");

export const upsertResponse = z.object({
  upserted: z.number().int().describe("documents stored or replaced"),
  unchanged: z.number().int().describe("documents already stored with the same content and model version (no model call)"),
  ids,
});

export const storedDocumentResponse = z.object({
  id: z.string(),
  title: z.string(),
  text: z.string(),
  metadata,
  contentHash: z.string(),
  modelVersion: z.string().describe("the model version its vector was made with"),
  dims: z.number().int(),
  length: z.number().int().describe("length in lexical terms"),
  updatedAt: z.number().int().describe("Unix milliseconds of the last write"),
});

export const deleteResponse = z.object({ deleted: z.literal(true), id: z.string() });

export const webhookResponse = z
  .object({
    event: z.enum(["upsert", "delete"]),
    queued: z.number().int().describe("documents (upsert) or ids (delete) accepted onto the indexing queue — not yet indexed"),
    ids,
  })
  .describe("202 Accepted: the indexing queue's consumer applies it; GET /v1/health counts indexed documents");

export const deadLettersResponse = z.object({
  deadLetters: z.array(
    z.object({
      key: z.string().describe("the queue message's key (webhook key / part)"),
      kind: z.enum(["upsert", "delete", "malformed"]),
      ids: z.array(z.string()).describe("the message's document ids (the first 50)"),
      count: z.number().int().describe("documents or ids the message carried"),
      version: z.number().int().nullable().describe("the webhook's version (edge clock in ms when accepted)"),
      attempts: z.number().int(),
      error: z.string().describe("the last failure recorded for the message"),
      deadAt: z.number().int().describe("unix ms"),
    }),
  ),
});

const weights = z.object({ dense: z.number(), lexical: z.number(), sparse: z.number().optional().describe("the learned sparse list's weight, for a fusion tuned with it") });
export const healthResponse = z.object({
  status: z.literal("ok"),
  model: z.object({
    name: z.string(),
    version: z.string(),
    dims: z.number().int().describe("the widest embedding the model produces"),
    variant: z.string().describe('weights variant, e.g. "int8"'),
    fusion: z
      .object({
        method: z.enum(["convex", "rrf"]),
        weights,
        withoutSparse: z
          .object({ method: z.enum(["convex", "rrf"]), weights })
          .optional()
          .describe("for a default tuned with the learned sparse list: the two-list fusion a search that does not read that list gets"),
        source: z.enum(["manifest", "built-in"]),
        tunedOn: z.record(z.string(), z.unknown()).optional().describe("for a tuned default: the split it was tuned on and the figures there"),
      })
      .describe("the hybrid fusion a search without fusion/weights gets"),
    late: z
      .object({
        dims: z.number().int(),
        k: z.number().int(),
        weights: z.object({ first: z.number(), late: z.number() }),
        source: z.enum(["manifest", "built-in"]),
        tunedOn: z.record(z.string(), z.unknown()).optional(),
      })
      .nullable()
      .describe("the late-interaction rerank the model can do (null: no head); on by default only when weights.late > 0"),
    sparse: z
      .object({ threshold: z.number(), maxTerms: z.number().int() })
      .optional()
      .describe(
        "the learned sparse list the model can make (absent: no sparse head): terms kept per text (weight > threshold, at most maxTerms); hybrid reads it by default, at the fusion's sparse weight (else its lexical weight)",
      ),
  }),
  index: z.object({
    backend: z.enum(["durable-objects", "upstash"]),
    shards: z.number().int().describe("Durable Objects holding the index (1 for Upstash)"),
    documents: z.number().int(),
    modelVersions: z.record(z.string(), z.number().int()).describe("documents per model version that embedded them"),
  }),
  origin: z
    .object({ configured: z.boolean(), circuit: z.enum(["closed", "open", "half_open"]).optional() })
    .describe("the GPU origin for hard-routed queries; circuit open → they are embedded at the edge until a probe succeeds"),
  route: modelRoute.nullable().describe("which model serves from which index, and any switch under way (null: live model updates not configured)"),
});

const rolloutDeployment = deployment.describe("a model (name@version) and the index its vectors live in");
export const rolloutStateResponse = z
  .object({
    route: modelRoute.describe("active serves queries; next is being filled; previous is kept current for rollback"),
    rollout: z
      .object({
        from: rolloutDeployment,
        to: rolloutDeployment,
        phase: z.enum(["copying", "verifying"]).describe("copying: re-embedding the active index page by page; verifying: comparing the two and repairing differences"),
        cursor: z.string().nullable(),
        copied: z.number().int(),
        total: z.number().int().describe("documents in the active index when the switch began"),
        passes: z.number().int().describe("comparison passes that found differences (each repairs them)"),
        repaired: z.number().int(),
        startedAt: z.number(),
        lastError: z.object({ message: z.string(), at: z.number() }).optional().describe("the last step's failure; steps are retried"),
      })
      .nullable()
      .describe("the switch under way, or null"),
    history: z.array(z.object({ event: z.enum(["activated", "switched", "cancelled", "rolled_back", "retired"]), model: z.string(), at: z.number() })),
  })
  .describe("The model route and any switch under way");
export const modelsResponse = rolloutStateResponse
  .extend({ available: z.array(z.string()).describe("models (name@version) with a manifest in the artifact store") })
  .describe("The model route, any switch under way, and the uploaded models");
export const artifactFileResponse = z.object({
  model: z.string(),
  path: z.string(),
  bytes: z.number().int(),
  sha256: z.string().describe("of the bytes received, to compare with the manifest's"),
});

const shiftComponent = z.object({
  shift: z.number().describe("shift of the live mean in baseline standard deviations, net of sampling noise"),
  live: z.number(),
  baseline: z.number(),
});
const driftModel = z.object({ name: z.string(), version: z.string(), variant: z.string() });
const driftContext = {
  model: driftModel,
  window: z.object({ buckets: z.number().int(), since: z.number().int().nullable() }).describe("hourly buckets of live queries in the verdict"),
  baseline: z.record(z.string(), z.unknown()).describe("the manifest baseline's size, source query set, embedding settings, false-alarm rate and date"),
};
export const driftResponse = z
  .union([
    z.object({ status: z.literal("no_baseline"), model: z.object({ name: z.string(), version: z.string() }), message: z.string() }),
    z.object({
      status: z.literal("insufficient_data"),
      count: z.number().int(),
      minimumCount: z.number().int(),
      threshold: z.number(),
      drifted: z.literal(false),
      score: z.null(),
      components: z.null(),
      ...driftContext,
    }),
    z.object({
      status: z.literal("ok"),
      count: z.number().int(),
      minimumCount: z.number().int(),
      threshold: z.number(),
      drifted: z.boolean().describe("score > threshold"),
      score: z.number().describe("RMS of the three components' mean shifts, in baseline standard deviations"),
      components: z.object({ embedding: z.number(), coverage: shiftComponent, logLength: shiftComponent }),
      ...driftContext,
    }),
  ])
  .describe("Drift of recent queries against the model's baseline (src/model/drift.ts)");

/** True only when A and B are the same type (optional fields included), not merely assignable. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// The routes' real return types: each line fails to compile when a schema above drifts from its type.
true satisfies Same<z.output<typeof searchResponse>, SearchResponse>;
true satisfies Same<z.output<typeof embedResponse>, EmbedResponse>;
true satisfies Same<z.output<typeof embeddingsResponse>, EmbeddingsResponse>;
true satisfies Same<z.output<typeof errorResponse>, ErrorBody>;
true satisfies Same<z.output<typeof rolloutStateResponse>, RolloutState>;
true satisfies Same<z.output<typeof artifactFileResponse>, StoredArtifactFile>;

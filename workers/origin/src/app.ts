/**
 * The origin's HTTP API (Hono):
 * - `POST /v1/embed` — shared-secret auth, zod-validated input, texts micro-batched through the model
 *   (429 + Retry-After when the queue is full, 503 while loading or draining, 500 only for the requests whose batch failed);
 * - `GET /health` — liveness: always 200, with the phase, provider, queue depth and batch counters;
 * - `GET /ready` — readiness: 200 once the model is loaded, 503 before that and while draining.
 * Errors use the edge's JSON shape `{error: {code, message, issues?}}` (workers/edge/src/errors.ts).
 *
 * @module
 */
import { Hono } from "hono";
import { ApiError, answerErrorsAsJson } from "../../edge/src/errors.js";
import { limit, readJson } from "../../edge/src/http.js";
import { requireOriginSecret } from "./auth.js";
import { DrainingError, OverloadedError, type MicroBatcher } from "./batcher.js";
import { originEmbedRequestSchema, type OriginEmbedResponse } from "./contract.js";
import type { SparseTerms, TokenVectors } from "../../../src/model/index.js";
import type { OriginEmbedOptions, OriginModel } from "./origin-model.js";

/** One text's result from a batch: its embedding and the depth its batch ran. */
export interface EmbeddedRow {
  embedding: Float32Array;
  depth: number;
  /** The text's token vectors, when its batch asked for them. */
  tokenVectors?: TokenVectors;
  /** The text's sparse terms, when its batch asked for them. */
  sparse?: SparseTerms;
}

export type OriginPhase = "loading" | "ready" | "failed" | "draining";

export interface OriginStatus {
  phase: OriginPhase;
  /** Set once loaded (and kept while draining). */
  model: OriginModel | null;
  /** Why loading failed (phase "failed"). */
  loadError?: string;
}

export interface OriginAppOptions {
  secret: string;
  batcher: MicroBatcher<EmbeddedRow>;
  status(): OriginStatus;
  /** Reported on /health so an operator sees the batching the origin runs with. */
  settings: { maxBatch: number; maxWaitMs: number; maxQueue: number };
}

/** The largest valid body: 64 texts × 8,000 UTF-16 units, each at most 6 bytes in JSON (a \u-escaped control character), is 3 MB. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The batch a request joins: only requests with the same options can share a pass through the model. The sparse cut
 * is part of it (threshold and maxTerms as JSON numbers, "-" without one), so a batch's terms are cut one way.
 */
export function batchKey(options: OriginEmbedOptions): string {
  const sparse = options.sparse ? `${JSON.stringify(options.sparse.threshold)}/${options.sparse.maxTerms}` : "-";
  const passages = options.passages ? `${options.passages.maxPieces}x${options.passages.maxPassages}` : "-";
  return `${options.dims}:${options.depth}:${options.earlyExit ? 1 : 0}:${options.tokenVectors ? 1 : 0}:${sparse}:${passages}`;
}

export function parseBatchKey(key: string): OriginEmbedOptions {
  const [dims, depth, earlyExit, tokenVectors, sparse, passages] = key.split(":");
  const [threshold, maxTerms] = sparse && sparse !== "-" ? sparse.split("/") : [];
  const [maxPieces, maxPassages] = passages && passages !== "-" ? passages.split("x") : [];
  return {
    dims: Number(dims),
    depth: Number(depth),
    earlyExit: earlyExit === "1",
    tokenVectors: tokenVectors === "1",
    ...(threshold !== undefined && maxTerms !== undefined ? { sparse: { threshold: Number(threshold), maxTerms: Number(maxTerms) } } : {}),
    ...(maxPieces !== undefined && maxPassages !== undefined ? { passages: { maxPieces: Number(maxPieces), maxPassages: Number(maxPassages) } } : {}),
  };
}

/** A text's sparse terms on the wire: [vocabulary id, weight] pairs, heaviest first (ties by id). */
export function sparsePairsOf(terms: SparseTerms): [number, number][] {
  return Object.entries(terms)
    .map(([id, weight]): [number, number] => [Number(id), weight as number])
    .sort((a, b) => b[1] - a[1] || a[0] - b[0]);
}

export function createOriginApp(options: OriginAppOptions): Hono {
  const app = new Hono();

  // While draining, ask clients to drop keep-alive connections so the server can close once the last answer is out.
  app.use(async (c, next) => {
    await next();
    if (options.status().phase === "draining") c.header("Connection", "close");
  });

  app.get("/health", (c) => {
    const { phase, model, loadError } = options.status();
    const stats = options.batcher.stats();
    return c.json({
      status: phase,
      provider: model?.provider ?? null,
      ...(model?.providerFallback ? { providerFallback: model.providerFallback } : {}),
      model: model?.info ?? null,
      ...(loadError ? { loadError } : {}),
      queue: { texts: stats.queuedTexts, requests: stats.queuedRequests, maxTexts: options.settings.maxQueue },
      batches: { run: stats.batchesRun, failed: stats.batchesFailed, texts: stats.textsRun, largest: stats.largestBatch, runningTexts: stats.runningTexts },
      settings: { maxBatch: options.settings.maxBatch, maxWaitMs: options.settings.maxWaitMs },
    });
  });

  app.get("/ready", (c) => {
    const status = options.status();
    const model = requireServing(status);
    return c.json({ ready: true, model: model.info, provider: model.provider });
  });

  app.post(
    "/v1/embed",
    async (c, next) => {
      await requireOriginSecret(c.req.header("authorization"), options.secret);
      await next();
    },
    limit(MAX_BODY_BYTES),
    async (c) => {
      const model = requireServing(options.status());
      const request = await readJson(c, originEmbedRequestSchema, "embed request");
      const embedOptions = resolveOptions(request, model);
      let rows: EmbeddedRow[];
      try {
        rows = await options.batcher.submit(request.input, batchKey(embedOptions));
      } catch (error) {
        if (error instanceof OverloadedError) {
          throw new ApiError(429, "overloaded", error.message, undefined, { "Retry-After": String(error.retryAfterSeconds) });
        }
        if (error instanceof DrainingError) throw new ApiError(503, "shutting_down", error.message);
        console.error("origin: an embedding batch failed:", error);
        throw new ApiError(500, "internal", `the batch this request ran in failed: ${(error as Error).message ?? String(error)}`);
      }
      const body: OriginEmbedResponse = {
        embeddings: rows.map((row) => Array.from(row.embedding)),
        ...(embedOptions.tokenVectors
          ? { tokenVectors: rows.map((row) => ({ count: row.tokenVectors!.count, dims: row.tokenVectors!.dims, data: Array.from(row.tokenVectors!.data) })) }
          : {}),
        ...(embedOptions.sparse ? { sparse: rows.map((row) => sparsePairsOf(row.sparse!)) } : {}),
        dims: embedOptions.dims,
        depth: Math.max(...rows.map((row) => row.depth)),
        model: model.info,
        provider: model.provider,
      };
      return c.json(body);
    },
  );

  app.all("/v1/embed", () => {
    throw new ApiError(405, "method_not_allowed", "/v1/embed accepts POST", undefined, { Allow: "POST" });
  });
  answerErrorsAsJson(app, "origin");
  return app;
}

/** The loaded model when the origin serves; a 503 naming why not otherwise. */
function requireServing(status: OriginStatus): OriginModel {
  switch (status.phase) {
    case "ready":
      return status.model!;
    case "draining":
      throw new ApiError(503, "shutting_down", "the origin is shutting down");
    case "loading":
      throw new ApiError(503, "model_unavailable", "the model is still loading", undefined, { "Retry-After": "1" });
    case "failed":
      throw new ApiError(503, "model_unavailable", `the model failed to load: ${status.loadError ?? "unknown error"}`);
  }
}

/** dims and depth checked against the loaded model (400 naming what it offers), with the origin's defaults filled in. */
function resolveOptions(
  request: {
    dims?: number | undefined;
    depth?: number | undefined;
    earlyExit?: boolean | undefined;
    tokenVectors?: boolean | undefined;
    sparse?: { threshold: number; maxTerms: number } | undefined;
    passages?: { maxPieces: number; maxPassages: number } | undefined;
  },
  model: OriginModel,
): OriginEmbedOptions {
  const issues: { path: string; message: string }[] = [];
  const dims = request.dims ?? Math.max(...model.dims);
  if (!model.dims.includes(dims)) issues.push({ path: "dims", message: `dims must be one of ${model.dims.join(", ")}` });
  const depth = request.depth ?? model.maxDepth;
  if (depth > model.maxDepth) issues.push({ path: "depth", message: `depth must be from 1 to ${model.maxDepth}` });
  if (request.tokenVectors && !model.hasLateHead) {
    issues.push({ path: "tokenVectors", message: `${model.info.name}@${model.info.version} has no late-interaction head to make token vectors` });
  }
  if (request.sparse && !model.hasSparseHead) {
    issues.push({ path: "sparse", message: `${model.info.name}@${model.info.version} has no sparse head to make sparse terms` });
  }
  if (request.passages && request.passages.maxPieces > model.maxLength) {
    issues.push({ path: "passages.maxPieces", message: `maxPieces must be at most ${model.maxLength}, the word pieces ${model.info.name}@${model.info.version} reads per text` });
  }
  if (issues.length > 0) {
    throw new ApiError(400, "invalid_request", `invalid embed request: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, issues);
  }
  return {
    dims,
    depth,
    earlyExit: request.earlyExit ?? false,
    tokenVectors: request.tokenVectors ?? false,
    ...(request.sparse ? { sparse: { threshold: request.sparse.threshold, maxTerms: request.sparse.maxTerms } } : {}),
    ...(request.passages ? { passages: { maxPieces: request.passages.maxPieces, maxPassages: request.passages.maxPassages } } : {}),
  };
}

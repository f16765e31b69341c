/**
 * The edge worker's HTTP surface (Hono), built from injected dependencies so tests and platforms can wire their own.
 * Routes only parse, authenticate and shape responses; the work happens in search-service.ts and indexer.ts.
 *
 *   GET    /                       search page (server-rendered; `?q=` renders results without JavaScript)
 *   POST   /v1/search              {query, topK?, offset?, filter?, dims?, depth?, mode?, fusion?, weights?}
 *   POST   /v1/embed               {input, dims?, depth?}
 *   POST   /v1/embeddings          OpenAI-compatible: {model, input, dimensions?, encoding_format?, user?}
 *   POST   /v1/documents           {documents: [...]}            (Authorization: Bearer <API_KEY>)
 *   GET    /v1/documents/:id       the stored document          (API key)
 *   DELETE /v1/documents/:id                                     (API key)
 *   POST   /v1/webhooks/index      {event, documents | ids} → 202, queued (X-TAESR-Timestamp + X-TAESR-Signature)
 *   GET    /v1/admin/drift         drift score of recent queries against the model's baseline   (API key)
 *   GET    /v1/admin/dead-letters  indexing-queue messages that exhausted their retries          (API key)
 *   PUT    /v1/admin/models/:model/files/:path   upload one file of a model artifact to R2      (API key)
 *   GET    /v1/admin/models        the model route, any switch under way, the uploaded models   (API key)
 *   POST   /v1/admin/models/activate {model} → 202: switch models (blue/green re-embedding)    (API key)
 *   POST   /v1/admin/models/rollback   abandon a switch, or go back to the previous model       (API key)
 *   POST   /v1/admin/models/retire     stop keeping the previous model's index current          (API key)
 *   GET    /v1/health
 *   GET    /openapi.json           OpenAPI 3.1 document of all of the above (openapi.ts)
 *
 * Every failure answers JSON `{error: {code, message, type, param?, issues?}}` (see errors.ts).
 *
 * @module
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { requireApiKey, requireWebhookSignature } from "./auth.js";
import type { AppDeps, EdgeModel } from "./contracts.js";
import { driftReport } from "./drift-recorder.js";
import { ApiError, answerErrorsAsJson } from "./errors.js";
import { background, limit, parseJsonText, readJson, validate } from "./http.js";
import { queueWebhook } from "./index-queue.js";
import { DOCUMENT_EMBEDDING, indexDocuments } from "./indexer.js";
import { modelRef, writeDeployments } from "./model-route.js";
import { ModelArtifactError } from "./model-store.js";
import type { ModelDeployments } from "./rollout-api.js";
import type { SearchIndex } from "./search-index.js";
import { pageSecurityPolicy, renderSearchPage, type PageState } from "./page.js";
import { createEmbeddings } from "./openai-embeddings.js";
import { openApiDocument } from "./openapi.js";
import { LIMITS, activateRequest, deadLettersQuery, documentId, embedRequest, embeddingsRequest, searchRequest, upsertRequest, webhookRequest } from "./schemas.js";
import { embed, fusionDefaultOf, parseMetadata, search, type SearchResponse } from "./search-service.js";
import { settleAll } from "./settle-all.js";

/** Turns a model-loading failure into a 503 that says why, instead of a generic 500. */
function modelUnavailable(error: unknown): never {
  if (error instanceof ApiError) throw error;
  throw new ApiError(503, "model_unavailable", `the embedding model is not available: ${(error as Error).message}`);
}

function withModelErrors(deps: AppDeps): AppDeps {
  return { ...deps, loadModel: () => deps.loadModel().catch(modelUnavailable) };
}

/**
 * What a query uses: the served route's model over that model's own index (model-route.ts), so a query always meets
 * documents its own model embedded. Without live model updates, the one model and index.
 */
async function servingDeps(deps: AppDeps): Promise<AppDeps> {
  const { models } = deps;
  if (!models) return deps;
  const { active } = await models.servingRoute();
  return { ...deps, loadModel: () => models.model(active.model).catch(modelUnavailable), index: models.index(active.index), indexName: active.index };
}

/** One index a write must reach, with the model that embeds for it. */
interface WriteTarget {
  loadModel(): Promise<EdgeModel>;
  index: SearchIndex;
}

/** Every index a write must reach, the serving one first: during and after a switch, both models' indexes. */
async function writeTargets(deps: AppDeps): Promise<WriteTarget[]> {
  const { models } = deps;
  if (!models) return [{ loadModel: deps.loadModel, index: deps.index }];
  return writeDeployments(await models.writeRoute()).map((d) => ({ loadModel: () => models.model(d.model).catch(modelUnavailable), index: models.index(d.index) }));
}

/** The live-model-update seam, or 503 saying what is missing. */
function deploymentsOf(deps: AppDeps): ModelDeployments {
  if (!deps.models) throw new ApiError(503, "not_configured", "live model updates are not configured on this worker (MODEL_ROLLOUT, MODEL_ROUTES and MODELS bindings)");
  return deps.models;
}

/** Artifact problems as the API's errors: an absent model 404, an unusable one 422. */
function artifactError(error: unknown): never {
  if (error instanceof ModelArtifactError) {
    throw error.kind === "missing" ? new ApiError(404, "model_not_found", error.message) : new ApiError(422, "invalid_model", error.message);
  }
  throw error;
}

export function createApp(rawDeps: AppDeps): Hono {
  const deps = withModelErrors(rawDeps);
  const app = new Hono();
  // Checked before the body is read, so an unauthenticated client cannot make the worker buffer megabytes.
  const apiKey = createMiddleware(async (c, next) => {
    await requireApiKey(c.req.header("Authorization"), deps.secrets.apiKey);
    await next();
  });

  app.use("/v1/*", async (c, next) => {
    await next();
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Cache-Control", "no-store");
  });

  app.get("/", async (c) => {
    const nonce = crypto.randomUUID().replaceAll("-", "");
    const query = c.req.query("q") ?? "";
    const modeParam = c.req.query("mode");
    const mode: PageState["mode"] = modeParam === "dense" || modeParam === "lexical" ? modeParam : "hybrid";
    let response: SearchResponse | undefined;
    let error: string | undefined;
    let status: 200 | 400 | 503 = 200;
    if (query.trim()) {
      try {
        response = await search(await servingDeps(deps), validate(searchRequest, { query, mode }, "search"), background(c));
      } catch (caught) {
        if (!(caught instanceof ApiError)) throw caught;
        error = caught.message;
        status = caught.status === 503 ? 503 : 400;
      }
    }
    c.header("Content-Security-Policy", pageSecurityPolicy(nonce));
    return c.html(renderSearchPage({ query, mode, response, error, nonce }), status);
  });

  app.post("/v1/search", limit(LIMITS.body.search), async (c) => {
    const request = await readJson(c, searchRequest, "search request");
    return c.json(await search(await servingDeps(deps), request, background(c)));
  });

  app.post("/v1/embed", limit(LIMITS.body.embed), async (c) => {
    const request = await readJson(c, embedRequest, "embed request");
    return c.json(await embed(await servingDeps(deps), request));
  });

  app.post("/v1/embeddings", limit(LIMITS.body.embed), async (c) => {
    const request = await readJson(c, embeddingsRequest, "embeddings request");
    return c.json(await createEmbeddings(await servingDeps(deps), request));
  });

  app.post("/v1/documents", apiKey, limit(LIMITS.body.documents), async (c) => {
    const { documents } = await readJson(c, upsertRequest, "documents request");
    // Every index of the route (two during and after a model switch) at once; the serving one's outcome is the answer.
    const [outcome] = await settleAll((await writeTargets(deps)).map(async (target) => indexDocuments(await target.loadModel(), target.index, documents)));
    return c.json({ upserted: outcome!.upserted.length, unchanged: outcome!.unchanged.length, ids: documents.map((d) => d.id) });
  });

  app.get("/v1/documents/:id", apiKey, async (c) => {
    const id = validate(documentId, c.req.param("id"), "document id");
    const document = await (await servingDeps(deps)).index.get(id);
    if (!document) throw new ApiError(404, "not_found", `no document with id "${id}"`);
    const { metadataJson, ...fields } = document;
    return c.json({ ...fields, metadata: parseMetadata(metadataJson) });
  });

  app.delete("/v1/documents/:id", apiKey, async (c) => {
    const id = validate(documentId, c.req.param("id"), "document id");
    const outcomes = await settleAll((await writeTargets(deps)).map((target) => target.index.delete([id])));
    if (!outcomes.some((outcome) => outcome.deleted.length > 0)) throw new ApiError(404, "not_found", `no document with id "${id}"`);
    return c.json({ deleted: true, id });
  });

  app.post("/v1/webhooks/index", limit(LIMITS.body.documents), async (c) => {
    // Authenticate the exact bytes received before parsing anything from them.
    const rawBody = await c.req.text();
    await requireWebhookSignature(rawBody, c.req.raw.headers, deps.secrets.webhookSecret, deps.now());
    const event = validate(webhookRequest, parseJsonText(rawBody), "webhook body");
    if (!deps.indexQueue) throw new ApiError(503, "not_configured", "webhooks are disabled: the INDEX_QUEUE binding is not configured on this worker");
    // Accepted, not yet indexed: the queue's consumer indexes it (index-consumer.ts); /v1/health counts the result.
    return c.json(await queueWebhook(deps.indexQueue, event, deps.now()), 202);
  });

  app.get("/v1/admin/drift", apiKey, async (c) => {
    const serving = await servingDeps(deps);
    return c.json(await driftReport(serving, await serving.loadModel()));
  });

  app.put("/v1/admin/models/:model/files/:path{.+}", apiKey, limit(LIMITS.body.modelFile), async (c) => {
    const models = deploymentsOf(deps);
    const ref = validate(modelRef, c.req.param("model"), "model");
    const body = await c.req.arrayBuffer();
    if (body.byteLength === 0) throw new ApiError(400, "invalid_request", "the file is empty: send its bytes as the request body");
    const stored = await models.putFile(ref, c.req.param("path"), body).catch((error: unknown) => {
      if (error instanceof ModelArtifactError) throw new ApiError(400, "invalid_request", error.message);
      throw error;
    });
    return c.json(stored, 201);
  });

  app.get("/v1/admin/models", apiKey, async (c) => {
    const models = deploymentsOf(deps);
    const [state, available] = await Promise.all([models.state(), models.listModels()]);
    return c.json({ ...state, available });
  });

  app.post("/v1/admin/models/activate", apiKey, limit(LIMITS.body.search), async (c) => {
    const models = deploymentsOf(deps);
    const { model } = await readJson(c, activateRequest, "activate request");
    // Loaded (graphs verified, sessions created) before anything changes: a model that cannot serve never starts a switch.
    const loaded = await models.model(model).catch(artifactError);
    if (!loaded.info.dims || loaded.info.dims < DOCUMENT_EMBEDDING.dims) {
      throw new ApiError(422, "invalid_model", `${model} embeds ${loaded.info.dims} dims; the index stores ${DOCUMENT_EMBEDDING.dims}`);
    }
    const state = await models.activate(model);
    return c.json(state, state.rollout ? 202 : 200);
  });

  app.post("/v1/admin/models/rollback", apiKey, async (c) => c.json(await deploymentsOf(deps).rollback()));

  app.post("/v1/admin/models/retire", apiKey, async (c) => c.json(await deploymentsOf(deps).retire()));

  app.get("/v1/admin/dead-letters", apiKey, async (c) => {
    if (!deps.deadLetters) throw new ApiError(503, "not_configured", "no dead-letter store is configured on this worker (INDEX_DEAD_LETTERS)");
    const { limit: count } = validate(deadLettersQuery, c.req.query(), "query");
    return c.json({ deadLetters: await deps.deadLetters.list(count) });
  });

  app.get("/v1/health", async (c) => {
    const serving = await servingDeps(deps);
    const [model, stats] = await Promise.all([serving.loadModel(), serving.index.stats()]);
    return c.json({
      status: "ok",
      model: {
        name: model.info.name,
        version: model.info.version,
        dims: model.info.dims,
        variant: model.info.variant,
        // Which hybrid default a search without fusion/weights gets, and whether it was tuned for this model.
        fusion: fusionDefaultOf(model),
        // The late-interaction rerank this model can do (null: no head); on by default only when its late weight > 0.
        late: model.late ?? null,
        // The learned sparse list this model can make; absent (not null) without a sparse head, so the health answer of
        // every model without one reads exactly as before the list existed.
        ...(model.sparse ? { sparse: model.sparse } : {}),
      },
      index: { backend: stats.backend, shards: stats.shards, documents: stats.documents, modelVersions: stats.modelVersions },
      // Whether hard-routed queries go to the GPU origin now: "open" means they are served at the edge until a probe succeeds.
      origin: deps.origin ? { configured: true, circuit: deps.origin.circuit ?? "closed" } : { configured: false },
      // Which model serves from which index, and any switch under way (null: live model updates not configured).
      route: deps.models ? await deps.models.servingRoute() : null,
    });
  });

  app.get("/openapi.json", (c) => c.json(openApiDocument()));

  // A known path with the wrong method is a 405 naming the allowed ones, not a misleading 404. Derived from the
  // routes registered above (middleware shows up as "ALL"), so the list cannot drift from them.
  const allowed = new Map<string, string[]>();
  for (const { path, method } of app.routes) {
    if (method !== "ALL") allowed.set(path, [...new Set([...(allowed.get(path) ?? []), method])]);
  }
  for (const [path, methods] of allowed) {
    app.all(path, () => {
      throw new ApiError(405, "method_not_allowed", `${path} accepts ${methods.join(", ")}`, undefined, { Allow: methods.join(", ") });
    });
  }

  answerErrorsAsJson(app, "worker");

  return app;
}

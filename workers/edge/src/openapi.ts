/**
 * The OpenAPI 3.1 document served at GET /openapi.json, generated from the zod schemas that validate the requests
 * (schemas.ts, converted with `z.toJSONSchema(…, { io: "input" })`) and describe the responses (response-schemas.ts).
 * A limit, default or field changed there changes the document with it; only the route table below — which route
 * takes which schema, its auth and its failures — is written by hand, and test/worker/openapi.test.ts fails when a
 * route registered in app.ts is missing from it.
 *
 * OpenAPI 3.1 schemas are JSON Schema 2020-12, zod's default target. Two adjustments:
 * - `$defs` that zod emits for recursive schemas (metadata's JSON values) move to `components.schemas`, because a
 *   `#/$defs/…` pointer inside a component would resolve against the document root, where nothing is;
 * - fields in `oneOrMany` (one text or an array of texts) are shown in both forms; zod sees only the array.
 *
 * @module
 * @example
 *   app.get("/openapi.json", (c) => c.json(openApiDocument()));
 */
import { z } from "zod";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../../../src/webhook/signature.js";
import { MODEL_ALIAS } from "./openai-embeddings.js";
import {
  deadLettersResponse,
  deleteResponse,
  driftResponse,
  embedResponse,
  embeddingsResponse,
  errorResponse,
  healthResponse,
  searchResponse,
  storedDocumentResponse,
  artifactFileResponse,
  modelsResponse,
  rolloutStateResponse,
  upsertResponse,
  webhookResponse,
} from "./response-schemas.js";
import { modelRef } from "./model-route.js";
import { checkArtifactPath } from "./model-store.js";
import {
  LIMITS,
  activateRequest,
  documentId,
  embedRequest,
  embeddingsRequest,
  oneOrMany,
  searchMode,
  searchRequest,
  upsertRequest,
  webhookRequest,
} from "./schemas.js";

type JsonSchema = Record<string, unknown>;
type Method = "get" | "post" | "put" | "delete";
type Auth = "apiKey" | "webhook";

/** Named schemas: requests as clients may send them (defaults optional), responses as the server sends them. */
const REQUEST_SCHEMAS = {
  SearchRequest: searchRequest,
  EmbedRequest: embedRequest,
  EmbeddingsRequest: embeddingsRequest,
  UpsertRequest: upsertRequest,
  WebhookRequest: webhookRequest,
  ActivateRequest: activateRequest,
} satisfies Record<string, z.ZodType>;
const RESPONSE_SCHEMAS = {
  Error: errorResponse,
  SearchResponse: searchResponse,
  EmbedResponse: embedResponse,
  EmbeddingsResponse: embeddingsResponse,
  UpsertResponse: upsertResponse,
  StoredDocument: storedDocumentResponse,
  DeleteResponse: deleteResponse,
  WebhookResponse: webhookResponse,
  HealthResponse: healthResponse,
  DriftResponse: driftResponse,
  DeadLettersResponse: deadLettersResponse,
  RolloutState: rolloutStateResponse,
  ModelsResponse: modelsResponse,
  ArtifactFile: artifactFileResponse,
} satisfies Record<string, z.ZodType>;
type SchemaName = keyof typeof REQUEST_SCHEMAS | keyof typeof RESPONSE_SCHEMAS;

interface Operation {
  method: Method;
  /** Hono's spelling (`/v1/documents/:id`), as app.routes lists it. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  body?: { schema: SchemaName; limitBytes: number };
  /** Query-string parameters: name → schema and what it does. */
  query?: Record<string, { schema: z.ZodType; description: string }>;
  /** The success answer: a named JSON schema, or another media type. */
  ok: SchemaName | { mediaType: string; description: string };
  /** Its status when not 200 (202 for work accepted onto the queue). */
  okStatus?: 201 | 202;
  auth?: Auth;
  /** Failures besides the ones every route can give (405 for a known path with another method, 500). */
  errors: number[];
}

/** Why each status happens, for the responses' descriptions. */
const STATUS_REASONS: Record<number, string> = {
  400: "Invalid JSON or a request that fails validation (`invalid_json`, `invalid_request`)",
  401: "Missing or wrong credentials (`unauthorized`)",
  404: "Not found (`not_found`, `model_not_found`)",
  409: "The model route is in another state than the request needs (`conflict`: e.g. a switch is already under way)",
  422: "A model artifact that cannot serve (`invalid_model`: a graph fails its sha256, the manifest is invalid, too few dims)",
  405: "Known path, other method (`method_not_allowed`; the `Allow` header lists the methods)",
  413: "Request body (or, for the webhook, one document as a queue message) over the limit (`payload_too_large`)",
  500: "Unexpected failure (`internal`)",
  503:
    "The model cannot load (`model_unavailable`), the route's secret or binding is not set (`not_configured`), or the " +
    "indexing queue refused a webhook (`queue_unavailable`: send it again)",
};

const WEBHOOK_AUTH_DESCRIPTION =
  `HMAC-SHA256 with the WEBHOOK_SECRET over \`\${timestamp}.\${rawBody}\`, sent as \`${SIGNATURE_HEADER}: sha256=<hex>\` ` +
  `beside \`${TIMESTAMP_HEADER}: <unix seconds>\`; requests more than 5 minutes from the server's clock are refused ` +
  "(src/webhook/signature.ts signs them).";

/** Every route of app.ts. */
const OPERATIONS: Operation[] = [
  {
    method: "get",
    path: "/",
    tag: "search",
    summary: "Search page",
    description:
      "Server-rendered HTML; `?q=` renders results without JavaScript. A query the search refuses answers 400, an " +
      "unavailable model 503 — both as the page, with the message in it.",
    query: {
      q: { schema: z.string(), description: "a query: its results are rendered into the page" },
      // The page offers the modes every model serves; sparse needs a model with the sparse head (POST /v1/search).
      mode: { schema: searchMode.exclude(["sparse"]).default("hybrid"), description: "which lists to search; anything else means hybrid" },
    },
    ok: { mediaType: "text/html", description: "The page" },
    errors: [],
  },
  {
    method: "post",
    path: "/v1/search",
    tag: "search",
    summary: "Search the index (hybrid, dense, lexical or sparse)",
    body: { schema: "SearchRequest", limitBytes: LIMITS.body.search },
    ok: "SearchResponse",
    errors: [400, 413, 503],
  },
  {
    method: "post",
    path: "/v1/embed",
    tag: "embeddings",
    summary: "Embed texts (TAESR's own shape: dims, depth, route)",
    body: { schema: "EmbedRequest", limitBytes: LIMITS.body.embed },
    ok: "EmbedResponse",
    errors: [400, 413, 503],
  },
  {
    method: "post",
    path: "/v1/embeddings",
    tag: "embeddings",
    summary: "Embed texts, OpenAI-compatible",
    description:
      `OpenAI's embeddings API: point the \`openai\` client (or LangChain, LlamaIndex) at \`<this server>/v1\`. \`model\` is ` +
      `"${MODEL_ALIAS}", the served model's name, or name@version (anything else: 404 \`model_not_found\`). \`dimensions\` ` +
      'defaults to the model\'s full width (384); `encoding_format` defaults to "float" (the `openai` client asks for ' +
      '"base64" and decodes it). Depth is chosen by the model\'s router. Token-id inputs are refused.',
    body: { schema: "EmbeddingsRequest", limitBytes: LIMITS.body.embed },
    ok: "EmbeddingsResponse",
    errors: [400, 404, 413, 503],
  },
  {
    method: "post",
    path: "/v1/documents",
    tag: "documents",
    summary: "Add or replace documents (idempotent by content)",
    body: { schema: "UpsertRequest", limitBytes: LIMITS.body.documents },
    ok: "UpsertResponse",
    auth: "apiKey",
    errors: [400, 401, 413, 503],
  },
  {
    method: "get",
    path: "/v1/documents/:id",
    tag: "documents",
    summary: "Read a stored document",
    ok: "StoredDocument",
    auth: "apiKey",
    errors: [400, 401, 404, 503],
  },
  {
    method: "delete",
    path: "/v1/documents/:id",
    tag: "documents",
    summary: "Delete a document",
    ok: "DeleteResponse",
    auth: "apiKey",
    errors: [400, 401, 404, 503],
  },
  {
    method: "post",
    path: "/v1/webhooks/index",
    tag: "documents",
    summary: "Signed webhook: queue an upsert of documents or a delete of ids",
    description:
      "Verified, validated and put on the indexing queue; answered 202 before indexing. The consumer embeds (GPU origin " +
      "first, the edge model when it is unavailable), retries with backoff and dead-letters what keeps failing " +
      "(GET /v1/admin/dead-letters). Per id, the webhook the edge accepted last wins, whatever order the queue delivers in.",
    body: { schema: "WebhookRequest", limitBytes: LIMITS.body.documents },
    ok: "WebhookResponse",
    okStatus: 202,
    auth: "webhook",
    errors: [400, 401, 413, 503],
  },
  {
    method: "get",
    path: "/v1/health",
    tag: "service",
    summary: "Model and index status",
    ok: "HealthResponse",
    errors: [503],
  },
  {
    method: "get",
    path: "/v1/admin/drift",
    tag: "service",
    summary: "Drift of recent queries against the model's baseline",
    ok: "DriftResponse",
    auth: "apiKey",
    errors: [401, 503],
  },
  {
    method: "get",
    path: "/v1/admin/dead-letters",
    tag: "service",
    summary: "Indexing-queue messages that exhausted their retries, newest first",
    query: { limit: { schema: z.number().int().min(1).max(1_000), description: "most records returned (default 100)" } },
    ok: "DeadLettersResponse",
    auth: "apiKey",
    errors: [400, 401, 503],
  },
  {
    method: "put",
    path: "/v1/admin/models/:model/files/:path{.+}",
    tag: "models",
    summary: "Upload one file of a model artifact (manifest.json, the tokenizer, the int8 graphs)",
    description:
      "The raw bytes of `model-artifacts/<model>/<path>`, stored in the artifact store (R2). Nothing is trusted: activation " +
      "checks every graph against the manifest's sha256 and loads the model before switching. `npm run model:publish` uploads " +
      `a whole artifact. At most ${LIMITS.body.modelFile} bytes.`,
    ok: "ArtifactFile",
    okStatus: 201,
    auth: "apiKey",
    errors: [400, 401, 413, 503],
  },
  {
    method: "get",
    path: "/v1/admin/models",
    tag: "models",
    summary: "The model route, any switch under way, and the uploaded models",
    ok: "ModelsResponse",
    auth: "apiKey",
    errors: [401, 503],
  },
  {
    method: "post",
    path: "/v1/admin/models/activate",
    tag: "models",
    summary: "Switch to a model (blue/green): 202 while its index is filled in the background",
    description:
      "The model is loaded first (404 `model_not_found` when absent, 422 `invalid_model` when it cannot serve). Its index is " +
      "then filled in the background by re-embedding the active index, while every write reaches both; queries keep using " +
      "the active model over its own index until the new index holds exactly the same documents, then switch. Activating " +
      "the active model is a no-op (200); activating while another switch runs is 409 `conflict`.",
    body: { schema: "ActivateRequest", limitBytes: LIMITS.body.search },
    ok: "RolloutState",
    okStatus: 202,
    auth: "apiKey",
    errors: [400, 401, 404, 409, 413, 422, 503],
  },
  {
    method: "post",
    path: "/v1/admin/models/rollback",
    tag: "models",
    summary: "Abandon the switch under way, or go back to the previous model (instant: its index was kept current)",
    ok: "RolloutState",
    auth: "apiKey",
    errors: [401, 409, 503],
  },
  {
    method: "post",
    path: "/v1/admin/models/retire",
    tag: "models",
    summary: "Stop keeping the previous model's index current (rollback is then no longer possible)",
    ok: "RolloutState",
    auth: "apiKey",
    errors: [401, 409, 503],
  },
  {
    method: "get",
    path: "/openapi.json",
    tag: "service",
    summary: "This document",
    ok: { mediaType: "application/json", description: "OpenAPI 3.1" },
    errors: [],
  },
];

/** The routes the document describes, as `[method, Hono path]` — for the test that compares them with app.routes. */
export const DOCUMENTED_ROUTES: readonly (readonly [Method, string])[] = OPERATIONS.map((op) => [op.method, op.path]);

/** `/v1/documents/:id` → `/v1/documents/{id}`; a parameter's pattern (`:path{.+}`) is Hono's alone, so it is dropped. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");
}

/** What each path parameter is. */
const PATH_PARAMETERS: Record<string, { description: string; schema: z.ZodType }> = {
  id: { description: "the document id (URL-encoded)", schema: documentId },
  model: { description: "the model, name@version", schema: modelRef },
  path: {
    description: "the file's path inside the artifact directory, e.g. int8/embed.onnx (slashes unencoded)",
    schema: z.string().refine((path) => checkArtifactPath(path) === undefined, "a relative .json or .onnx path"),
  },
};

/** Defs hoisted so far: name → schema, and each one's content as zod emitted it → name (to share twins). */
interface Hoisted {
  defs: Map<string, JsonSchema>;
  byContent: Map<string, string>;
}

/**
 * One zod schema as a JSON Schema for `components`: its `$defs` hoisted under `<name>_<def>` (or onto a def already
 * hoisted with the same content, e.g. the JSON-value schema every metadata field shares), pointers rewritten to them.
 */
function componentSchema(name: string, schema: z.ZodType, io: "input" | "output", hoisted: Hoisted): JsonSchema {
  const { $schema: _, $defs, ...json } = z.toJSONSchema(schema, { target: "draft-2020-12", io, override: showOneOrMany(io) }) as JsonSchema & {
    $defs?: Record<string, JsonSchema>;
  };
  const renamed = new Map<string, string>();
  const fresh: [string, JsonSchema][] = [];
  for (const [defName, def] of Object.entries($defs ?? {})) {
    const content = JSON.stringify(def);
    const existing = hoisted.byContent.get(content);
    if (existing) {
      renamed.set(defName, existing);
      continue;
    }
    const component = `${name}_${defName.replace(/^_+/, "")}`;
    renamed.set(defName, component);
    hoisted.byContent.set(content, component);
    fresh.push([component, def]);
  }
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (value === null || typeof value !== "object") return value;
    const out: JsonSchema = {};
    for (const [key, inner] of Object.entries(value)) {
      if (key !== "$ref" || typeof inner !== "string") out[key] = rewrite(inner);
      else if (inner === "#") out[key] = refTo(name);
      else out[key] = refTo(renamed.get(inner.replace(/^#\/\$defs\//, "")) ?? inner);
    }
    return out;
  };
  for (const [component, def] of fresh) hoisted.defs.set(component, rewrite(def) as JsonSchema);
  return rewrite(json) as JsonSchema;
}

/** Recursive schemas that zod emits as `$defs`, with the component names they get instead of `<schema>_schema0`. */
const NAMED_DEFS: Record<string, z.ZodType> = { JsonValue: z.json() };

/** Registers a recursive schema's def (as zod emits it inside any object) under `name`, so every twin points there. */
function nameDef(name: string, schema: z.ZodType, hoisted: Hoisted): void {
  const { $defs } = z.toJSONSchema(z.object({ value: schema }), { target: "draft-2020-12" }) as { $defs?: Record<string, JsonSchema> };
  const [[defName, def] = []] = Object.entries($defs ?? {});
  if (!defName || !def) return;
  const content = JSON.stringify(def);
  hoisted.byContent.set(content, name);
  hoisted.defs.set(name, JSON.parse(content.replaceAll(`"#/$defs/${defName}"`, JSON.stringify(refTo(name)))) as JsonSchema);
}

/** A small schema inline (a parameter's), without the `$schema` line. */
function plainSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...json } = z.toJSONSchema(schema, { target: "draft-2020-12", io: "input" }) as JsonSchema;
  return json;
}

function refTo(component: string): string {
  return component.startsWith("#") ? component : `#/components/schemas/${component}`;
}

/** zod override: a `oneOrMany` field documented as `item | item[]` instead of only the array it is parsed into. */
function showOneOrMany(io: "input" | "output") {
  return (ctx: { zodSchema: unknown; jsonSchema: JsonSchema }) => {
    const item = oneOrMany.get(ctx.zodSchema as z.ZodType);
    if (!item || io !== "input") return;
    const single = plainSchema(item);
    const many = { ...ctx.jsonSchema };
    for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
    ctx.jsonSchema.anyOf = [single, many];
  };
}

function errorResponses(statuses: number[]): Record<string, unknown> {
  const responses: Record<string, unknown> = {};
  for (const status of [...new Set([...statuses, 405, 500])].sort((a, b) => a - b)) {
    responses[String(status)] = { $ref: `#/components/responses/Error${status}` };
  }
  return responses;
}

function operationObject(op: Operation, pathParameters: JsonSchema[]): JsonSchema {
  const ok =
    typeof op.ok === "string"
      ? { description: "OK", content: { "application/json": { schema: { $ref: refTo(op.ok) } } } }
      : { description: op.ok.description, content: { [op.ok.mediaType]: {} } };
  const query = Object.entries(op.query ?? {}).map(([name, { schema, description }]) => ({
    name,
    in: "query",
    required: false,
    description,
    schema: plainSchema(schema),
  }));
  const parameters = [...pathParameters, ...query];
  return {
    tags: [op.tag],
    summary: op.summary,
    operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase()) || "Page"}`,
    ...(op.description ? { description: op.description } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(op.body
      ? {
          requestBody: {
            required: true,
            description: `JSON, at most ${op.body.limitBytes} bytes`,
            content: { "application/json": { schema: { $ref: refTo(op.body.schema) } } },
          },
        }
      : {}),
    ...(op.auth === "apiKey" ? { security: [{ apiKey: [] }] } : {}),
    ...(op.auth === "webhook" ? { security: [{ webhookTimestamp: [], webhookSignature: [] }] } : {}),
    responses: { [String(op.okStatus ?? 200)]: ok, ...errorResponses(op.errors) },
  };
}

function buildDocument(): JsonSchema {
  const hoisted: Hoisted = { defs: new Map(), byContent: new Map() };
  for (const [name, schema] of Object.entries(NAMED_DEFS)) nameDef(name, schema, hoisted);
  const schemas: Record<string, JsonSchema> = {};
  for (const [name, schema] of Object.entries(REQUEST_SCHEMAS)) schemas[name] = componentSchema(name, schema, "input", hoisted);
  for (const [name, schema] of Object.entries(RESPONSE_SCHEMAS)) schemas[name] = componentSchema(name, schema, "output", hoisted);

  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) {
    const pathParameters = [...op.path.matchAll(/:(\w+)/g)].map(([, name]) => {
      const parameter = PATH_PARAMETERS[name!];
      if (!parameter) throw new Error(`openapi.ts does not describe the path parameter "${name}" of ${op.path}`);
      return { name, in: "path", required: true, description: parameter.description, schema: plainSchema(parameter.schema) };
    });
    (paths[openApiPath(op.path)] ??= {})[op.method] = operationObject(op, pathParameters);
  }

  const statuses = [...new Set(OPERATIONS.flatMap((op) => [...op.errors, 405, 500]))].sort((a, b) => a - b);
  return {
    openapi: "3.1.0",
    info: {
      title: "TAESR Edge API",
      version: "1",
      description:
        "Edge-native semantic search: hybrid search over an index of documents, embeddings (TAESR's own and OpenAI-compatible). " +
        "Every failure answers `{error: {code, message, type, param?, issues?}}`.",
    },
    tags: [
      { name: "search" },
      { name: "embeddings" },
      { name: "documents", description: "Index management: the API key, or a signed webhook" },
      { name: "service" },
      { name: "models", description: "Live model updates: artifacts in R2, blue/green switches, rollback (the API key)" },
    ],
    paths,
    components: {
      schemas: { ...schemas, ...Object.fromEntries(hoisted.defs) },
      responses: Object.fromEntries(
        statuses.map((status) => [
          `Error${status}`,
          { description: STATUS_REASONS[status] ?? "Error", content: { "application/json": { schema: { $ref: refTo("Error") } } } },
        ]),
      ),
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <API_KEY>` (the worker's API_KEY secret)" },
        webhookTimestamp: { type: "apiKey", in: "header", name: TIMESTAMP_HEADER, description: WEBHOOK_AUTH_DESCRIPTION },
        webhookSignature: { type: "apiKey", in: "header", name: SIGNATURE_HEADER, description: WEBHOOK_AUTH_DESCRIPTION },
      },
    },
  };
}

let built: JsonSchema | undefined;

/** The document, built on first use from the schemas as they are (then kept: schemas do not change at run time). */
export function openApiDocument(): JsonSchema {
  built ??= buildDocument();
  return built;
}

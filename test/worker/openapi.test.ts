/**
 * GET /openapi.json: every route the app registers is documented (a route added without documentation fails here),
 * every pointer resolves, and the request schemas in the document are the ones that validate requests — checked by
 * turning the document's schemas back into validators and comparing their verdicts with schemas.ts on the same bodies.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { DOCUMENTED_ROUTES, openApiPath } from "../../workers/edge/src/openapi.js";
import { LIMITS, embeddingsRequest, searchRequest } from "../../workers/edge/src/schemas.js";
import { harness, json } from "./support/edge-harness.js";

type Json = Record<string, unknown>;
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Json>>;
  components: { schemas: Record<string, Json>; responses: Record<string, Json>; securitySchemes: Record<string, Json> };
}

async function fetchDocument(): Promise<{ document: Document; routes: { method: string; path: string }[] }> {
  const h = await harness();
  const response = await h.request("/openapi.json", { apiKey: null });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("application/json");
  return { document: await json<Document>(response), routes: h.app.routes };
}

/** Every `$ref` in the document. */
function refsIn(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((item) => refsIn(item, found));
  else if (value && typeof value === "object") {
    for (const [key, inner] of Object.entries(value)) {
      if (key === "$ref" && typeof inner === "string") found.push(inner);
      else refsIn(inner, found);
    }
  }
  return found;
}

/** A validator built from the document alone: one component schema, its pointers re-aimed at a local `$defs`. */
function validatorFrom(document: Document, name: string): z.ZodType {
  const local = JSON.parse(JSON.stringify(document.components.schemas).replaceAll("#/components/schemas/", "#/$defs/")) as Record<string, Json>;
  return z.fromJSONSchema({ ...local[name], $defs: local });
}

describe("GET /openapi.json", () => {
  it("documents every route the app registers, and no route it does not", async () => {
    const { document, routes } = await fetchDocument();
    expect(document.openapi).toBe("3.1.0");
    // Middleware and the 405 catch-alls are registered as "ALL"; every other entry is a route a client can call.
    const registered = new Set(routes.filter((r) => r.method !== "ALL").map((r) => `${r.method.toLowerCase()} ${r.path}`));
    expect(registered.size).toBeGreaterThanOrEqual(10);
    for (const route of registered) {
      const [method, path] = route.split(" ") as [string, string];
      expect(document.paths[openApiPath(path)]?.[method], `${route} is not in the OpenAPI document (openapi.ts OPERATIONS)`).toBeDefined();
    }
    const documented = new Set(DOCUMENTED_ROUTES.map(([method, path]) => `${method} ${path}`));
    expect([...documented].sort()).toEqual([...registered].sort());
  });

  it("resolves every pointer, and describes auth and errors", async () => {
    const { document } = await fetchDocument();
    for (const ref of new Set(refsIn(document))) {
      const [, section, name] = /^#\/components\/(schemas|responses)\/(.+)$/.exec(ref) ?? [];
      expect(section && name && document.components[section as "schemas" | "responses"][name], `unresolved ${ref}`).toBeTruthy();
    }
    expect(document.components.securitySchemes).toMatchObject({
      apiKey: { type: "http", scheme: "bearer" },
      webhookTimestamp: { type: "apiKey", in: "header", name: "X-TAESR-Timestamp" },
      webhookSignature: { type: "apiKey", in: "header", name: "X-TAESR-Signature" },
    });
    expect(document.paths["/v1/documents"]!.post!.security).toEqual([{ apiKey: [] }]);
    expect(document.paths["/v1/documents/{id}"]!.delete!.security).toEqual([{ apiKey: [] }]);
    expect(document.paths["/v1/webhooks/index"]!.post!.security).toEqual([{ webhookTimestamp: [], webhookSignature: [] }]);
    expect(document.paths["/v1/embeddings"]!.post!.security).toBeUndefined();
    expect(document.paths["/v1/embeddings"]!.post!.responses).toMatchObject({ "404": { $ref: "#/components/responses/Error404" } });
    expect(document.components.schemas.Error).toMatchObject({ required: ["error"] });
  });

  it("carries the zod schemas' requirements and limits", async () => {
    const { document } = await fetchDocument();
    const search = document.components.schemas.SearchRequest as { required: string[]; properties: Record<string, Json>; additionalProperties: boolean };
    expect(search.required).toEqual(["query"]);
    expect(search.additionalProperties).toBe(false);
    expect(search.properties.topK).toMatchObject({ type: "integer", minimum: LIMITS.topK.min, maximum: LIMITS.topK.max, default: LIMITS.topK.default });
    expect(search.properties.query).toMatchObject({ maxLength: LIMITS.queryChars });

    const embeddings = document.components.schemas.EmbeddingsRequest as { required: string[]; properties: Record<string, Json> };
    expect(embeddings.required).toEqual(["model", "input"]);
    // One text or an array of them: both forms, with the array's limits.
    expect(embeddings.properties.input).toMatchObject({
      anyOf: [{ type: "string", maxLength: LIMITS.embedInputChars }, { type: "array", maxItems: LIMITS.embedInputs }],
    });
  });

  it("accepts and refuses the same bodies as the schemas that validate requests", async () => {
    const { document } = await fetchDocument();
    const cases: [string, z.ZodType, unknown[]][] = [
      [
        "SearchRequest",
        searchRequest,
        [
          { query: "lighthouse" },
          { query: "lighthouse", topK: LIMITS.topK.max, dims: 64, mode: "dense", fusion: "rrf", weights: { lexical: 2 } },
          { query: "lighthouse", topK: LIMITS.topK.max + 1 },
          { query: "lighthouse", topK: 2.5 },
          { query: "lighthouse", top_k: 5 },
          { query: "lighthouse", dims: 256 },
          { topK: 5 },
        ],
      ],
      [
        "EmbeddingsRequest",
        embeddingsRequest,
        [
          { model: "taesr-edge", input: "hello" },
          { model: "taesr-edge", input: ["a", "b"], dimensions: 64, encoding_format: "base64", user: "u" },
          { model: "taesr-edge", input: "hello", dimensions: 100 },
          { model: "taesr-edge", input: [] },
          { model: "taesr-edge", input: "x".repeat(LIMITS.embedInputChars + 1) },
          { input: "hello" },
          { model: "taesr-edge", input: "hello", extra: true },
        ],
      ],
    ];
    for (const [name, schema, bodies] of cases) {
      const fromDocument = validatorFrom(document, name);
      for (const body of bodies) {
        expect(fromDocument.safeParse(body).success, `${name} ${JSON.stringify(body).slice(0, 80)}`).toBe(schema.safeParse(body).success);
      }
      expect(fromDocument.safeParse(bodies[0]).success).toBe(true);
    }
  });
});

/**
 * The Worker's real entry (workers/edge/src/index.ts) as wrangler runs it: bindings from wrangler.toml, the bundled
 * model through model-loader.ts, no test wiring. Proves the wiring; the behaviour is covered by the other worker tests.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { manifest, variant as bundledVariant } from "../../workers/edge/src/bundled-model.js";

const worker = exports.default;

describe("worker entry", () => {
  it("serves the search page and 404s unknown routes as JSON", async () => {
    const page = await worker.fetch("http://edge.test/");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<form");
    const missing = await worker.fetch("http://edge.test/v1/missing");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("reports health with the bundled model", async () => {
    const response = await worker.fetch("http://edge.test/v1/health");
    expect(response.status).toBe(200);
    const body = (await response.json()) as { status: string; model: Record<string, unknown>; index: { backend: string; shards: number; documents: number } };
    expect(body.status).toBe("ok");
    // The hybrid default in force: the manifest's tuned fusion when it ships one, else the built-in constants.
    const tuned = manifest.retrieval?.fusion;
    const fusion = tuned
      ? { method: tuned.method, weights: tuned.weights, source: "manifest", tunedOn: tuned.tunedOn }
      : { method: "convex", weights: { lexical: 0.7, dense: 0.3 }, source: "built-in" };
    // A bundled model with a late-interaction head reports the rerank it can do; one without, null.
    const late = manifest.architecture.lateHead ? expect.objectContaining({ dims: manifest.architecture.lateHead.dim }) : null;
    // A bundled model with the sparse head reports the cut its terms are kept with (the Worker's: weights above 0, ≤ 256).
    const sparse = manifest.architecture.sparseHead ? { sparse: { threshold: 0, maxTerms: 256 } } : {};
    expect(body.model).toEqual({ name: manifest.name, version: manifest.version, dims: 384, variant: bundledVariant, fusion, late, ...sparse });
    expect(body.model.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(body.index).toMatchObject({ backend: "durable-objects", shards: Number(env.INDEX_SHARDS || 1) });
  });

  it.skipIf(Boolean(env.API_KEY))("keeps document management closed when API_KEY is not set", async () => {
    const response = await worker.fetch("http://edge.test/v1/documents", { method: "POST", body: "{}" });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: { code: "not_configured" } });
  });
});

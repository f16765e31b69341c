/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * Drift detection end to end inside workerd: searches through the app record their queries, isolates flush them to
 * the real DriftMonitor Durable Object (SQLite), and GET /v1/admin/drift reports the verdict against the model's
 * baseline. The bundled model's own baseline needs 200 queries for a verdict; the crossing is tested with copies of it
 * whose minimum is small and whose mean sits far from any real query, so the verdict is certain.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { baselineFromFeatures, queryFeatures, type DriftBaseline } from "../../src/model/index.js";
import { normalize } from "../../src/tokenizer/normalize.js";
import type { EdgeModel } from "../../workers/edge/src/contracts.js";
import { FLUSH_EVERY } from "../../workers/edge/src/drift-recorder.js";
import { loadEdgeModel } from "../../workers/edge/src/model-loader.js";
import { harness, json, type Harness } from "./support/edge-harness.js";

interface DriftBody {
  status: string;
  model: { name: string; version: string; variant?: string };
  score: number | null;
  threshold: number;
  drifted: boolean;
  count: number;
  minimumCount: number;
  components: { embedding: number; coverage: { shift: number; live: number; baseline: number } } | null;
  window: { buckets: number; since: number | null };
  baseline: { count: number; source: { dataset: string }; embedding: DriftBaseline["embedding"] };
  message?: string;
}

const QUERIES = [
  "lighthouse keeper trims the wick",
  "glaciers carve u-shaped valleys",
  "espresso extraction pressure",
  "vitamin d deficiency and bone density",
  "how do vaccines train the immune system",
  "tidal forces and the moon",
];

async function search(h: Harness, query: string, extra: Record<string, unknown> = {}): Promise<void> {
  const response = await h.request("/v1/search", { method: "POST", json: { query, ...extra } });
  expect(response.status).toBe(200);
}

async function drift(h: Harness): Promise<DriftBody> {
  const response = await h.request("/v1/admin/drift");
  expect(response.status).toBe(200);
  return json<DriftBody>(response);
}

/** The bundled model with its baseline replaced. */
async function withBaseline(change: (baseline: DriftBaseline) => DriftBaseline | undefined): Promise<EdgeModel> {
  const model = await loadEdgeModel(env);
  expect(model.drift, "the bundled manifest carries a drift baseline (npm run drift:baseline -- --write)").toBeDefined();
  return { ...model, drift: change(model.drift!) };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("GET /v1/admin/drift", () => {
  it("needs the API key", async () => {
    const h = await harness();
    expect((await h.request("/v1/admin/drift", { apiKey: null })).status).toBe(401);
  });

  it("says so when the model has no baseline, and records nothing", async () => {
    const h = await harness({ model: await withBaseline(() => undefined) });
    await search(h, QUERIES[0]!);
    const body = await drift(h);
    expect(body.status).toBe("no_baseline");
    expect(body.message).toMatch(/npm run drift:baseline/);
  });

  it("counts the searches embedded like the baseline, and gives no verdict below the minimum", async () => {
    const h = await harness();
    for (const query of QUERIES) await search(h, query);
    // Not comparable with a 128-d hybrid baseline at depth auto: other width, fixed depth, dense routing, no embedding.
    await search(h, QUERIES[0]!, { dims: 64 });
    await search(h, QUERIES[0]!, { depth: 6 });
    await search(h, QUERIES[0]!, { mode: "dense" });
    await search(h, QUERIES[0]!, { mode: "lexical" });
    const body = await drift(h);
    expect(body).toMatchObject({
      status: "insufficient_data",
      count: QUERIES.length,
      minimumCount: h.model.drift!.minimumCount,
      threshold: h.model.drift!.threshold,
      drifted: false,
      score: null,
      model: { version: h.model.info.version },
      baseline: { count: h.model.drift!.count, embedding: { dims: 128, depth: "auto", ranking: "hybrid" } },
    });
    expect(body.window.buckets).toBe(1);
  });

  it("reports drift past the threshold and warns once per crossing", async () => {
    // The baseline's mean moved 10 of its spreads away from where queries land: every window scores far above it.
    const model = await withBaseline((b) => ({ ...b, minimumCount: 4, mean: b.mean.map((m, j) => m + 10 * b.std[j]!) }));
    const h = await harness({ model });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    // Enough searches for one flush from the query path itself (no waitUntil in tests: the flush is awaited).
    for (let i = 0; i < FLUSH_EVERY; i++) await search(h, QUERIES[i % QUERIES.length]!);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/^drift: .*score \d+\.\d+ > threshold/);

    for (const query of QUERIES) await search(h, query);
    const body = await drift(h);
    expect(body).toMatchObject({ status: "ok", drifted: true, count: FLUSH_EVERY + QUERIES.length, minimumCount: 4 });
    expect(body.score!).toBeGreaterThan(body.threshold);
    expect(body.components!.embedding).toBeGreaterThan(5);
    // Still drifted, so no second warning.
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it("is not drifted when the traffic is the queries the baseline was made from", async () => {
    // A baseline made here the way the CLI makes one (normalised text, 128-d, depth auto for hybrid, the tokenizer's
    // pieces): searching the same queries must record the same features, so every shift is 0.
    const bundled = await loadEdgeModel(env);
    const features: Float64Array[] = [];
    for (const query of QUERIES) {
      const text = normalize(query);
      const { embeddings } = await bundled.embedder.embed([text], { dims: 128, depth: "auto", ranking: "hybrid" });
      features.push(queryFeatures(embeddings[0]!, bundled.tokenizer.tokenize(text)));
    }
    const baseline = baselineFromFeatures(features, {
      embedding: { variant: "int8", dims: 128, depth: "auto", ranking: "hybrid" },
      source: { dataset: "worker-test", file: "QUERIES", queries: QUERIES.length },
      date: "2026-01-01",
      calibration: { sampleSize: 2, replicates: 100, falseAlarmRate: 0.05, seed: 1 },
    });
    const h = await harness({ model: { ...bundled, drift: baseline } });
    for (const query of QUERIES) await search(h, query);
    const body = await drift(h);
    expect(body).toMatchObject({ status: "ok", drifted: false, count: QUERIES.length, score: 0 });
    expect(body.components!.coverage.live).toBeCloseTo(baseline.coverage.mean, 5);
  });

  it("ages old traffic out of the window", async () => {
    const h = await harness();
    for (const query of QUERIES) await search(h, query);
    expect((await drift(h)).count).toBe(QUERIES.length);
    h.setNow(Date.now() + 8 * 24 * 3_600_000);
    expect(await drift(h)).toMatchObject({ count: 0, window: { buckets: 0, since: null } });
  });
});

/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * Hard-routed queries go to the GPU origin; when it cannot answer, the edge embeds them itself at full depth and says
 * why. The origin here is the real OriginClient (timeout, circuit breaker, contract validation) over a fetch that
 * answers like workers/origin would — computed by the bundled model at full depth — or fails on demand, so every
 * failure path is deterministic inside workerd. The real origin process over loopback is covered in test/e2e.
 *
 * With the bundled model, hybrid searches route by its FastREM router (labelled on hybrid retrieval), which sends
 * ordinary queries to 1 step; dense-only searches route by the length rule (> 32 word pieces → hard), so the hard
 * queries here are long dense-mode queries.
 */
import { describe, expect, it } from "vitest";
import type { EdgeModel } from "../../workers/edge/src/contracts.js";
import { OriginClient } from "../../workers/edge/src/origin-client.js";
import { harness, json, type Harness } from "./support/edge-harness.js";

interface SearchBody {
  results: { id: string }[];
  model: { depth: number; route: string; earlyExit: boolean; cached: boolean; servedBy: string; originFallback: string | null };
}

/** KV outlives a test, so every test asks its own long query (a cached vector would hide the path under test). */
const hardQuery = () => `${HARD_TEXT} ${crypto.randomUUID()}`;
const HARD_TEXT =
  "which lighthouse keepers trimmed the wick and wound the clockwork that turned the great lens every night along the " +
  "northern coast in the years before electric lamps replaced the oil burners and the keepers left their towers";
const EASY_QUERY = "lighthouse keeper";

type Behaviour = "answer" | "fail" | "wrong-model";

/** A fetch that plays the origin: the bundled model at full depth, or the failure the test asks for. */
function originFetch(model: EdgeModel, behaviour: () => Behaviour, calls: string[][]): typeof fetch {
  return async (_input, init) => {
    const body = JSON.parse(String(init?.body)) as { input: string[]; dims: number; depth: number };
    calls.push(body.input);
    const mode = behaviour();
    if (mode === "fail") throw new TypeError("connect ECONNREFUSED 127.0.0.1:8790");
    const result = await model.embedder.embed(body.input, { dims: body.dims, depth: body.depth, earlyExit: false });
    const version = mode === "wrong-model" ? "9.9.9" : model.info.version;
    return Response.json({
      embeddings: result.embeddings.map((v) => Array.from(v)),
      dims: body.dims,
      depth: result.depth,
      model: { name: model.info.name, version, variant: "fp32" },
      provider: "cpu",
    });
  };
}

async function withOrigin(behaviour: () => Behaviour): Promise<{ h: Harness; calls: string[][] }> {
  const calls: string[][] = [];
  const plain = await harness();
  const origin = new OriginClient({ url: "http://origin.test", secret: "s3cret", fetch: originFetch(plain.model, behaviour, calls), failureThreshold: 3 });
  const h = await harness({ origin, model: plain.model });
  const documents = [
    { id: "lighthouse", title: "Keepers of the lighthouse", text: "The lighthouse keeper trimmed the wick and wound the clockwork every night." },
    { id: "glacier", title: "Glaciers", text: "A glacier grinds the bedrock and leaves a U-shaped valley behind." },
  ];
  expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
  return { h, calls };
}

async function searchBody(h: Harness, query: string): Promise<SearchBody> {
  const response = await h.request("/v1/search", { method: "POST", json: { query, mode: "dense", topK: 2 } });
  expect(response.status).toBe(200);
  return json<SearchBody>(response);
}

describe("GPU origin delegation", () => {
  it("sends hard-routed queries to the origin, keeps the rest at the edge, and caches the origin's vectors apart", async () => {
    const { h, calls } = await withOrigin(() => "answer");
    const HARD_QUERY = hardQuery();
    const hard = await searchBody(h, HARD_QUERY);
    expect(hard.model).toMatchObject({ route: "hard", servedBy: "origin", originFallback: null, depth: 6, earlyExit: false, cached: false });
    expect(hard.results).toHaveLength(2);
    expect(calls).toHaveLength(1);

    const again = await searchBody(h, HARD_QUERY);
    expect(again.model).toMatchObject({ servedBy: "origin", cached: true });
    expect(calls).toHaveLength(1); // the cache answered

    const easy = await searchBody(h, EASY_QUERY);
    expect(easy.model).toMatchObject({ servedBy: "edge", originFallback: null });
    // A depth the request fixes is the request's choice, not a route: the edge serves it.
    const fixed = await h.request("/v1/search", { method: "POST", json: { query: hardQuery(), mode: "dense", depth: 6 } });
    expect((await json<SearchBody>(fixed)).model).toMatchObject({ servedBy: "edge", route: "fixed", originFallback: null });
    expect(calls).toHaveLength(1);
  });

  it("serves from the edge at full depth when the origin fails, says why, and does not cache the fallback", async () => {
    const { h, calls } = await withOrigin(() => "fail");
    const HARD_QUERY = hardQuery();
    const first = await searchBody(h, HARD_QUERY);
    expect(first.model).toMatchObject({ route: "hard", servedBy: "edge", originFallback: "network", depth: 6, earlyExit: false, cached: false });
    expect(first.results).toHaveLength(2);
    // Not cached: the next identical query tries the origin again (until the breaker opens).
    const second = await searchBody(h, HARD_QUERY);
    expect(second.model).toMatchObject({ servedBy: "edge", originFallback: "network", cached: false });
    expect(calls).toHaveLength(2);
  });

  it("stops calling a failing origin once its circuit opens, and still answers every search", async () => {
    let failing = true;
    const { h, calls } = await withOrigin(() => (failing ? "fail" : "answer"));
    const reasons: (string | null)[] = [];
    for (let i = 0; i < 5; i++) reasons.push((await searchBody(h, hardQuery())).model.originFallback);
    expect(reasons).toEqual(["network", "network", "network", "circuit_open", "circuit_open"]);
    expect(calls).toHaveLength(3);
    expect((await json<{ origin: unknown }>(await h.request("/v1/health"))).origin).toEqual({ configured: true, circuit: "open" });
    failing = false;
    // While the circuit is open (30 s cooldown) the edge keeps serving without trying.
    expect((await searchBody(h, hardQuery())).model).toMatchObject({ servedBy: "edge", originFallback: "circuit_open" });
  });

  it("refuses vectors from an origin running another model version", async () => {
    const { h, calls } = await withOrigin(() => "wrong-model");
    const body = await searchBody(h, hardQuery());
    expect(body.model).toMatchObject({ servedBy: "edge", originFallback: "model_mismatch", depth: 6 });
    expect(calls).toHaveLength(1);
  });
});

/**
 * The edge's origin client against a fake origin (a real node:http server on loopback whose answers each test
 * scripts) with an injected clock: every failure surfaces as OriginUnavailableError with its reason, and the circuit
 * breaker opens after N consecutive failures, refuses without calling while open, and lets one probe through after
 * the cooldown that closes it on success or reopens it on failure.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CircuitBreaker } from "../../workers/edge/src/circuit-breaker.js";
import { OriginClient, OriginUnavailableError, type OriginClientOptions } from "../../workers/edge/src/origin-client.js";

type Behaviour = "ok" | "error500" | "unauthorized" | "hang" | "malformed" | "not_json" | "wrong_count" | "sparse_missing" | "sparse_too_many" | "sparse_duplicate" | "sparse_zero_weight";

const SECRET = "test-secret";
let server: Server;
let url: string;
let behaviour: Behaviour;
let received: { authorization: string | undefined; body: unknown }[];
/** Responses held by "hang", ended after each test so the server can close. */
let held: ServerResponse[];

function answer(request: IncomingMessage, response: ServerResponse, body: string): void {
  const parsed = JSON.parse(body) as { input: string[]; dims: number; depth: number; sparse?: { maxTerms: number } };
  received.push({ authorization: request.headers.authorization, body: parsed });
  const json = (status: number, value: unknown) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(value));
  };
  const rows = (count: number) => Array.from({ length: count }, (_, i) => Array.from({ length: parsed.dims }, (_, j) => (i === j ? 1 : 0)));
  const ok = (count: number) =>
    json(200, { embeddings: rows(count), dims: parsed.dims, depth: parsed.depth, model: { name: "fake", version: "0.0.0", variant: "fp32" }, provider: "cpu" });
  // Sparse terms as the origin sends them: heaviest first; "sparse_*" behaviours break one rule each.
  const terms = (i: number): [number, number][] => [[10 + i, 0.9], [3, 0.4]];
  const withSparse = (sparse: unknown) =>
    json(200, { embeddings: rows(parsed.input.length), sparse, dims: parsed.dims, depth: parsed.depth, model: { name: "fake", version: "0.0.0", variant: "fp32" }, provider: "cpu" });
  switch (behaviour) {
    case "ok":
      return parsed.sparse ? withSparse(parsed.input.map((_, i) => terms(i))) : ok(parsed.input.length);
    case "sparse_missing":
      return ok(parsed.input.length);
    case "sparse_too_many":
      return withSparse(parsed.input.map(() => Array.from({ length: parsed.sparse!.maxTerms + 1 }, (_, j): [number, number] => [j, 1])));
    case "sparse_duplicate":
      return withSparse(parsed.input.map((): [number, number][] => [[5, 0.5], [5, 0.4]]));
    case "sparse_zero_weight":
      return withSparse(parsed.input.map((): [number, number][] => [[5, 0]]));
    case "wrong_count":
      return ok(parsed.input.length + 1);
    case "error500":
      return json(500, { error: { code: "internal", message: "boom" } });
    case "unauthorized":
      return json(401, { error: { code: "unauthorized", message: "invalid origin secret" } });
    case "malformed":
      return json(200, { embeddings: "not a matrix" });
    case "not_json":
      response.writeHead(200, { "content-type": "application/json" });
      return void response.end("{ this is not json");
    case "hang":
      held.push(response);
      return;
  }
}

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => answer(request, response, body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

let clock: number;
beforeEach(() => {
  behaviour = "ok";
  received = [];
  for (const response of held ?? []) response.destroy();
  held = [];
  clock = 1_000_000;
});

function client(options: Partial<OriginClientOptions> = {}): OriginClient {
  return new OriginClient({ url, secret: SECRET, failureThreshold: 2, cooldownMs: 30_000, timeoutMs: 5_000, now: () => clock, ...options });
}

async function failure(promise: Promise<unknown>): Promise<OriginUnavailableError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(OriginUnavailableError);
  return error as OriginUnavailableError;
}

describe("OriginClient", () => {
  it("sends the secret, texts, dims and depth, and returns Float32Array rows", async () => {
    const result = await client().embed(["a", "b"], { dims: 64, depth: 6 });
    expect(received).toEqual([{ authorization: `Bearer ${SECRET}`, body: { input: ["a", "b"], dims: 64, depth: 6 } }]);
    expect(result.embeddings).toHaveLength(2);
    expect(result.embeddings[0]).toBeInstanceOf(Float32Array);
    expect(result.embeddings[1]![1]).toBe(1);
    expect(result).toMatchObject({ dims: 64, depth: 6, provider: "cpu", model: { name: "fake" } });
  });

  it("names each failure: http_<status>, bad_response (malformed, not JSON, wrong count), network, timeout", async () => {
    const origin = client({ failureThreshold: 100 });
    behaviour = "error500";
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("http_500");
    behaviour = "unauthorized";
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("http_401");
    behaviour = "malformed";
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("bad_response");
    behaviour = "not_json";
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("bad_response");
    behaviour = "wrong_count";
    const inconsistent = await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    expect(inconsistent.reason).toBe("bad_response");
    expect(inconsistent.message).toMatch(/2 embeddings for 1 texts/);

    behaviour = "hang";
    const slow = client({ failureThreshold: 100, timeoutMs: 50 });
    expect((await failure(slow.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("timeout");

    // A port nobody listens on: bind one, note it, close it.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    expect((await failure(client({ url: deadUrl }).embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("network");
  });

  it("asks for sparse terms with the edge's cut and returns them per text; refuses answers that break the cut", async () => {
    const cut = { threshold: 0, maxTerms: 4 };
    const result = await client().embed(["a", "b"], { dims: 64, depth: 1, sparse: cut });
    expect(received[0]!.body).toEqual({ input: ["a", "b"], dims: 64, depth: 1, sparse: cut });
    expect(result.sparse).toEqual([{ 10: 0.9, 3: 0.4 }, { 11: 0.9, 3: 0.4 }]);
    const origin = client({ failureThreshold: 100 });
    for (const [broken, message] of [
      ["sparse_missing", /no sparse terms, which were asked for/],
      ["sparse_too_many", /not at most 4 distinct ids/],
      ["sparse_duplicate", /not at most 4 distinct ids/],
      ["sparse_zero_weight", /weights above 0/],
    ] as const) {
      behaviour = broken;
      const error = await failure(origin.embed(["a"], { dims: 64, depth: 1, sparse: cut }));
      expect(error.reason, broken).toBe("bad_response");
      expect(error.message, broken).toMatch(message);
    }
    // Not asked for: none returned, none required.
    behaviour = "ok";
    expect(await origin.embed(["a"], { dims: 64, depth: 1 })).not.toHaveProperty("sparse");
  });

  it("opens after N consecutive failures and then refuses without calling the origin", async () => {
    const origin = client();
    behaviour = "error500";
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    expect(origin.circuit).toBe("closed");
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    expect(origin.circuit).toBe("open");

    behaviour = "ok";
    const calls = received.length;
    const refused = await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    expect(refused.reason).toBe("circuit_open");
    expect(received.length).toBe(calls);
    clock += 29_999;
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("circuit_open");
    expect(received.length).toBe(calls);
  });

  it("a success in between resets the count: only consecutive failures open it", async () => {
    const origin = client();
    behaviour = "error500";
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    behaviour = "ok";
    await origin.embed(["a"], { dims: 64, depth: 6 });
    behaviour = "error500";
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    expect(origin.circuit).toBe("closed");
  });

  it("after the cooldown, a successful probe closes the circuit", async () => {
    const origin = client();
    behaviour = "error500";
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    clock += 30_000;
    expect(origin.circuit).toBe("half_open");
    behaviour = "ok";
    await expect(origin.embed(["probe"], { dims: 64, depth: 6 })).resolves.toMatchObject({ dims: 64 });
    expect(origin.circuit).toBe("closed");
    await expect(origin.embed(["next"], { dims: 64, depth: 6 })).resolves.toMatchObject({ dims: 64 });
  });

  it("after the cooldown, a failed probe reopens it for another cooldown", async () => {
    const origin = client();
    behaviour = "error500";
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    clock += 30_000;
    expect((await failure(origin.embed(["probe"], { dims: 64, depth: 6 }))).reason).toBe("http_500");
    expect(origin.circuit).toBe("open");
    behaviour = "ok";
    const calls = received.length;
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("circuit_open");
    expect(received.length).toBe(calls);
    clock += 30_000;
    await expect(origin.embed(["probe 2"], { dims: 64, depth: 6 })).resolves.toMatchObject({ dims: 64 });
    expect(origin.circuit).toBe("closed");
  });

  it("half-open lets exactly one probe through; others are refused while it runs", async () => {
    const origin = client({ timeoutMs: 200 });
    behaviour = "error500";
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    await failure(origin.embed(["a"], { dims: 64, depth: 6 }));
    clock += 30_000;
    behaviour = "hang";
    const probe = origin.embed(["probe"], { dims: 64, depth: 6 });
    const second = await failure(origin.embed(["second"], { dims: 64, depth: 6 }));
    expect(second.reason).toBe("circuit_open");
    // The held probe times out: a timeout is a failure like any other, so the circuit opens again.
    expect((await failure(probe)).reason).toBe("timeout");
    expect(origin.circuit).toBe("open");
  });

  it("a timeout counts toward opening the circuit", async () => {
    const origin = client({ failureThreshold: 1, timeoutMs: 50 });
    behaviour = "hang";
    expect((await failure(origin.embed(["a"], { dims: 64, depth: 6 }))).reason).toBe("timeout");
    expect(origin.circuit).toBe("open");
  });
});

describe("CircuitBreaker", () => {
  it("rejects settings that cannot work", () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(/failureThreshold/);
    expect(() => new CircuitBreaker({ cooldownMs: -1 })).toThrow(/cooldownMs/);
  });
});

/**
 * POST /v1/webhooks/index inside workerd: HMAC-SHA256 over `${timestamp}.${rawBody}`, the ±5-minute replay window in
 * both directions, constant-time comparison (behaviourally: any wrong signature is refused), then 202 and the event on
 * the indexing queue (a recording producer here; index-queue.test.ts covers splitting and the consumer). The app's
 * clock is pinned so the window edges are exact.
 */
import { describe, expect, it } from "vitest";
import { signWebhook } from "../../src/webhook/signature.js";
import { WEBHOOK_SECRET, harness, json, type Harness } from "./support/edge-harness.js";
import { RecordingQueue, consumerFor, deliver as consume } from "./support/queue-harness.js";

const NOW_SECONDS = 1_760_000_000;

const documents = [
  { id: "orbit", title: "Why satellites stay in orbit", text: "A satellite falls toward the Earth but moves sideways fast enough that the surface curves away." },
  { id: "compost", title: "Making garden compost", text: "Layer green kitchen scraps with brown leaves and turn the heap so microbes get oxygen." },
];

async function pinned(queue = new RecordingQueue()): Promise<Harness> {
  const h = await harness({ indexQueue: queue });
  h.setNow(NOW_SECONDS * 1000);
  return h;
}

async function deliver(
  h: Harness,
  payload: unknown,
  { secret = WEBHOOK_SECRET, at = NOW_SECONDS, body }: { secret?: string; at?: number; body?: string } = {},
): Promise<Response> {
  const signedBody = JSON.stringify(payload);
  const headers = await signWebhook(secret, signedBody, at);
  return h.request("/v1/webhooks/index", { method: "POST", apiKey: null, headers, body: body ?? signedBody });
}

async function expectRefused(response: Response, status: number, message: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  const body = await json<{ error: { code: string; message: string } }>(response);
  expect(body.error.message).toMatch(message);
}

describe("POST /v1/webhooks/index", () => {
  it("answers 202 with what it queued; the consumer indexes it, a re-delivery changes nothing, and deletes by id", async () => {
    const queue = new RecordingQueue();
    const h = await pinned(queue);
    const first = await deliver(h, { event: "upsert", documents });
    expect(first.status).toBe(202);
    expect(await json(first)).toEqual({ event: "upsert", queued: 2, ids: ["orbit", "compost"] });
    // Accepted, not indexed: nothing is searchable until the consumer runs.
    expect(await json(await h.request("/v1/health"))).toMatchObject({ index: { documents: 0 } });

    const again = await deliver(h, { event: "upsert", documents });
    const removed = await deliver(h, { event: "delete", ids: ["compost", "never-indexed"] });
    expect(removed.status).toBe(202);
    expect(await json(removed)).toEqual({ event: "delete", queued: 2, ids: ["compost", "never-indexed"] });
    expect(queue.messages.map((m) => m.kind)).toEqual(["upsert", "upsert", "delete"]);
    // Versions follow acceptance, strictly, even under the pinned clock.
    const versions = queue.messages.map((m) => m.version);
    expect(versions[0]! < versions[1]! && versions[1]! < versions[2]!).toBe(true);
    expect(again.status).toBe(202);

    const consumer = consumerFor(h);
    const applied = await consume(consumer, queue.messages);
    expect(applied.acked).toHaveLength(3);
    expect(applied.outcomes.map(({ kind, applied, unchanged }) => ({ kind, applied: applied.sort(), unchanged: unchanged.sort() }))).toEqual([
      { kind: "upsert", applied: ["compost", "orbit"], unchanged: [] },
      { kind: "upsert", applied: [], unchanged: ["compost", "orbit"] },
      { kind: "delete", applied: ["compost"], unchanged: ["never-indexed"] },
    ]);

    const search = await json<{ results: { id: string }[] }>(
      await h.request("/v1/search", { method: "POST", json: { query: "kitchen scraps brown leaves", topK: 10 } }),
    );
    expect(search.results.map((r) => r.id)).toEqual(["orbit"]);
  });

  it("refuses a request without the signature headers", async () => {
    const h = await pinned();
    const body = JSON.stringify({ event: "upsert", documents });
    await expectRefused(await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, body }), 401, /missing X-TAESR-Timestamp/);
    await expectRefused(
      await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, body, headers: { "X-TAESR-Timestamp": String(NOW_SECONDS) } }),
      401,
      /missing X-TAESR-Signature/,
    );
  });

  it("refuses a wrong secret, a tampered body and a malformed signature", async () => {
    const h = await pinned();
    await expectRefused(await deliver(h, { event: "upsert", documents }, { secret: "not-the-secret" }), 401, /X-TAESR-Signature does not match/);
    const tampered = JSON.stringify({ event: "delete", ids: ["orbit"] });
    await expectRefused(await deliver(h, { event: "upsert", documents }, { body: tampered }), 401, /X-TAESR-Signature does not match/);
    const headers = { "X-TAESR-Timestamp": String(NOW_SECONDS), "X-TAESR-Signature": "sha256=00" };
    await expectRefused(
      await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, headers, body: "{}" }),
      401,
      /X-TAESR-Signature does not match/,
    );
    expect(await json(await h.request("/v1/health"))).toMatchObject({ index: { documents: 0 } });
  });

  it("enforces the 5-minute window in both directions", async () => {
    const h = await pinned();
    const payload = { event: "upsert", documents: [documents[0]] };
    await expectRefused(await deliver(h, payload, { at: NOW_SECONDS - 301 }), 401, /301 s from the server's clock; the window is ±300 s/);
    await expectRefused(await deliver(h, payload, { at: NOW_SECONDS + 301 }), 401, /-301 s from the server's clock/);
    expect((await deliver(h, payload, { at: NOW_SECONDS - 300 })).status).toBe(202);
    expect((await deliver(h, payload, { at: NOW_SECONDS + 300 })).status).toBe(202);
  });

  it("refuses a timestamp that is not unix seconds", async () => {
    const h = await pinned();
    const body = "{}";
    const signature = (await signWebhook(WEBHOOK_SECRET, body, NOW_SECONDS))["X-TAESR-Signature"];
    const headers = { "X-TAESR-Timestamp": "2025-01-01T00:00:00Z", "X-TAESR-Signature": signature };
    await expectRefused(await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, headers, body }), 401, /must be unix seconds/);
  });

  it("validates the body only after the signature holds", async () => {
    const h = await pinned();
    await expectRefused(await deliver(h, { event: "reindex" }), 400, /event must be "upsert" \(with documents\) or "delete" \(with ids\)/);
    await expectRefused(await deliver(h, { event: "delete" }), 400, /ids/);
    await expectRefused(await deliver(h, { event: "upsert", documents: [{ id: "x" }] }), 400, /documents\.0\.text: text is required/);
    const headers = await signWebhook(WEBHOOK_SECRET, "not json", NOW_SECONDS);
    await expectRefused(await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, headers, body: "not json" }), 400, /not valid JSON/);
  });

  it("answers 503 when no webhook secret is configured", async () => {
    const h = await harness({ secrets: { apiKey: "k" }, indexQueue: new RecordingQueue() });
    await expectRefused(await deliver(h, { event: "upsert", documents }), 503, /WEBHOOK_SECRET/);
  });

  it("answers 503 (send again) when the queue refuses, and refuses nothing it did not verify", async () => {
    const queue = new RecordingQueue();
    queue.failAfter = 0;
    const h = await pinned(queue);
    const response = await deliver(h, { event: "upsert", documents });
    await expectRefused(response, 503, /indexing queue refused the webhook .* send it again/);
    expect(response.headers.get("retry-after")).toBe("5");
  });
});

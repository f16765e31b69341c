/**
 * End to end: the real local service (wrangler dev → workerd, the bundled ONNX model on onnxruntime-web, the SQLite
 * Durable Object index, local KV), driven over loopback HTTP exactly as a client would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signWebhook } from "../../src/webhook/signature.js";
import { indexedDocuments, waitForDocuments } from "../../workers/edge/dev/index-progress.js";
import { startLocalService, type LocalService } from "../../workers/edge/dev/local-service.js";

let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ readyTimeoutMs: 180_000 });
}, 200_000);

afterAll(async () => {
  await service?.stop();
});

async function postWebhook(payload: unknown, secret = service.webhookSecret): Promise<Response> {
  const body = JSON.stringify(payload);
  return fetch(`${service.url}/v1/webhooks/index`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(await signWebhook(secret, body)) },
    body,
  });
}

const documents = [
  { id: "lighthouse", title: "Keepers of the lighthouse", text: "The lighthouse keeper trimmed the wick and wound the clockwork that turned the great lens every night." },
  { id: "glacier", title: "Glaciers carve valleys", text: "Over thousands of years a glacier grinds the bedrock beneath it and leaves a U-shaped valley behind." },
  { id: "espresso", title: "Pulling an espresso shot", text: "Finely ground coffee is tamped into the basket and hot water is forced through it at nine bars of pressure." },
  { id: "orbit", title: "Why satellites stay in orbit", text: "A satellite falls toward the Earth all the time but moves sideways fast enough that the surface curves away beneath it." },
  { id: "compost", title: "Making garden compost", text: "Layer green kitchen scraps with brown leaves, keep the heap moist and turn it so that microbes get oxygen." },
];

describe("local service over HTTP", () => {
  it("serves the search page and reports health with the bundled model", async () => {
    const page = await fetch(`${service.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("<form");

    const health = (await (await fetch(`${service.url}/v1/health`)).json()) as { status: string; model: { version: string } };
    expect(health.status).toBe("ok");
    expect(health.model.version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("refuses an unsigned or wrongly signed webhook", async () => {
    const body = JSON.stringify({ event: "upsert", documents });
    const unsigned = await fetch(`${service.url}/v1/webhooks/index`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(unsigned.status).toBe(401);
    const wrong = await postWebhook({ event: "upsert", documents }, "not-the-secret");
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/signature/i);
  });

  it("queues documents through the signed webhook (202), indexes them, and finds each by a phrase from it", async () => {
    const indexed = await postWebhook({ event: "upsert", documents });
    expect(indexed.status).toBe(202);
    expect(await indexed.json()).toEqual({ event: "upsert", queued: documents.length, ids: documents.map((d) => d.id) });
    expect((await waitForDocuments(service.url, documents.length, { timeoutMs: 90_000 })).reached).toBe(true);

    for (const [query, expectedId] of [
      ["lighthouse keeper trimmed the wick", "lighthouse"],
      ["glacier grinds the bedrock", "glacier"],
      ["nine bars of pressure", "espresso"],
      ["surface curves away beneath it", "orbit"],
    ] as const) {
      const response = await fetch(`${service.url}/v1/search`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, topK: 3 }),
      });
      expect(response.status).toBe(200);
      const result = (await response.json()) as { results: { id: string }[]; model: { depth: number } };
      expect(result.results[0]?.id, `query "${query}"`).toBe(expectedId);
      expect(result.model.depth).toBeGreaterThanOrEqual(1);
    }
  });

  it("re-delivering the same webhook changes nothing, and a delete removes the document from search", async () => {
    const again = await postWebhook({ event: "upsert", documents });
    expect(again.status).toBe(202);

    const removed = await postWebhook({ event: "delete", ids: ["compost"] });
    expect(removed.status).toBe(202);
    // The delete was queued after the re-delivery, so once the count drops to 4 both have been applied.
    const deadline = Date.now() + 60_000;
    while ((await indexedDocuments(service.url)) !== documents.length - 1) {
      expect(Date.now(), "the queued delete was not applied within 60 s").toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const response = await fetch(`${service.url}/v1/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "green kitchen scraps with brown leaves", topK: 10 }),
    });
    const result = (await response.json()) as { results: { id: string }[] };
    expect(result.results.map((hit) => hit.id)).not.toContain("compost");
  });

  it("answers bad input with a 4xx JSON error naming the problem", async () => {
    const response = await fetch(`${service.url}/v1/search`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: 42 }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { message: string } };
    expect(JSON.stringify(body)).toMatch(/query/);
  });
});

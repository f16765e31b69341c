/**
 * End to end over loopback: wrangler dev (the edge) sends a hard-routed query to the real GPU origin process
 * (`npm run origin`'s entry, the bundled model's fp32 graphs on onnxruntime-node), and keeps answering — from its own
 * model at full depth, saying why — once the origin is gone.
 *
 * The bundled model routes dense-only searches by its length rule (> 32 word pieces → hard), so the hard query is a
 * long dense-mode query.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalOrigin, type LocalOrigin } from "../../workers/edge/dev/local-origin.js";
import { startLocalService, type LocalService } from "../../workers/edge/dev/local-service.js";

const HARD_QUERY =
  "which lighthouse keepers trimmed the wick and wound the clockwork that turned the great lens every night along the " +
  "northern coast in the years before electric lamps replaced the oil burners and the keepers left their towers";

let origin: LocalOrigin;
let service: LocalService;

beforeAll(async () => {
  origin = await startLocalOrigin({ args: ["--threads", "1"] });
  service = await startLocalService({ vars: { ORIGIN_URL: origin.url, ORIGIN_SECRET: origin.secret } });
  const documents = [
    { id: "lighthouse", title: "Keepers of the lighthouse", text: "The lighthouse keeper trimmed the wick and wound the clockwork every night." },
    { id: "glacier", title: "Glaciers", text: "A glacier grinds the bedrock and leaves a U-shaped valley behind." },
  ];
  const response = await fetch(`${service.url}/v1/documents`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${service.apiKey}` },
    body: JSON.stringify({ documents }),
  });
  expect(response.status).toBe(200);
}, 300_000);

afterAll(async () => {
  await service?.stop();
  await origin?.stop();
});

async function search(query: string): Promise<{ results: { id: string }[]; model: Record<string, unknown> }> {
  const response = await fetch(`${service.url}/v1/search`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, mode: "dense", topK: 2 }),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as { results: { id: string }[]; model: Record<string, unknown> };
}

describe("edge → GPU origin", () => {
  it("embeds a hard-routed query on the origin, then serves it locally at full depth once the origin is down", async () => {
    const easy = await search("lighthouse keeper");
    expect(easy.model).toMatchObject({ servedBy: "edge", originFallback: null });

    const hard = await search(HARD_QUERY);
    expect(hard.model).toMatchObject({ route: "hard", servedBy: "origin", originFallback: null, depth: 6 });
    expect(hard.results).toHaveLength(2);

    await origin.stop();
    const fallback = await search(`${HARD_QUERY} once more`);
    expect(fallback.model).toMatchObject({ route: "hard", servedBy: "edge", depth: 6, earlyExit: false });
    // Connection refused: the client names it a network failure.
    expect(fallback.model.originFallback).toBe("network");
    expect(fallback.results).toHaveLength(2);
  });
});

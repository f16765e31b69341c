/**
 * End to end through `wrangler dev`: the signed webhook → the local Cloudflare Queue → the Worker's consumer → the
 * index, and `npm run load` bulk-loading a JSONL file (and refusing a malformed one, naming the line). Indexing is
 * awaited by polling /v1/health's document count, never by sleeping.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signWebhook } from "../../src/webhook/signature.js";
import { indexedDocuments, waitForDocuments } from "../../workers/edge/dev/index-progress.js";
import { startLocalService, type LocalService } from "../../workers/edge/dev/local-service.js";
import { runCli, type CliResult } from "../support/run-cli.js";

let service: LocalService;
let dir: string;

beforeAll(async () => {
  service = await startLocalService({ readyTimeoutMs: 180_000 });
  dir = await mkdtemp(path.join(tmpdir(), "taesr-load-"));
}, 200_000);

afterAll(async () => {
  await service?.stop();
});

function runLoad(args: string[]): Promise<CliResult> {
  return runCli("workers/edge/dev/load.ts", args);
}

const TOPICS = ["tide pools", "sourdough starters", "bicycle gears", "honey bees", "lava flows", "paper lanterns"];

describe("indexing queue under wrangler dev", () => {
  it("indexes webhook batches through the queue and its consumer", async () => {
    const before = await indexedDocuments(service.url);
    const documents = Array.from({ length: 60 }, (_, i) => ({ id: `q-${i}`, title: `${TOPICS[i % TOPICS.length]} ${i}`, text: `Notes number ${i} about ${TOPICS[i % TOPICS.length]}.` }));
    const started = performance.now();
    for (let start = 0; start < documents.length; start += 20) {
      const body = JSON.stringify({ event: "upsert", documents: documents.slice(start, start + 20) });
      const response = await fetch(`${service.url}/v1/webhooks/index`, { method: "POST", headers: { "content-type": "application/json", ...(await signWebhook(service.webhookSecret, body)) }, body });
      expect(response.status).toBe(202);
    }
    const { documents: after, reached } = await waitForDocuments(service.url, before + documents.length, { timeoutMs: 90_000, pollMs: 200 });
    const seconds = (performance.now() - started) / 1000;
    console.log(`queue e2e: ${documents.length} documents webhook → queue → index in ${seconds.toFixed(1)} s (${(documents.length / seconds).toFixed(1)} docs/s)`);
    expect(reached).toBe(true);
    expect(after).toBe(before + documents.length);
    const search = await fetch(`${service.url}/v1/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "honey bees", topK: 3, mode: "lexical" }) });
    const hits = ((await search.json()) as { results: { id: string }[] }).results.map((r) => r.id);
    expect(hits).toHaveLength(3);
    for (const id of hits) expect(Number(id.slice(2)) % TOPICS.length, `${id} is a honey-bee note`).toBe(3);
    // Nothing was dead-lettered on the way.
    const dead = await fetch(`${service.url}/v1/admin/dead-letters`, { headers: { authorization: `Bearer ${service.apiKey}` } });
    expect(((await dead.json()) as { deadLetters: unknown[] }).deadLetters).toEqual([]);
  });

  it("npm run load bulk-loads a JSONL file and waits for it to be indexed", async () => {
    const file = path.join(dir, "corpus.jsonl");
    const lines = Array.from({ length: 45 }, (_, i) => JSON.stringify({ _id: `load-${i}`, title: `Loaded ${i}`, text: `A bulk-loaded note about ${TOPICS[i % TOPICS.length]}.`, metadata: {} }));
    await writeFile(file, `${lines.join("\n")}\n`);
    const before = await indexedDocuments(service.url);
    const result = await runLoad([dir, "--url", service.url, "--secret", service.webhookSecret, "--batch", "16", "--wait"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/queued 45 documents .* in 3 webhooks/);
    expect(result.stdout).toMatch(/indexed: the index holds/);
    expect(await indexedDocuments(service.url)).toBe(before + 45);
  });

  it("npm run load refuses a malformed corpus before sending anything, naming the line", async () => {
    const file = path.join(dir, "broken.jsonl");
    await writeFile(file, `${JSON.stringify({ id: "fine", text: "ok" })}\n${JSON.stringify({ id: "no-text" })}\n`);
    const before = await indexedDocuments(service.url);
    const result = await runLoad([file, "--url", service.url, "--secret", service.webhookSecret]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:2: document "no-text" has no "text" string`);
    const wrongSecret = await runLoad([path.join(dir, "corpus.jsonl"), "--url", service.url, "--secret", "wrong", "--limit", "2"]);
    expect(wrongSecret.code).toBe(1);
    expect(wrongSecret.stderr).toMatch(/refused the batch starting at "load-0": 401: webhook refused/);
    expect(await indexedDocuments(service.url)).toBe(before);
  });
});

/**
 * End to end through `wrangler dev`: `npm run model:publish` uploads an artifact directory (the committed random-weight
 * fixture) to the local R2 bucket, activates it and follows the blue/green switch — the ModelRollout Durable Object's
 * alarm re-embedding the index in the background — until the new model serves; then a rollback over HTTP. Progress is
 * awaited by polling (the CLI's, then this test's for the isolate's route cache), never by a fixed sleep.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalService, type LocalService } from "../../workers/edge/dev/local-service.js";
import { runCli, type CliResult } from "../support/run-cli.js";

const FIXTURE = "test/fixtures/taesr-random@0.0.0-test";

let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ readyTimeoutMs: 180_000 });
}, 200_000);

afterAll(async () => {
  await service?.stop();
});

function publish(args: string[]): Promise<CliResult> {
  return runCli("workers/edge/dev/publish-model.ts", args);
}

async function api(route: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  return fetch(`${service.url}${route}`, {
    ...rest,
    headers: { authorization: `Bearer ${service.apiKey}`, ...(json !== undefined ? { "content-type": "application/json" } : {}) },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
}

async function servedVersion(): Promise<string> {
  const response = await api("/v1/search", { method: "POST", json: { query: "glacier retreat", topK: 3, mode: "dense" } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { model: { version: string } }).model.version;
}

/** An isolate follows the published route within MODEL_ROUTE_CACHE_MS (1 s by default): polls, boundedly. */
async function servedVersionOnceFollowed(expected: string): Promise<string> {
  let served = await servedVersion();
  for (let attempt = 0; attempt < 50 && served !== expected; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    served = await servedVersion();
  }
  return served;
}

describe("live model update under wrangler dev", () => {
  it("npm run model:publish uploads, activates and waits for the switch; a rollback is one call", async () => {
    const documents = Array.from({ length: 50 }, (_, i) => ({ id: `m-${i}`, title: `note ${i}`, text: `Glacier and tide note number ${i}.` }));
    expect((await api("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    const bundled = await servedVersion();

    const result = await publish([FIXTURE, "--url", service.url, "--api-key", service.apiKey, "--activate", "--wait"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/uploaded taesr-random@0\.0\.0-test \(4 files\)/);
    expect(result.stdout).toMatch(/taesr-random@0\.0\.0-test serves now/);

    expect(await servedVersionOnceFollowed("0.0.0-test")).toBe("0.0.0-test");
    const health = (await (await api("/v1/health")).json()) as { index: { documents: number; modelVersions: Record<string, number> } };
    expect(health.index.modelVersions).toEqual({ "0.0.0-test": health.index.documents });
    expect(health.index.documents).toBeGreaterThanOrEqual(documents.length);

    expect((await api("/v1/admin/models/rollback", { method: "POST" })).status).toBe(200);
    expect(await servedVersionOnceFollowed(bundled)).toBe(bundled);
  });

  it("refuses a directory that is not an artifact, with a message and a non-zero exit", async () => {
    const result = await publish(["test/fixtures/beir-tiny", "--url", service.url, "--api-key", service.apiKey]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/model:publish: .*beir-tiny is not a model artifact/);
  });
});

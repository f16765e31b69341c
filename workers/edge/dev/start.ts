/**
 * `npm start`: the local search service with the bundled model and the demo corpus indexed — one command on a fresh
 * machine. Starts the GPU origin (workers/origin, full fp32 model; CPU here) beside wrangler dev (workerd, embedded
 * Durable Object index, local KV, the indexing queue) and hands the edge its URL and secret as vars, sends the demo
 * corpus through the signed webhook (idempotent: a second start re-sends and nothing changes), waits until the queue's
 * consumer has indexed it (polling /v1/health), then prints the URL and keeps serving.
 * `--no-origin` runs the edge alone; an origin that fails to start is reported and the edge runs alone too.
 */
import { Command, InvalidArgumentError } from "commander";
import { SingleBar, Presets } from "cli-progress";
import path from "node:path";
import { signWebhook } from "../../../src/webhook/signature.js";
import { loadDemoCorpus } from "./demo-corpus.js";
import { waitForDocuments } from "./index-progress.js";
import { startLocalOrigin, type LocalOrigin } from "./local-origin.js";
import { repoRoot, startLocalService } from "./local-service.js";

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}"`);
  return parsed;
}

const program = new Command()
  .name("npm start --")
  .description("Run the TAESR Edge search service locally with a demo corpus.")
  .option("--port <n>", "port to serve on", positiveInteger, 8787)
  .option("--demo-docs <n>", "how many Debian package descriptions to index beside the built-in demo documents", positiveInteger, 2000)
  .option("--state <dir>", "where the local index and cache persist", path.join(repoRoot, ".wrangler", "taesr-dev-state"))
  .option("--api-key <key>", "API key for /v1/documents (default: taesr-dev-key)", "taesr-dev-key")
  .option("--webhook-secret <secret>", "webhook secret (default: taesr-dev-secret)", "taesr-dev-secret")
  .option("--no-origin", "do not start the GPU origin beside the edge (the edge then embeds every query itself)")
  .parse();

const options = program.opts<{ port: number; demoDocs: number; state: string; apiKey: string; webhookSecret: string; origin: boolean }>();

async function indexDemoCorpus(url: string, secret: string): Promise<void> {
  const documents = await loadDemoCorpus(options.demoDocs);
  const bar = new SingleBar({ format: "queueing demo corpus [{bar}] {value}/{total} docs  {eta_formatted} left" }, Presets.shades_classic);
  bar.start(documents.length, 0);
  const batchSize = 32;
  for (let start = 0; start < documents.length; start += batchSize) {
    const body = JSON.stringify({ event: "upsert", documents: documents.slice(start, start + batchSize) });
    const response = await fetch(`${url}/v1/webhooks/index`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(await signWebhook(secret, body)) },
      body,
    });
    if (!response.ok) {
      bar.stop();
      throw new Error(`indexing failed: POST /v1/webhooks/index answered ${response.status}: ${await response.text()}`);
    }
    bar.update(Math.min(start + batchSize, documents.length));
  }
  bar.stop();
  // Webhooks are answered once queued: wait for the consumer, or the count printed next would be a snapshot mid-way.
  const expected = new Set(documents.map((d) => d.id)).size;
  const indexing = new SingleBar({ format: "indexing demo corpus [{bar}] {value}/{total} docs  {eta_formatted} left" }, Presets.shades_classic);
  indexing.start(expected, 0);
  const { reached, documents: indexed } = await waitForDocuments(url, expected, { onProgress: (n) => indexing.update(Math.min(n, expected)) });
  indexing.stop();
  if (!reached) console.warn(`The index stopped growing at ${indexed} of ${expected} documents; GET /v1/admin/dead-letters (API key) lists what failed.`);
}

/** The origin, or null with the reason printed: the edge serves without it, so its failure must not stop `npm start`. */
async function startOrigin(): Promise<LocalOrigin | null> {
  try {
    return await startLocalOrigin();
  } catch (error) {
    console.warn(`The GPU origin did not start, so the edge embeds every query itself: ${(error as Error).message}`);
    return null;
  }
}

/** Stops whatever has been started so far; a failed start must not leave the origin running behind the prompt. */
const running: (() => Promise<void>)[] = [];
const stopAll = () => Promise.all(running.map((stop) => stop()));

async function main(): Promise<void> {
  let origin: LocalOrigin | null = null;
  if (options.origin) {
    console.log("Starting the GPU origin (full fp32 model)…");
    origin = await startOrigin();
    if (origin) running.push(origin.stop);
  }
  console.log("Starting wrangler dev (workerd) with the bundled model…");
  const service = await startLocalService({
    port: options.port,
    persistTo: options.state,
    apiKey: options.apiKey,
    webhookSecret: options.webhookSecret,
    readyTimeoutMs: 180_000,
    ...(origin ? { vars: { ORIGIN_URL: origin.url, ORIGIN_SECRET: origin.secret } } : {}),
  });
  running.push(service.stop);
  const shutdown = async () => {
    await stopAll();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  await indexDemoCorpus(service.url, service.webhookSecret);
  const health = (await (await fetch(`${service.url}/v1/health`)).json()) as { index?: { documents?: number } };
  console.log(`
TAESR Edge is serving at ${service.url}  (${health.index?.documents ?? "?"} documents indexed)
  search page:  ${service.url}/
  search API:   curl -s ${service.url}/v1/search -H 'content-type: application/json' -d '{"query":"clean a bicycle chain"}'
  API key:      ${service.apiKey}   (for POST /v1/documents and DELETE /v1/documents/:id)
  GPU origin:   ${origin ? `${origin.url}  (${origin.ready.model.name}@${origin.ready.model.version} ${origin.ready.model.variant} on ${origin.ready.provider})` : "off"}
Press Ctrl+C to stop.`);
}

main().catch(async (error: unknown) => {
  console.error(`npm start failed: ${(error as Error).message}`);
  await stopAll();
  process.exit(1);
});

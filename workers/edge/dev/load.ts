/**
 * `npm run load -- <corpus dir or .jsonl>`: bulk-loads a corpus into a running edge through the signed webhook, in
 * batches, with a progress bar. The corpus is checked whole first (corpus-file.ts); each batch is retried on 429, 5xx
 * and network errors with exponential backoff (Retry-After honoured); any other refusal stops the load and says which
 * document. Webhooks are queued (202), so `--wait` then polls /v1/health until the queue has indexed them.
 *
 * @example
 *   npm run load -- ../shared/datasets/scifact --limit 500 --wait
 *   npm run load -- docs.jsonl --url https://search.example.com --secret "$WEBHOOK_SECRET" --batch 128
 */
import { SingleBar, Presets } from "cli-progress";
import { Command, InvalidArgumentError } from "commander";
import { signWebhook } from "../../../src/webhook/signature.js";
import { CorpusError, corpusFile, readCorpus, type CorpusDocument } from "./corpus-file.js";
import { indexedDocuments, waitForDocuments } from "./index-progress.js";

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new InvalidArgumentError(`expected a whole number ≥ 1, got "${value}"`);
  return parsed;
}

const program = new Command()
  .name("npm run load --")
  .description("Bulk-load a JSONL or BEIR corpus into TAESR Edge through the signed webhook.")
  .argument("<corpus>", "a .jsonl file ({id, title?, text, metadata?} or BEIR {_id, title, text, metadata}) or a BEIR directory")
  .option("--url <url>", "the edge's base URL", "http://127.0.0.1:8787")
  .option("--secret <secret>", "the webhook secret (default $WEBHOOK_SECRET, else npm start's taesr-dev-secret)", process.env.WEBHOOK_SECRET ?? "taesr-dev-secret")
  .option("--batch <n>", "documents per webhook (at most 256)", positiveInteger, 64)
  .option("--limit <n>", "load only the first n documents", positiveInteger)
  .option("--attempts <n>", "tries per batch on 429 / 5xx / network errors", positiveInteger, 6)
  .option("--wait", "after sending, wait until /v1/health shows the documents indexed")
  .parse();

const [input] = program.args as [string];
const options = program.opts<{ url: string; secret: string; batch: number; limit?: number; attempts: number; wait?: boolean }>();

class LoadError extends Error {}

/** A refusal's message, with `documents.N…` turned into the document's id. */
function explain(status: number, text: string, batch: readonly CorpusDocument[]): string {
  try {
    const { error } = JSON.parse(text) as { error: { message: string; param?: string } };
    const index = /^documents\.(\d+)/.exec(error.param ?? "")?.[1];
    const document = index === undefined ? undefined : batch[Number(index)];
    return `${status}: ${error.message}${document ? ` (document "${document.id}")` : ""}`;
  } catch {
    return `${status}: ${text.slice(0, 300)}`;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one batch; resolves with the retries it took. */
async function send(batch: readonly CorpusDocument[]): Promise<number> {
  const body = JSON.stringify({ event: "upsert", documents: batch });
  for (let attempt = 1; ; attempt++) {
    let problem: string;
    let retryAfterMs: number | undefined;
    try {
      // Signed per attempt: the signature's timestamp must stay inside the receiver's 5-minute window.
      const response = await fetch(`${options.url}/v1/webhooks/index`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(await signWebhook(options.secret, body)) },
        body,
        signal: AbortSignal.timeout(60_000),
      });
      const text = await response.text();
      if (response.ok) return attempt - 1;
      if (response.status !== 429 && response.status < 500) {
        throw new LoadError(`the edge refused the batch starting at "${batch[0]!.id}": ${explain(response.status, text, batch)}`);
      }
      problem = explain(response.status, text, batch);
      const retryAfter = Number(response.headers.get("retry-after"));
      if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfterMs = retryAfter * 1000;
    } catch (error) {
      if (error instanceof LoadError) throw error;
      problem = (error as Error).message;
    }
    if (attempt >= options.attempts) throw new LoadError(`gave up on the batch starting at "${batch[0]!.id}" after ${attempt} attempts: ${problem}`);
    await sleep(retryAfterMs ?? Math.min(30_000, 500 * 2 ** (attempt - 1)));
  }
}

async function main(): Promise<void> {
  if (options.batch > 256) throw new LoadError(`--batch must be at most 256 (the webhook's limit), got ${options.batch}`);
  const file = await corpusFile(input);
  const documents = await readCorpus(file, options.limit);
  const before = await indexedDocuments(options.url).catch((error: unknown) => {
    throw new LoadError(`cannot reach the edge at ${options.url}: ${(error as Error).message}`);
  });

  const started = performance.now();
  const bar = new SingleBar({ format: "queueing  [{bar}] {value}/{total} docs  {eta_formatted} left" }, Presets.shades_classic);
  bar.start(documents.length, 0);
  let retries = 0;
  let requests = 0;
  try {
    for (let start = 0; start < documents.length; start += options.batch) {
      const batch = documents.slice(start, start + options.batch);
      retries += await send(batch);
      requests++;
      bar.update(start + batch.length);
    }
  } finally {
    bar.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `queued ${documents.length} documents from ${file} in ${requests} webhooks (${retries} retried) in ${seconds.toFixed(1)} s ` +
      `(${Math.round(documents.length / seconds)} docs/s); the index held ${before} before.`,
  );
  if (!options.wait) {
    console.log("Indexing continues on the queue; GET /v1/health counts the documents indexed (or pass --wait).");
    return;
  }
  const waiting = new SingleBar({ format: "indexing  [{bar}] {value}/{total} docs in the index" }, Presets.shades_classic);
  const target = before + documents.length;
  waiting.start(target, before);
  const waitStart = performance.now();
  const { documents: after, reached } = await waitForDocuments(options.url, target, { onProgress: (n) => waiting.update(Math.min(n, target)) });
  waiting.stop();
  const indexSeconds = (performance.now() - started) / 1000;
  console.log(
    reached
      ? `indexed: the index holds ${after} documents, ${Math.round((after - before) / indexSeconds)} docs/s end to end (waited ${((performance.now() - waitStart) / 1000).toFixed(1)} s).`
      : `the index holds ${after} documents and stopped growing (${target} if every id was new): some ids were already indexed, or see GET /v1/admin/dead-letters.`,
  );
}

main().catch((error: unknown) => {
  const known = error instanceof CorpusError || error instanceof LoadError;
  console.error(`npm run load: ${known ? (error as Error).message : (error as Error).stack}`);
  process.exit(1);
});

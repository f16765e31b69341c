/**
 * The GPU origin's throughput on this machine (workers/origin, started as `npm run origin` starts it: the fp32 model at
 * full depth on onnxruntime-node, CPU here): texts per second under concurrent load, for the two ways the edge calls
 * it — single hard-routed queries (the micro-batcher must merge them) and the indexing queue's batches of 16 documents.
 * Every answer is checked (status, count, width), so a 429 or an error cannot pass for speed.
 */
import { startLocalOrigin } from "../workers/edge/dev/local-origin.js";
import { loadBenchQueries, loadLongDocuments } from "./search-corpus.js";

export interface OriginThroughput {
  /** Single-query requests, `concurrency` in flight. */
  queries: { requests: number; concurrency: number; texts_per_s: number; p50_ms: number; p95_ms: number };
  /** 16-document requests (the indexer's batch), `concurrency` in flight. */
  documents: { requests: number; batch: number; concurrency: number; texts_per_s: number; p50_ms: number; p95_ms: number };
  provider: string;
}

const round = (value: number) => Math.round(value * 100) / 100;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Sends every body with `concurrency` requests in flight; resolves with texts/s and the latency percentiles. */
async function drive(url: string, secret: string, bodies: readonly string[][], concurrency: number) {
  const latencies: number[] = [];
  let next = 0;
  let texts = 0;
  const worker = async () => {
    for (let i = next++; i < bodies.length; i = next++) {
      const input = bodies[i]!;
      const started = performance.now();
      const response = await fetch(`${url}/v1/embed`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        body: JSON.stringify({ input, dims: 128 }),
      });
      if (!response.ok) throw new Error(`origin answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
      const body = (await response.json()) as { embeddings: number[][] };
      if (body.embeddings.length !== input.length || body.embeddings[0]?.length !== 128) throw new Error("origin answered the wrong number or width of embeddings");
      latencies.push(performance.now() - started);
      texts += input.length;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { texts_per_s: round(texts / seconds), p50_ms: round(percentile(latencies, 50)), p95_ms: round(percentile(latencies, 95)) };
}

export async function measureOrigin(options: { queries?: number; documentRequests?: number; concurrency?: number; log?: (line: string) => void } = {}): Promise<OriginThroughput> {
  const { queries: queryCount = 512, documentRequests = 32, concurrency = 32, log = () => {} } = options;
  const batch = 16;
  const [queries, documents] = await Promise.all([loadBenchQueries(), loadLongDocuments(documentRequests * batch)]);
  const origin = await startLocalOrigin();
  try {
    const health = (await (await fetch(`${origin.url}/health`)).json()) as { provider?: string };
    const single = queries.slice(0, queryCount).map((q) => [q]);
    const batches = Array.from({ length: documentRequests }, (_, i) => documents.slice(i * batch, (i + 1) * batch).map((d) => `${d.title}\n${d.text}`));
    // Untimed first: the first calls pay for session warm-up and arena growth.
    await drive(origin.url, origin.secret, [...single.slice(0, concurrency), ...batches.slice(0, 2)], concurrency);
    const q = await drive(origin.url, origin.secret, single, concurrency);
    log(`origin: ${single.length} single-query requests, ${concurrency} in flight: ${q.texts_per_s} texts/s (p50 ${q.p50_ms} ms)`);
    const d = await drive(origin.url, origin.secret, batches, concurrency);
    log(`origin: ${batches.length} requests of ${batch} documents, ${concurrency} in flight: ${d.texts_per_s} texts/s (p50 ${d.p50_ms} ms)`);
    return {
      queries: { requests: single.length, concurrency, ...q },
      documents: { requests: batches.length, batch, concurrency, ...d },
      provider: health.provider ?? "unknown",
    };
  } finally {
    await origin.stop();
  }
}

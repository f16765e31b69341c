/**
 * Indexing throughput and search latency of the real edge service (wrangler dev: workerd, the embedded Durable Object
 * index, local KV), measured end to end over loopback HTTP — what a client of the service sees.
 *
 * - Indexing: long documents (SciFact abstracts) through `POST /v1/documents` into a fresh index, one client, batches
 *   of 64 — embedding, tokenising and the SQLite writes all included.
 * - Search: indexes of 10k and 100k mixed documents (bench/search-corpus.ts). Building 100k takes the service tens of
 *   minutes here, so each index is built once into bench/out/state/ and reused while the model and the corpus are the
 *   same (a marker file records both); the 10k index is snapshotted on the way to 100k. Before measuring, the KV
 *   embedding cache is dropped so the first pass measures cache misses (the model embeds every query); a second pass
 *   over the same queries measures cache hits.
 * - Load: `clients` concurrent clients, each sending its next query as soon as its previous answer arrived (closed
 *   loop), hybrid mode, topK 10. Latency is per request, from sending to the parsed JSON body.
 * - One client: the same queries once more from a single client (cache hits): what one request costs when nothing
 *   queues in front of it. On 2 cores the 16-client figures are set by throughput (16 ÷ requests per second), this one
 *   by the path itself.
 */
import { progressBar } from "./progress.js";
import { mkdir, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { percentile } from "../src/eval/metrics.js";
import { repoRoot, startLocalService, type LocalService } from "../workers/edge/dev/local-service.js";
import { SHARD_SCHEMA_VERSION } from "../workers/edge/src/shard-store.js";
import { loadBenchDocuments, loadBenchQueries, loadLongDocuments, type BenchDocument } from "./search-corpus.js";

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const round = (value: number) => Math.round(value * 1000) / 1000;
const UPSERT_BATCH = 64;
/** Bumped when the corpus selection or the way it is indexed changes, so stale snapshots are rebuilt. */
const CORPUS_VERSION = "mixed-v1";
const stateRoot = path.join(repoRoot, "bench", "out", "state");

async function upsert(service: LocalService, documents: readonly BenchDocument[]): Promise<void> {
  const response = await fetch(`${service.url}/v1/documents`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${service.apiKey}` },
    body: JSON.stringify({ documents }),
  });
  if (!response.ok) throw new Error(`POST /v1/documents answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
  await response.body?.cancel();
}

async function indexAll(service: LocalService, documents: readonly BenchDocument[], label: string): Promise<number> {
  const bar = progressBar(label, documents.length, "docs");
  const started = performance.now();
  for (let start = 0; start < documents.length; start += UPSERT_BATCH) {
    await upsert(service, documents.slice(start, start + UPSERT_BATCH));
    bar.update(Math.min(start + UPSERT_BATCH, documents.length));
  }
  bar.stop();
  return (performance.now() - started) / 1000;
}

async function indexedCount(service: LocalService): Promise<number> {
  const health = (await (await fetch(`${service.url}/v1/health`)).json()) as { index: { documents: number } };
  return health.index.documents;
}

/**
 * Documents per second into a fresh index: `count` SciFact abstracts, one client, after one untimed batch (the
 * isolate's first batches pay for V8 tier-up and ORT's arena growth, a one-off cost that `cold_start_ms` covers).
 */
export async function measureIndexing(count = 1024): Promise<{ docs: number; seconds: number; docs_per_s: number }> {
  const [warmup, documents] = ((all) => [all.slice(0, UPSERT_BATCH), all.slice(UPSERT_BATCH)])(await loadLongDocuments(count + UPSERT_BATCH));
  const service = await startLocalService({ readyTimeoutMs: 180_000 });
  try {
    await upsert(service, warmup);
    const seconds = await indexAll(service, documents, "indexing throughput");
    const stored = await indexedCount(service);
    if (stored !== warmup.length + documents.length) throw new Error(`indexed ${warmup.length + documents.length} documents but the index holds ${stored}`);
    const docsPerS = documents.length / seconds;
    log(`indexing: ${documents.length} SciFact abstracts in ${seconds.toFixed(1)} s = ${docsPerS.toFixed(1)} docs/s`);
    return { docs: documents.length, seconds: round(seconds), docs_per_s: round(docsPerS) };
  } finally {
    await service.stop();
  }
}

interface Marker {
  model: string;
  corpus: string;
  /** The shards' storage schema version and count: a change to either makes old snapshots unusable. */
  storage: string;
  documents: number;
  build_seconds: number;
  /** True when the build resumed an interrupted one: build_seconds then covers only the last attempt. */
  resumed: boolean;
}

async function readJsonFile(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch {
    return null;
  }
}

/** INDEX_SHARDS from wrangler.toml: the shard count the service under test runs with. */
async function configuredShardCount(): Promise<number> {
  const config = await readFile(path.join(repoRoot, "wrangler.toml"), "utf8");
  return Number(/^INDEX_SHARDS\s*=\s*"(\d+)"/m.exec(config)?.[1] ?? 1);
}

async function readMarker(dir: string): Promise<Marker | null> {
  return (await readJsonFile(`${dir}.json`)) as Marker | null;
}

async function directoryBytes(dir: string, match: (file: string) => boolean): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (match(file)) total += (await stat(file)).size;
  }
  return total;
}

/**
 * The state directories holding indexes of each size (ascending), built or reused. Each is built through the service
 * from empty: an earlier version started the bigger index from a file copy of the smaller one's state directory, and
 * that copy came up holding 995 of its 10,000 documents (workerd's SQLite files are not ours to copy).
 */
export async function ensureIndexes(model: string, sizes: readonly number[]): Promise<Map<number, { dir: string; marker: Marker }>> {
  const all = await loadBenchDocuments(Math.max(...sizes));
  const storage = `shard-schema-${SHARD_SCHEMA_VERSION}/shards-${await configuredShardCount()}`;
  const ready = new Map<number, { dir: string; marker: Marker }>();
  for (const size of [...sizes].sort((a, b) => a - b)) {
    const dir = path.join(stateRoot, `search-${CORPUS_VERSION}-${size}`);
    const marker = await readMarker(dir);
    if (marker && marker.model === model && marker.corpus === CORPUS_VERSION && marker.storage === storage && marker.documents === size) {
      log(`reusing the ${size}-document index in ${path.relative(repoRoot, dir)} (built in ${marker.build_seconds} s)`);
      ready.set(size, { dir, marker });
      continue;
    }
    // An interrupted build of the same model, corpus and storage resumes in place: upserts are idempotent, so
    // re-sending its documents costs a hash and a lookup each, and the count check below catches anything extra.
    const building = `${dir}.building.json`;
    const key = { model, corpus: CORPUS_VERSION, storage, documents: size };
    const resumable = JSON.stringify(await readJsonFile(building)) === JSON.stringify(key);
    await rm(`${dir}.json`, { force: true });
    if (!resumable) {
      await rm(dir, { recursive: true, force: true });
      await mkdir(stateRoot, { recursive: true });
      await writeFile(building, `${JSON.stringify(key)}\n`);
    }
    log(`${resumable ? "resuming" : "building"} the ${size}-document index (this runs once per model)…`);
    const service = await startLocalService({ persistTo: dir, readyTimeoutMs: 180_000 });
    try {
      const seconds = await indexAll(service, all.slice(0, size), `building ${size / 1000}k index`);
      const stored = await indexedCount(service);
      if (stored !== size) throw new Error(`the ${size}-document index holds ${stored} documents`);
      const built: Marker = { model, corpus: CORPUS_VERSION, storage, documents: size, build_seconds: round(seconds), resumed: resumable };
      await writeFile(`${dir}.json`, `${JSON.stringify(built, null, 2)}\n`);
      await rm(building, { force: true });
      ready.set(size, { dir, marker: built });
    } finally {
      await service.stop();
    }
  }
  return ready;
}

interface LoadFigures {
  requests: number;
  clients: number;
  p50_ms: number;
  p95_ms: number;
  mean_ms: number;
  requests_per_s: number;
  /** Medians of the service's own timings (workerd's clock: 1 ms steps). */
  server_median_ms: { embed: number; search: number; total: number };
  /**
   * Medians of the index's per-stage timings (`timings.stages`: statsMs, shardsMs, shard.denseMs, fuseMs, rerankFetchMs,
   * fieldsMs…), each over the requests that reported the stage, with that count: where a search's time goes.
   */
  stage_median_ms: Record<string, { median: number; requests: number }>;
}

async function loadTest(url: string, queries: readonly string[], clients: number): Promise<LoadFigures> {
  const latencies: number[] = [];
  const server = { embed: [] as number[], search: [] as number[], total: [] as number[] };
  const stages = new Map<string, number[]>();
  let next = 0;
  const started = performance.now();
  const client = async () => {
    while (next < queries.length) {
      const query = queries[next++]!;
      const sent = performance.now();
      const response = await fetch(`${url}/v1/search`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query, mode: "hybrid", topK: 10 }),
      });
      const body = (await response.json()) as {
        results?: unknown[];
        timings?: { embedMs: number; searchMs: number; totalMs: number; stages?: Record<string, number> };
      };
      latencies.push(performance.now() - sent);
      if (!response.ok || !body.results || body.results.length === 0) {
        throw new Error(`search for "${query.slice(0, 60)}" answered ${response.status} with ${JSON.stringify(body).slice(0, 300)}`);
      }
      server.embed.push(body.timings!.embedMs);
      server.search.push(body.timings!.searchMs);
      server.total.push(body.timings!.totalMs);
      for (const [stage, ms] of Object.entries(body.timings!.stages ?? {})) {
        let values = stages.get(stage);
        if (!values) stages.set(stage, (values = []));
        values.push(ms);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: latencies.length,
    clients,
    p50_ms: round(percentile(latencies, 50)),
    p95_ms: round(percentile(latencies, 95)),
    mean_ms: round(latencies.reduce((sum, value) => sum + value, 0) / latencies.length),
    requests_per_s: round(latencies.length / seconds),
    server_median_ms: {
      embed: round(percentile(server.embed, 50)),
      search: round(percentile(server.search, 50)),
      total: round(percentile(server.total, 50)),
    },
    stage_median_ms: Object.fromEntries([...stages].sort(([a], [b]) => a.localeCompare(b)).map(([stage, values]) => [stage, { median: round(percentile(values, 50)), requests: values.length }])),
  };
}

export interface SearchFigures {
  documents: number;
  build_seconds: number;
  /** SQLite bytes of the Durable Object index ÷ documents (text, vectors, postings and their indexes). */
  index_bytes_per_doc: number;
  first_search_ms: number;
  cache_miss: LoadFigures;
  cache_hit: LoadFigures;
  /** The cache-hit queries again from a single client. */
  single_client_cache_hit: LoadFigures;
}

/** Search latency at each index size under `clients` concurrent clients; see the module doc. */
export async function measureSearch(model: string, sizes: readonly number[] = [10_000, 100_000], clients = 16): Promise<Record<number, SearchFigures>> {
  const indexes = await ensureIndexes(model, sizes);
  const queries = await loadBenchQueries();
  const [warmup, measured] = [queries.slice(0, 32), queries.slice(32)];
  const figures: Record<number, SearchFigures> = {};
  for (const [size, { dir, marker }] of indexes) {
    // A fresh embedding cache, so the first pass pays for every query embedding (see the module doc).
    await rm(path.join(dir, "v3", "kv"), { recursive: true, force: true });
    const sqliteBytes = await directoryBytes(path.join(dir, "v3", "do"), (file) => /\.sqlite(-wal)?$/.test(file));
    const service = await startLocalService({ persistTo: dir, readyTimeoutMs: 180_000 });
    try {
      // The first search after start loads every vector into the shard's memory: timed on its own.
      const firstStarted = performance.now();
      const first = await fetch(`${service.url}/v1/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: warmup[0], mode: "hybrid" }) });
      if (!first.ok) throw new Error(`first search answered ${first.status}: ${await first.text()}`);
      await first.json();
      const firstMs = performance.now() - firstStarted;
      await loadTest(service.url, warmup.slice(1), clients);
      log(`search at ${size} docs: ${measured.length} queries, ${clients} clients, cache misses…`);
      const cacheMiss = await loadTest(service.url, measured, clients);
      log(`search at ${size} docs: p50 ${cacheMiss.p50_ms} ms, p95 ${cacheMiss.p95_ms} ms (cache misses); repeating for cache hits…`);
      const cacheHit = await loadTest(service.url, measured, clients);
      log(`search at ${size} docs: p50 ${cacheHit.p50_ms} ms, p95 ${cacheHit.p95_ms} ms (cache hits); once more from one client…`);
      const singleClient = await loadTest(service.url, measured, 1);
      log(`search at ${size} docs, one client: p50 ${singleClient.p50_ms} ms, p95 ${singleClient.p95_ms} ms (cache hits)`);
      figures[size] = {
        documents: size,
        build_seconds: marker.build_seconds,
        index_bytes_per_doc: Math.round(sqliteBytes / size),
        first_search_ms: round(firstMs),
        cache_miss: cacheMiss,
        cache_hit: cacheHit,
        single_client_cache_hit: singleClient,
      };
    } finally {
      await service.stop();
    }
  }
  return figures;
}

/**
 * What any request costs here before it does any work: `clients` closed-loop clients asking for a path the Worker
 * answers with its JSON 404 (routing, error body, the wrangler dev proxy, loopback HTTP). A search at the same
 * concurrency cannot answer faster than this, so it is the floor the search goals are read against.
 */
export async function measureHttpFloor(clients = 16, requests = 1600): Promise<{ clients: number; p50_ms: number; p95_ms: number; requests_per_s: number }> {
  const service = await startLocalService({ readyTimeoutMs: 180_000 });
  try {
    const latencies: number[] = [];
    let sent = 0;
    const started = performance.now();
    const client = async () => {
      while (sent < requests) {
        sent++;
        const began = performance.now();
        const response = await fetch(`${service.url}/bench-floor-no-such-route`);
        await response.text();
        if (response.status !== 404) throw new Error(`the floor probe expected a 404, got ${response.status}`);
        latencies.push(performance.now() - began);
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
    const seconds = (performance.now() - started) / 1000;
    const figures = { clients, p50_ms: round(percentile(latencies, 50)), p95_ms: round(percentile(latencies, 95)), requests_per_s: round(latencies.length / seconds) };
    log(`HTTP floor (a 404, ${clients} clients): p50 ${figures.p50_ms} ms, p95 ${figures.p95_ms} ms, ${figures.requests_per_s} req/s`);
    return figures;
  } finally {
    await service.stop();
  }
}

/**
 * Inside workerd, `performance.now()` advances in 1 ms steps, so a single sub-millisecond embed cannot be timed.
 * Each sample is therefore a block of `perBlock` embeds of one query after another (single query per call, as the
 * edge serves them); the figures are per-query means of blocks, and their p50/p95 across blocks.
 *
 * GET /cold          → time to create the encoder (ORT wasm instantiation + sessions + sha256 checks) and first embed
 * GET /embed?depth=1|3|6|auto&dims=128&blocks=30&perBlock=50
 * GET /documents?depth=1|3|6|auto&count=256[&sparse=1]  → document embedding throughput: the indexer's batches (16
 *     texts of the model's full 128 pieces, 128-d), i.e. the model's share of indexing, without the index's writes;
 *     sparse=1 also runs the sparse head as the indexer does for a model with it (the Worker's cut), 400 without one
 */
import * as bundle from "../../workers/edge/src/bundled-model.js";
import { SHORT_QUERIES } from "../short-queries.js";
import { DOCUMENT_EMBEDDING } from "../../workers/edge/src/indexer.js";
import { DEFAULT_SPARSE, createEdgeModel, type LoadedEdgeModel } from "../../workers/edge/src/model-loader.js";


let model: LoadedEdgeModel | undefined;
let coldMs: { loadMs: number; firstEmbedMs: number } | undefined;

async function ensureModel(): Promise<LoadedEdgeModel> {
  if (!model) {
    const started = performance.now();
    model = await createEdgeModel(bundle);
    const loaded = performance.now();
    await model.encoder.embed([SHORT_QUERIES[0]!], { dims: 128, depth: "auto" });
    coldMs = { loadMs: loaded - started, firstEmbedMs: performance.now() - loaded };
  }
  return model;
}

/** A synthetic document of well over the model's 128 pieces: consecutive short queries, like a paragraph of prose. */
function longDocument(i: number): string {
  return Array.from({ length: 24 }, (_, k) => SHORT_QUERIES[(i * 7 + k) % SHORT_QUERIES.length]!).join(". ");
}

async function documentThroughput(encoder: LoadedEdgeModel["encoder"], url: URL): Promise<Response> {
  const depthParam = url.searchParams.get("depth") ?? "auto";
  const depth = depthParam === "auto" ? ("auto" as const) : (Number(depthParam) as 1 | 3 | 6);
  const count = Number(url.searchParams.get("count") ?? 256);
  const withSparse = url.searchParams.get("sparse") === "1";
  if (withSparse && !encoder.hasSparse) return Response.json({ error: "the bundled model has no sparse head" }, { status: 400 });
  const batch = DOCUMENT_EMBEDDING.batchSize;
  const documents = Array.from({ length: count }, (_, i) => longDocument(i));
  const options = { dims: DOCUMENT_EMBEDDING.dims, depth, ...(withSparse ? { sparse: { ...DEFAULT_SPARSE } } : {}) };
  await encoder.embed(documents.slice(0, batch), options);
  let steps = 0;
  const started = performance.now();
  for (let start = 0; start < count; start += batch) {
    const result = await encoder.embed(documents.slice(start, start + batch), options);
    steps += result.depth * Math.min(batch, count - start);
  }
  const seconds = (performance.now() - started) / 1000;
  return Response.json({ depth: depthParam, sparse: withSparse, documents: count, seconds, docs_per_s: count / seconds, mean_steps: steps / count });
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const { encoder } = await ensureModel();
    if (url.pathname === "/cold") return Response.json(coldMs);
    if (url.pathname === "/documents") return documentThroughput(encoder, url);
    if (url.pathname !== "/embed") return Response.json({ error: "GET /cold, /embed or /documents" }, { status: 404 });

    const depthParam = url.searchParams.get("depth") ?? "auto";
    const depth = depthParam === "auto" ? ("auto" as const) : (Number(depthParam) as 1 | 3 | 6);
    const dims = Number(url.searchParams.get("dims") ?? 128) as 64 | 128 | 256 | 384;
    const blocks = Number(url.searchParams.get("blocks") ?? 30);
    const perBlock = Number(url.searchParams.get("perBlock") ?? 50);
    // Early exit off for fixed depths, so a figure for "depth 6" is six steps, not fewer.
    const earlyExit = depth === "auto";

    // Warm-up blocks, discarded: the first calls of a new shape pay for ORT's allocations and V8's tier-up.
    for (let i = 0; i < perBlock * 4; i++) await encoder.embed([SHORT_QUERIES[i % SHORT_QUERIES.length]!], { dims, depth, earlyExit });
    const blockMeans: number[] = [];
    const stepsRun: number[] = [];
    for (let block = 0; block < blocks; block++) {
      const started = performance.now();
      for (let i = 0; i < perBlock; i++) {
        const result = await encoder.embed([SHORT_QUERIES[(block * perBlock + i) % SHORT_QUERIES.length]!], { dims, depth, earlyExit });
        stepsRun.push(result.depth);
      }
      blockMeans.push((performance.now() - started) / perBlock);
    }
    blockMeans.sort((a, b) => a - b);
    return Response.json({
      depth: depthParam,
      dims,
      blocks,
      perBlock,
      p50_ms: quantile(blockMeans, 0.5),
      p95_ms: quantile(blockMeans, 0.95),
      mean_steps: stepsRun.reduce((sum, steps) => sum + steps, 0) / stepsRun.length,
    });
  },
};

/**
 * Inside workerd, `performance.now()` advances in 1 ms steps, so a single sub-millisecond embed cannot be timed.
 * Each sample is therefore a block of `perBlock` embeds of one query after another (single query per call, as the
 * edge serves them); the figures are per-query means of blocks, and their p50/p95 across blocks.
 *
 * GET /cold          → time to create the encoder (ORT wasm instantiation + sessions + sha256 checks) and first embed
 * GET /embed?depth=1|3|6|auto&dims=128&blocks=30&perBlock=50
 */
import * as bundle from "../../workers/edge/src/bundled-model.js";
import { SHORT_QUERIES } from "../short-queries.js";
import { createEdgeModel, type LoadedEdgeModel } from "../../workers/edge/src/model-loader.js";


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

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const { encoder } = await ensureModel();
    if (url.pathname === "/cold") return Response.json(coldMs);
    if (url.pathname !== "/embed") return Response.json({ error: "GET /cold or /embed" }, { status: 404 });

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

/**
 * `npm run bench [-- --json]`: speed and size figures of the bundled edge model. Never part of the test run's
 * pass/fail; it prints what it measured. Progress goes to stderr; with --json the last stdout line is one JSON object.
 *
 * - embed latency of one short query per call, per depth, inside workerd (onnxruntime-web, WASM SIMD, 1 thread;
 *   blocks of calls because workerd's clock has 1 ms steps — see bench/workerd/embed-bench.ts) and in Node
 *   (onnxruntime-node, 1 thread; per call);
 * - cold start inside workerd: encoder creation (wasm instantiation, sessions, sha256 checks) and first embed;
 * - artifact size: parameters, bytes of each variant's graphs;
 * - the speed peer (bench/peers/speed.ts): an all-MiniLM-L6-v2-shaped encoder (random weights, timing only) against
 *   ours on onnxruntime-node, onnxruntime-web (wasm) in Node and inside workerd: query latency, document throughput and
 *   their ratios (`peers.minilm_l6_shaped`; `embed_peer_speedup` = workerd int8 peer p50 ÷ our bundled variant's depth-auto p50,
 *   timed interleaved in one isolate);
 * - the service under wrangler dev (bench/search-load.ts): indexing throughput (`index_docs_per_s`) and hybrid search
 *   latency at 10k and 100k documents with 16 concurrent clients (`search_10k_*`, `search_100k_*`; from a single client,
 *   cache hits: `search_*_one_client_p50_ms`). The first run
 *   builds those indexes once (tens of minutes); later runs reuse them from bench/out/state;
 * - the GPU origin (bench/origin-load.ts) on this machine's CPU: texts/s for single-query requests and for batches of 16
 *   documents, 32 requests in flight (`origin_query_texts_per_s`, `origin_document_texts_per_s`);
 * - training throughput (bench/train-throughput.ts): tokens/s of the edge-small training config with one process and
 *   with two data-parallel processes (`train_tokens_per_s_1proc`, `train_tokens_per_s_2proc`), and two with documents
 *   supervised at depth 1 only (`train_tokens_per_s_2proc_documents_depth1`), then with the subspace objectives at
 *   128-piece documents, the probes reading steps 1/3/6 or step 1 only (`train_tokens_per_s_2proc_subspaces`, `_step1`),
 *   and with the late head and its distillation, the adapt preset's objectives (`train_tokens_per_s_2proc_late`), also
 *   at micro-batches of 128 pairs through the gradient cache (`train_tokens_per_s_2proc_late_cache128`).
 */
import { Command, InvalidArgumentError } from "commander";
import path from "node:path";
import { percentile } from "../src/eval/metrics.js";
import { measureOrigin } from "./origin-load.js";
import { readFileSync } from "node:fs";
import { ARTIFACT_VARIANTS, TaesrEncoder, variantGraphs, type ArtifactVariant } from "../src/model/index.js";
import { WordPieceTokenizer } from "../src/tokenizer/index.js";
import { readArtifactDir } from "../workers/origin/src/artifact-files.js";
import { ortNode } from "../workers/origin/src/ort-node.js";
import { repoRoot, startWranglerDev } from "../workers/edge/dev/local-service.js";
import { defaultArtifactDir } from "./default-artifact.js";
import { SHORT_QUERIES } from "./short-queries.js";
import { ensureMinilmShapedGraphs } from "./peers/minilm-shaped.js";
import { measurePeerSpeedInNode, measurePeerSpeedInWorkerd, minilmShapedReport } from "./peers/speed.js";
import { measureHttpFloor, measureIndexing, measureSearch } from "./search-load.js";
import { positiveInteger } from "./cli-options.js";
import { measureTrainingThroughput, THROUGHPUT_SETTINGS } from "./train-throughput.js";

/** "10000,100000" → [10000, 100000]; at most the ~180k documents the shared datasets hold. */
function parseSizes(value: string): number[] {
  const sizes = value.split(",").map((part) => positiveInteger(part.trim()));
  if (sizes.some((size) => size > 150_000)) throw new InvalidArgumentError("index sizes above 150000 are not available from the shared datasets");
  return [...new Set(sizes)].sort((a, b) => a - b);
}

const program = new Command()
  .name("npm run bench --")
  .description("Benchmark the bundled edge model (workerd and Node) and print JSON figures.")
  .option("--json", "end with one JSON line holding every figure", false)
  .option("--runs <n>", "Node: timed calls per setting (variant × width × depth)", positiveInteger, 1000)
  .option("--no-peers", "skip the MiniLM-shaped speed peer")
  .option("--peer-runs <n>", "speed peer: timed single-query calls per model and runtime in Node", (v) => Number(v), 400)
  .option("--peer-docs <n>", "speed peer: SciFact abstracts for the docs/s figure (batches of 16)", (v) => Number(v), 64)
  .option("--peer-blocks <n>", "speed peer: interleaved timing rounds inside workerd", (v) => Number(v), 30)
  .option("--no-search", "skip indexing throughput and search latency over the service")
  .option("--search-sizes <list>", "index sizes for search latency (built once into bench/out/state, then reused)", parseSizes, [10_000, 100_000])
  .option("--clients <n>", "concurrent search clients", positiveInteger, 16)
  .option("--index-docs <n>", "SciFact abstracts indexed for the docs/s figure", positiveInteger, 1024)
  .option("--no-origin", "skip the GPU origin's throughput (workers/origin on this machine's CPU)")
  .option("--no-train", "skip the training throughput runs")
  .option("--train-updates <n>", "training throughput: timed updates per process count (even)", positiveInteger, 8)
  .parse();
const options = program.opts<{
  json: boolean;
  runs: number;
  peers: boolean;
  peerRuns: number;
  peerDocs: number;
  peerBlocks: number;
  search: boolean;
  origin: boolean;
  searchSizes: number[];
  clients: number;
  indexDocs: number;
  train: boolean;
  trainUpdates: number;
}>();

const DEPTHS = ["1", "3", "6", "auto"] as const;
/** Node times every Matryoshka width; workerd the widths the edge serves (search reads 64 or 128 dims). */
const NODE_DIMS = [64, 128, 256, 384] as const;
const WORKERD_DIMS = [64, 128] as const;
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const round = (value: number) => Math.round(value * 1000) / 1000;

/** The variant the Worker bundles (model-artifacts/bundled.json; `npm run bundle` writes both): what workerd runs. */
const bundledVariant = (JSON.parse(readFileSync(path.join(repoRoot, "model-artifacts", "bundled.json"), "utf8")) as { variant?: ArtifactVariant }).variant ?? "int8";

type Latency = { p50_ms: number; p95_ms: number };

/** Per variant, per width, per depth: one short query per call (onnxruntime-node, 1 thread). */
async function nodeLatency(dir: string) {
  // The bundled variant (what workerd runs), int8 when that is another, and fp32 (the origin's).
  const variants = [...new Set([bundledVariant, "int8", "fp32"] as const)];
  const artifact = await readArtifactDir(dir, variants);
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const figures: Record<string, Record<string, Record<string, Latency>>> = {};
  for (const variant of variants) {
    const encoder = await TaesrEncoder.create({ ort: ortNode, manifest: artifact.manifest, files: artifact.files, variant, tokenizer });
    figures[variant] = {};
    for (const dims of NODE_DIMS) {
      const byDepth: Record<string, Latency> = {};
      for (const depthName of DEPTHS) {
        const depth = depthName === "auto" ? ("auto" as const) : (Number(depthName) as 1 | 3 | 6);
        const earlyExit = depth === "auto";
        for (const query of SHORT_QUERIES) await encoder.embed([query], { dims, depth, earlyExit });
        const samples: number[] = [];
        for (let i = 0; i < options.runs; i++) {
          const started = performance.now();
          await encoder.embed([SHORT_QUERIES[i % SHORT_QUERIES.length]!], { dims, depth, earlyExit });
          samples.push(performance.now() - started);
        }
        byDepth[depthName] = { p50_ms: round(percentile(samples, 50)), p95_ms: round(percentile(samples, 95)) };
      }
      figures[variant]![dims] = byDepth;
      log(`node ${variant} ${dims}-d: p50 ${DEPTHS.map((d) => `depth ${d} ${byDepth[d]!.p50_ms}`).join(", ")} ms`);
    }
    await encoder.release();
  }
  return { artifact, figures };
}

async function workerdLatency() {
  log("starting the bench Worker under wrangler dev…");
  const worker = await startWranglerDev({ configPath: path.join(repoRoot, "bench", "workerd", "wrangler.toml"), readyPath: "/cold", readyTimeoutMs: 180_000 });
  try {
    const cold = (await (await fetch(`${worker.url}/cold`)).json()) as { loadMs: number; firstEmbedMs: number };
    const byDims: Record<string, Record<string, Latency & { mean_steps: number }>> = {};
    // A discarded pass over every depth first: the isolate's first thousands of calls run slower (V8 tier-up, ORT
    // arena growth), which would otherwise be charged to whichever depth is measured first.
    for (const depth of DEPTHS) await (await fetch(`${worker.url}/embed?depth=${depth}&dims=128&blocks=10&perBlock=50`)).text();
    for (const dims of WORKERD_DIMS) {
      const byDepth: Record<string, Latency & { mean_steps: number }> = {};
      for (const depth of DEPTHS) {
        const response = await fetch(`${worker.url}/embed?depth=${depth}&dims=${dims}&blocks=30&perBlock=50`);
        if (!response.ok) throw new Error(`bench Worker answered ${response.status}: ${await response.text()}`);
        const figures = (await response.json()) as { p50_ms: number; p95_ms: number; mean_steps: number };
        byDepth[depth] = { p50_ms: round(figures.p50_ms), p95_ms: round(figures.p95_ms), mean_steps: round(figures.mean_steps) };
      }
      byDims[dims] = byDepth;
      log(`workerd ${bundledVariant} ${dims}-d: p50 ${DEPTHS.map((d) => `depth ${d} ${byDepth[d]!.p50_ms}`).join(", ")} ms (block means)`);
    }
    // The model's share of indexing: documents per second for the indexer's batches, at the router's depth and at 1,
    // and — for a model with the sparse head, whose terms the indexer stores too — at 1 with the head ("1+sparse").
    const documents: Record<string, { docs_per_s: number; mean_steps: number }> = {};
    for (const [name, query] of [["auto", "depth=auto"], ["1", "depth=1"], ["1+sparse", "depth=1&sparse=1"]] as const) {
      const response = await fetch(`${worker.url}/documents?${query}&count=256`);
      if (name === "1+sparse" && response.status === 400) {
        await response.text();
        continue;
      }
      if (!response.ok) throw new Error(`bench Worker answered ${response.status}: ${await response.text()}`);
      const figures = (await response.json()) as { docs_per_s: number; mean_steps: number };
      documents[name] = { docs_per_s: round(figures.docs_per_s), mean_steps: round(figures.mean_steps) };
    }
    log(`workerd ${bundledVariant} document embedding: ${Object.entries(documents).map(([d, f]) => `depth ${d} ${f.docs_per_s} docs/s`).join(", ")}`);
    return { cold, byDims, documents };
  } finally {
    await worker.stop();
  }
}

/** The MiniLM-shaped speed peer in Node (both engines) and inside workerd; see bench/peers/speed.ts. */
async function peerSpeed(oursWorkerdP50Ms: number) {
  const graphs = await ensureMinilmShapedGraphs({ log });
  const node = await measurePeerSpeedInNode({ queryRuns: options.peerRuns, documents: options.peerDocs, log });
  const workerd = await measurePeerSpeedInWorkerd({ blocks: options.peerBlocks, log });
  return {
    // Both models timed interleaved in one isolate: a change in machine load between two wrangler runs cannot skew it.
    embedPeerSpeedup: workerd.same_isolate.query_speedup.int8!,
    report: minilmShapedReport(graphs, node, workerd, oursWorkerdP50Ms),
  };
}

async function main(): Promise<void> {
  const dir = await defaultArtifactDir();
  const { artifact, figures: node } = await nodeLatency(dir);
  const workerd = await workerdLatency();
  const edge = workerd.byDims[128]!;
  const peers = options.peers ? await peerSpeed(edge.auto!.p50_ms) : undefined;
  const model = `${artifact.manifest.name}@${artifact.manifest.version}`;
  const indexing = options.search ? await measureIndexing(options.indexDocs) : undefined;
  const search = options.search ? await measureSearch(model, options.searchSizes, options.clients) : undefined;
  const floor = options.search ? await measureHttpFloor(options.clients) : undefined;
  const origin = options.origin ? await measureOrigin({ log }) : undefined;
  const training = options.train
    ? await measureTrainingThroughput(THROUGHPUT_SETTINGS, { timed: options.trainUpdates + (options.trainUpdates % 2), log })
    : undefined;
  const searchKeys: Record<string, number> = {};
  for (const [size, figures] of Object.entries(search ?? {})) {
    const label = Number(size) % 1000 === 0 ? `${Number(size) / 1000}k` : size;
    searchKeys[`search_${label}_p50_ms`] = figures.cache_miss.p50_ms;
    searchKeys[`search_${label}_p95_ms`] = figures.cache_miss.p95_ms;
    searchKeys[`search_${label}_one_client_p50_ms`] = figures.single_client_cache_hit.p50_ms;
  }
  // A variant's two graphs as listed (int4 shares int8/step.onnx); undefined when the artifact lacks the variant.
  const bytes = (variant: ArtifactVariant) =>
    artifact.manifest.variants[variant]
      ? Object.values(variantGraphs(artifact.manifest, variant)).reduce((total, file) => total + (artifact.manifest.files[file]?.bytes ?? 0), 0)
      : undefined;
  const result = {
    model,
    parameters: artifact.manifest.parameters,
    artifact_bytes: { ...Object.fromEntries(ARTIFACT_VARIANTS.map((v) => [v, bytes(v)])), tokenizer: artifact.manifest.files[artifact.manifest.tokenizer]?.bytes },
    embed_p50_ms: edge.auto!.p50_ms,
    embed_p95_ms: edge.auto!.p95_ms,
    edge_variant: bundledVariant,
    workerd_edge: workerd.byDims,
    workerd_document_embedding: workerd.documents,
    node,
    cold_start_ms: round(workerd.cold.loadMs + workerd.cold.firstEmbedMs),
    cold_start_detail_ms: { encoder_create: round(workerd.cold.loadMs), first_embed: round(workerd.cold.firstEmbedMs) },
    notes: "workerd figures are per-query means of blocks of 50 single-query calls (1 ms clock), p50/p95 across 30 blocks; Node figures are per call.",
    ...(peers ? { embed_peer_speedup: peers.embedPeerSpeedup, peers: { minilm_l6_shaped: peers.report } } : {}),
    ...(indexing ? { index_docs_per_s: indexing.docs_per_s, indexing } : {}),
    ...(origin ? { origin_query_texts_per_s: origin.queries.texts_per_s, origin_document_texts_per_s: origin.documents.texts_per_s, origin } : {}),
    ...(search
      ? {
          ...searchKeys,
          ...(floor ? { http_floor_p50_ms: floor.p50_ms, http_floor_p95_ms: floor.p95_ms } : {}),
          search: {
            by_size: search,
            http_floor: floor,
            note:
              `hybrid, topK 10, ${options.clients} concurrent clients (closed loop), end to end over loopback HTTP to wrangler dev; ` +
              "search_*_ms keys are the cache-miss pass (every query embedded); cache_hit repeats the same queries; " +
              "search_*_one_client_p50_ms is the cache-hit pass from a single client (no queueing).",
          },
        }
      : {}),
    ...(training
      ? {
          train_tokens_per_s_1proc: training["1"]!.tokens_per_s,
          train_tokens_per_s_2proc: training["2"]!.tokens_per_s,
          train_tokens_per_s_2proc_documents_depth1: training["2_documents_depth1"]!.tokens_per_s,
          train_tokens_per_s_2proc_subspaces: training["2_subspaces"]!.tokens_per_s,
          train_tokens_per_s_2proc_subspaces_step1: training["2_subspaces_step1"]!.tokens_per_s,
          train_tokens_per_s_2proc_late: training["2_late"]!.tokens_per_s,
          train_tokens_per_s_2proc_late_cache128: training["2_late_cache128"]!.tokens_per_s,
          training_throughput: {
            by_processes: training,
            note:
              "training/configs/edge-small.json (wasm backend, batches of 64 pairs per process), first 2 updates excluded; " +
              "2_documents_depth1: the same with training.documentSteps [1] (documents supervised only at the depth the index embeds them at); " +
              "2_subspaces: that with documents up to 128 pieces and the subspace objectives (weight 0.1, probes reading steps 1/3/6); " +
              "2_subspaces_step1: the probes reading step 1 only (objectives.subspaces.steps [1]); " +
              "2_late: documents up to 128 pieces with the late head (weight 0.5) and its distillation into the dense embedding; " +
              "2_late_cache128: that at micro-batches of 128 pairs through training.gradientCache (32 rows at a time)",
          },
        }
      : {}),
  };
  if (options.json) console.log(JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});

/**
 * The speed comparison behind `npm run bench`'s peer figures: our edge model against an encoder with the exact shape
 * of all-MiniLM-L6-v2 (bench/peers/minilm-shaped.ts; random weights, timing only), on the runtimes ours runs on:
 *
 * - onnxruntime-node, CPU EP, 1 intra-op + 1 inter-op thread (workers/origin/src/ort-node.ts);
 * - onnxruntime-web's wasm backend in Node, 1 thread, SIMD: the engine the edge runs, outside workerd. Node 20 runs it
 *   offline from `onnxruntime-web/wasm` (the bundle with the Emscripten glue built in) once `env.wasm.wasmBinary`
 *   holds the bytes of node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm: Node, unlike workerd, may
 *   compile wasm from bytes, so nothing is fetched and no placeholder trick (ort-workerd.ts) is needed;
 * - inside workerd under wrangler dev (bench/workerd/peer-bench.ts): the edge's actual runtime.
 *
 * Ours: the bundled artifact, int8, 128-d, depth "auto" with early exit (as the edge serves queries) and fixed depth
 * 6 (early exit off). The peer: int8 (quantised exactly like ours) and fp32.
 * - Query latency: one short query per call (bench/short-queries.ts), tokenisation and normalisation included, p50/p95
 *   per call after warm-up. The models are timed in interleaved blocks of {@link QUERY_BLOCK} calls, so a change of
 *   machine load during the run is charged to every model alike instead of to whichever runs at that moment.
 * - Document throughput: the first N SciFact abstracts (title + "\n" + text), batches of 16, the same texts for
 *   every model, batches interleaved likewise after one warm-up batch each. Ours reads at most 128 tokens (its
 *   maxLength), the peer at most 256 ([CLS]/[SEP] included; MiniLM's max_seq_length): the figures report both budgets.
 * - Ratios: query_speedup = peer p50 ÷ ours p50; docs_speedup = ours docs/s ÷ peer docs/s (> 1: ours is faster).
 *
 * @module
 */
import { loadavg } from "node:os";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as ortNodePackage from "onnxruntime-node";
import * as ortWeb from "onnxruntime-web/wasm";
import { percentile } from "../../src/eval/metrics.js";
import { TaesrEncoder } from "../../src/model/index.js";
import type { OrtLike, OrtSessionOptions } from "../../src/model/ort-seam.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { readSciFactCorpus } from "../../training/src/data/corpora.js";
import { readArtifactDir } from "../../workers/origin/src/artifact-files.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";
import { repoRoot, startWranglerDev } from "../../workers/edge/dev/local-service.js";
import { defaultArtifactDir } from "../default-artifact.js";
import { SHORT_QUERIES } from "../short-queries.js";
import { ensureMinilmShapedGraphs, type MinilmShapedGraphs, type PeerVariant } from "./minilm-shaped.js";
import { MinilmShapedRunner, PEER_MAX_SEQ_LENGTH, peerTokenCount } from "./minilm-shaped-runner.js";

/** Single-query calls per model per interleaved block. */
export const QUERY_BLOCK = 20;
export const DOC_BATCH_SIZE = 16;
/** Ours embeds at this Matryoshka prefix, as the edge search does. */
const OURS_DIMS = 128;

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

// ---- onnxruntime-web in Node -------------------------------------------------------------------------------------

let webConfigured = false;

/** onnxruntime-web's wasm backend in Node, configured as the edge configures it (1 thread, no proxy, SIMD build). */
async function configureOrtWeb(): Promise<void> {
  if (webConfigured) return;
  const wasmPath = fileURLToPath(import.meta.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm"));
  ortWeb.env.wasm.wasmBinary = await readFile(wasmPath);
  ortWeb.env.wasm.numThreads = 1;
  ortWeb.env.wasm.proxy = false;
  ortWeb.env.logLevel = "warning";
  webConfigured = true;
}

const WEB_SESSION_OPTIONS: OrtSessionOptions = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };

export const ortWebInNode: OrtLike = {
  Tensor: ortWeb.Tensor,
  InferenceSession: {
    async create(model: Uint8Array, options?: OrtSessionOptions) {
      await configureOrtWeb();
      return ortWeb.InferenceSession.create(model, { ...WEB_SESSION_OPTIONS, ...options });
    },
  },
};

export type NodeRuntime = "onnxruntime_node" | "onnxruntime_web_wasm";

const RUNTIMES: Record<NodeRuntime, { ort: OrtLike; engine: () => string }> = {
  onnxruntime_node: {
    ort: ortNode,
    engine: () =>
      `onnxruntime-node ${ortNodePackage.env.versions.node ?? "?"} in Node ${process.versions.node}, CPU EP, 1 intra-op + 1 inter-op thread`,
  },
  onnxruntime_web_wasm: {
    ort: ortWebInNode,
    engine: () => `onnxruntime-web ${ortWeb.env.versions.web ?? "?"} wasm backend in Node ${process.versions.node}, SIMD, 1 thread`,
  },
};

// ---- figures -----------------------------------------------------------------------------------------------------

export interface ModelFigures {
  query_p50_ms: number;
  query_p95_ms: number;
  docs_per_s: number;
  /** docs/s × the model's mean tokens per document (its own budget, see token_budgets). */
  doc_tokens_per_s: number;
  /** Ours only: recursion steps actually run (early exit stops "auto" before its routed depth). */
  query_mean_steps?: number;
  docs_mean_steps?: number;
}

export interface SpeedRatios {
  /** peer p50 ÷ ours (int8, depth auto) p50 */
  query_speedup: number;
  /** ours (int8, depth auto) docs/s ÷ peer docs/s */
  docs_speedup: number;
  /** the same against ours at fixed depth 6 (its slowest setting) */
  query_speedup_depth6: number;
  docs_speedup_depth6: number;
}

export interface RuntimeFigures {
  engine: string;
  ours: { int8_auto: ModelFigures; int8_depth6: ModelFigures };
  peer: Record<PeerVariant, ModelFigures>;
  /** Per peer variant. */
  ratios: Record<PeerVariant, SpeedRatios>;
}

export interface NodePeerSpeed {
  runtimes: Record<NodeRuntime, RuntimeFigures>;
  token_budgets: TokenBudgets;
  documents: { source: string; count: number; batch_size: number };
  query_runs: number;
  /** os.loadavg() before and after: on a shared machine, read the figures with it. */
  load_average: { before: number[]; after: number[] };
}

export interface TokenBudgets {
  ours: { max_tokens: number; special_tokens: 0; query_mean_tokens: number; doc_mean_tokens: number };
  peer: { max_tokens: number; special_tokens: 2; query_mean_tokens: number; doc_mean_tokens: number };
  note: string;
}

export interface PeerSpeedOptions {
  /** Timed single-query calls per model and runtime (rounded up to whole blocks of {@link QUERY_BLOCK}). Default 400. */
  queryRuns?: number;
  /** SciFact abstracts for the throughput figure. Default 64 (4 batches of 16). */
  documents?: number;
  runtimes?: readonly NodeRuntime[];
  log?: (message: string) => void;
}

type ContenderName = "ours_int8_auto" | "ours_int8_depth6" | "peer_int8" | "peer_fp32";

interface Contender {
  name: ContenderName;
  /** Embeds a batch; returns the recursion steps run (ours) or undefined (the peer). */
  run(texts: readonly string[]): Promise<number | undefined>;
}

const mean = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / Math.max(values.length, 1);

async function loadDocuments(count: number): Promise<string[]> {
  const texts: string[] = [];
  for await (const { title, text } of readSciFactCorpus({ limit: count })) texts.push(`${title}\n${text}`);
  if (texts.length < count) throw new Error(`the SciFact corpus holds only ${texts.length} documents, ${count} asked for`);
  return texts;
}

/** p50/p95 per call of single short-query embeds, models interleaved in blocks; two discarded warm-up rounds. */
async function timeQueries(contenders: readonly Contender[], runs: number) {
  const rounds = Math.ceil(runs / QUERY_BLOCK);
  const samples = new Map(contenders.map((c) => [c.name, [] as number[]]));
  const steps = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (let r = -2; r < rounds; r++) {
    for (const contender of contenders) {
      for (let i = 0; i < QUERY_BLOCK; i++) {
        const query = SHORT_QUERIES[(Math.max(r, 0) * QUERY_BLOCK + i) % SHORT_QUERIES.length]!;
        const started = performance.now();
        const ran = await contender.run([query]);
        const elapsed = performance.now() - started;
        if (r < 0) continue;
        samples.get(contender.name)!.push(elapsed);
        if (ran !== undefined) steps.get(contender.name)!.push(ran);
      }
    }
  }
  return new Map(
    contenders.map((c) => {
      const s = samples.get(c.name)!;
      const st = steps.get(c.name)!;
      return [c.name, { p50: percentile(s, 50), p95: percentile(s, 95), meanSteps: st.length > 0 ? mean(st) : undefined }];
    }),
  );
}

/** docs/s over all batches, models interleaved batch by batch, after one discarded warm-up batch each. */
async function timeDocuments(contenders: readonly Contender[], documents: readonly string[]) {
  const batches: string[][] = [];
  for (let i = 0; i < documents.length; i += DOC_BATCH_SIZE) batches.push(documents.slice(i, i + DOC_BATCH_SIZE));
  for (const contender of contenders) await contender.run(batches[0]!);
  const totalMs = new Map(contenders.map((c) => [c.name, 0]));
  const steps = new Map(contenders.map((c) => [c.name, [] as number[]]));
  for (const batch of batches) {
    for (const contender of contenders) {
      const started = performance.now();
      const ran = await contender.run(batch);
      totalMs.set(contender.name, totalMs.get(contender.name)! + performance.now() - started);
      if (ran !== undefined) steps.get(contender.name)!.push(ran);
    }
  }
  return new Map(
    contenders.map((c) => {
      const st = steps.get(c.name)!;
      return [c.name, { docsPerS: documents.length / (totalMs.get(c.name)! / 1000), meanSteps: st.length > 0 ? mean(st) : undefined }];
    }),
  );
}

function ratios(ours: RuntimeFigures["ours"], peer: ModelFigures): SpeedRatios {
  return {
    query_speedup: round(peer.query_p50_ms / ours.int8_auto.query_p50_ms, 2),
    docs_speedup: round(ours.int8_auto.docs_per_s / peer.docs_per_s, 2),
    query_speedup_depth6: round(peer.query_p50_ms / ours.int8_depth6.query_p50_ms, 2),
    docs_speedup_depth6: round(ours.int8_depth6.docs_per_s / peer.docs_per_s, 2),
  };
}

/**
 * Times ours and the MiniLM-shaped peer on onnxruntime-node and on onnxruntime-web (wasm) in Node. Builds the peer
 * graphs first if they are not cached. Takes about two minutes with the defaults on two cores.
 */
export async function measurePeerSpeedInNode(options: PeerSpeedOptions = {}): Promise<NodePeerSpeed> {
  const log = options.log ?? (() => {});
  const queryRuns = options.queryRuns ?? 400;
  const documentCount = options.documents ?? 64;
  const before = loadavg();
  const graphs = await ensureMinilmShapedGraphs({ log });
  const artifact = await readArtifactDir(await defaultArtifactDir(), ["int8"]);
  const tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
  const maxLength = artifact.manifest.architecture.maxLength;
  const documents = await loadDocuments(documentCount);
  const peerBytes = {
    int8: new Uint8Array(await readFile(graphs.paths.int8)),
    fp32: new Uint8Array(await readFile(graphs.paths.fp32)),
  };

  const oursTokens = (text: string) => Math.max(tokenizer.encode(text, { maxLength }).length, 1);
  const peerTokens = (text: string) => peerTokenCount(text, tokenizer);
  const docTokens = { ours: mean(documents.map(oursTokens)), peer: mean(documents.map(peerTokens)) };

  const runtimes = {} as Record<NodeRuntime, RuntimeFigures>;
  for (const runtime of options.runtimes ?? (Object.keys(RUNTIMES) as NodeRuntime[])) {
    const { ort, engine } = RUNTIMES[runtime];
    const encoder = await TaesrEncoder.create({ ort, manifest: artifact.manifest, files: artifact.files, variant: "int8", tokenizer });
    const peer = (variant: PeerVariant) =>
      MinilmShapedRunner.create({ ort, model: peerBytes[variant], tokenizer, vocabSize: graphs.shape.vocabSize, hidden: graphs.shape.hidden });
    const peers = { int8: await peer("int8"), fp32: await peer("fp32") };
    try {
      const contenders: Contender[] = [
        { name: "ours_int8_auto", run: async (t) => (await encoder.embed(t, { dims: OURS_DIMS, depth: "auto", earlyExit: true })).depth },
        { name: "ours_int8_depth6", run: async (t) => (await encoder.embed(t, { dims: OURS_DIMS, depth: 6, earlyExit: false })).depth },
        { name: "peer_int8", run: async (texts) => void (await peers.int8.embed(texts)) },
        { name: "peer_fp32", run: async (texts) => void (await peers.fp32.embed(texts)) },
      ];
      log(`${runtime}: ${queryRuns} single-query calls per model (interleaved blocks of ${QUERY_BLOCK})…`);
      const queries = await timeQueries(contenders, queryRuns);
      log(`${runtime}: ${documents.length} SciFact abstracts per model, batches of ${DOC_BATCH_SIZE}…`);
      const docs = await timeDocuments(contenders, documents);
      const figures = (name: ContenderName): ModelFigures => {
        const q = queries.get(name)!;
        const d = docs.get(name)!;
        return {
          query_p50_ms: round(q.p50),
          query_p95_ms: round(q.p95),
          docs_per_s: round(d.docsPerS, 2),
          doc_tokens_per_s: Math.round(d.docsPerS * (name.startsWith("ours") ? docTokens.ours : docTokens.peer)),
          ...(q.meanSteps !== undefined ? { query_mean_steps: round(q.meanSteps, 2) } : {}),
          ...(d.meanSteps !== undefined ? { docs_mean_steps: round(d.meanSteps, 2) } : {}),
        };
      };
      const ours = { int8_auto: figures("ours_int8_auto"), int8_depth6: figures("ours_int8_depth6") };
      const peer = { int8: figures("peer_int8"), fp32: figures("peer_fp32") };
      runtimes[runtime] = { engine: engine(), ours, peer, ratios: { int8: ratios(ours, peer.int8), fp32: ratios(ours, peer.fp32) } };
      for (const variant of ["int8", "fp32"] as const) {
        log(
          `${runtime}: query p50 ours ${ours.int8_auto.query_p50_ms} ms vs peer ${variant} ${peer[variant].query_p50_ms} ms ` +
            `(×${runtimes[runtime].ratios[variant].query_speedup}); docs/s ours ${ours.int8_auto.docs_per_s} vs ${peer[variant].docs_per_s} ` +
            `(×${runtimes[runtime].ratios[variant].docs_speedup})`,
        );
      }
    } finally {
      await Promise.allSettled([encoder.release(), peers.int8.release(), peers.fp32.release()]);
    }
  }

  return {
    runtimes,
    token_budgets: {
      ours: {
        max_tokens: maxLength,
        special_tokens: 0,
        query_mean_tokens: round(mean(SHORT_QUERIES.map(oursTokens)), 2),
        doc_mean_tokens: round(docTokens.ours, 1),
      },
      peer: {
        max_tokens: PEER_MAX_SEQ_LENGTH,
        special_tokens: 2,
        query_mean_tokens: round(mean(SHORT_QUERIES.map(peerTokens)), 2),
        doc_mean_tokens: round(docTokens.peer, 1),
      },
      note:
        "the peer gets our WordPiece piece count + [CLS]/[SEP] per text, capped at 256 (MiniLM's max_seq_length), ids drawn " +
        "deterministically from BERT's vocabulary; ours truncates at its maxLength 128, so on long documents it reads fewer " +
        "tokens (docs_speedup compares documents; doc_tokens_per_s compares tokens)",
    },
    documents: {
      source: `SciFact corpus.jsonl, first ${documents.length} abstracts (title + "\\n" + text)`,
      count: documents.length,
      batch_size: DOC_BATCH_SIZE,
    },
    query_runs: Math.ceil(queryRuns / QUERY_BLOCK) * QUERY_BLOCK,
    load_average: { before: before.map((v) => round(v, 2)), after: loadavg().map((v) => round(v, 2)) },
  };
}

// ---- workerd -----------------------------------------------------------------------------------------------------

interface BlockFigures {
  p50_ms: number;
  p95_ms: number;
  blocks: number;
  perBlock: number;
  mean_tokens: number;
}

interface WorkerdPeerFigures {
  query_p50_ms: number;
  query_p95_ms: number;
  /** Session creation + first embed in a fresh isolate (the wasm module is shared with ours once instantiated). */
  cold_start_ms: number;
}

interface ColdFigures {
  loadMs: number;
  firstEmbedMs: number;
}

export interface WorkerdPeerSpeed {
  engine: string;
  peer: { int8: WorkerdPeerFigures; fp32: WorkerdPeerFigures | { error: string } };
  /** Ours (int8, 128-d, depth auto) timed in the same isolate, blocks interleaved with the peer's: the headline ratio. */
  same_isolate: { ours_int8_auto_p50_ms: number; ours_int8_auto_p95_ms: number; query_speedup: Partial<Record<PeerVariant, number>> };
  note: string;
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = await response.text();
  if (!response.ok) throw new Error(`${new URL(url).pathname}${new URL(url).search} answered ${response.status}: ${body.slice(0, 500)}`);
  return JSON.parse(body) as T;
}

/**
 * Starts bench/workerd/peer-bench.ts under wrangler dev (generating the peer graphs first), times single short-query
 * embeds of the int8 peer (and the fp32 one if it loads) in blocks, interleaved with ours, and stops the Worker.
 */
export async function measurePeerSpeedInWorkerd(
  options: { blocks?: number; log?: (message: string) => void } = {},
): Promise<WorkerdPeerSpeed> {
  const log = options.log ?? (() => {});
  const blocks = options.blocks ?? 30;
  await ensureMinilmShapedGraphs({ log });
  log("starting the peer bench Worker under wrangler dev (bundles the 23.5 MB and 90 MB peer graphs)…");
  const worker = await startWranglerDev({
    configPath: path.join(repoRoot, "bench", "workerd", "peer-wrangler.toml"),
    readyPath: "/cold?model=peer-int8",
    readyTimeoutMs: 300_000,
  });
  try {
    const coldInt8 = await getJson<ColdFigures>(`${worker.url}/cold?model=peer-int8`);
    await getJson(`${worker.url}/cold?model=ours`);
    let coldFp32: ColdFigures | undefined;
    let fp32Error = "";
    try {
      coldFp32 = await getJson<ColdFigures>(`${worker.url}/cold?model=peer-fp32`);
    } catch (error) {
      fp32Error = `the fp32 peer did not load in workerd: ${(error as Error).message}`;
      log(fp32Error);
    }
    const fp32Loaded = coldFp32 !== undefined;
    // Blocks of ~50 ms or more each, so the 1 ms clock step stays a few percent of a block.
    const models = ["ours:50", "peer-int8:10", ...(fp32Loaded ? ["peer-fp32:5"] : [])].join(",");
    const figures = await getJson<Record<string, BlockFigures>>(`${worker.url}/embed?models=${models}&blocks=${blocks}`);
    const ours = figures["ours"]!;
    const int8 = figures["peer-int8"]!;
    const fp32 = figures["peer-fp32"];
    const peerFigures = (block: BlockFigures, cold: ColdFigures): WorkerdPeerFigures => ({
      query_p50_ms: round(block.p50_ms),
      query_p95_ms: round(block.p95_ms),
      cold_start_ms: round(cold.loadMs + cold.firstEmbedMs),
    });
    const result: WorkerdPeerSpeed = {
      engine: "onnxruntime-web 1.30 wasm (SIMD, 1 thread) inside workerd under wrangler dev, loaded as the edge loads it",
      peer: {
        int8: peerFigures(int8, coldInt8),
        fp32: fp32 && coldFp32 ? peerFigures(fp32, coldFp32) : { error: fp32Error || "no fp32 figures returned" },
      },
      same_isolate: {
        ours_int8_auto_p50_ms: round(ours.p50_ms),
        ours_int8_auto_p95_ms: round(ours.p95_ms),
        query_speedup: {
          int8: round(int8.p50_ms / ours.p50_ms, 2),
          ...(fp32 ? { fp32: round(fp32.p50_ms / ours.p50_ms, 2) } : {}),
        },
      },
      note:
        `per-query means of blocks (workerd's clock has 1 ms steps): ours ${ours.perBlock}, peer int8 ${int8.perBlock}` +
        `${fp32 ? `, peer fp32 ${fp32.perBlock}` : ""} calls per block, p50/p95 across ${blocks} interleaved rounds; ` +
        "local wrangler dev only: 23.5 MB / 90 MB graphs exceed a deployed Worker's script size limit",
    };
    log(`workerd: query p50 ours ${result.same_isolate.ours_int8_auto_p50_ms} ms vs peer int8 ${result.peer.int8.query_p50_ms} ms (same isolate)`);
    return result;
  } finally {
    await worker.stop();
  }
}

/** The `peers.minilm_l6_shaped` object of the bench JSON. `oursWorkerdP50Ms` is embed-bench's depth-auto p50. */
export function minilmShapedReport(
  graphs: MinilmShapedGraphs,
  node: NodePeerSpeed,
  workerd: WorkerdPeerSpeed,
  oursWorkerdP50Ms: number,
) {
  const fp32 = workerd.peer.fp32;
  return {
    model: "all-MiniLM-L6-v2-shaped BERT (6 layers, hidden 384, 12 heads, FFN 1536, vocab 30522, 512 positions, post-LN, GELU erf, mean pooling)",
    parameters: graphs.parameters.total,
    parameters_in_graph: graphs.parameters.inGraph,
    graph_bytes: graphs.bytes,
    seed: graphs.seed,
    token_budgets: node.token_budgets,
    documents: node.documents,
    query_runs: node.query_runs,
    runtimes: {
      ...node.runtimes,
      workerd: {
        ...workerd,
        ours_int8_auto_embed_bench_p50_ms: oursWorkerdP50Ms,
        /** Against embed-bench's figure for ours (a separate wrangler run); same_isolate.query_speedup is interleaved. */
        ratios: {
          int8: { query_speedup: round(workerd.peer.int8.query_p50_ms / oursWorkerdP50Ms, 2) },
          ...("error" in fp32 ? {} : { fp32: { query_speedup: round(fp32.query_p50_ms / oursWorkerdP50Ms, 2) } }),
        },
      },
    },
    load_average: node.load_average,
    note:
      "random weights (seeded N(0, 0.02²)): timing only, says nothing about quality. int8 is quantised as ours is " +
      "(7-bit per-column weights via DynamicQuantizeLinear → MatMulInteger, int8 word-embedding table per row). " +
      "query_speedup = peer p50 ÷ ours p50; docs_speedup = ours docs/s ÷ peer docs/s; ours = int8, 128-d, depth auto " +
      "with early exit unless the key says depth6. embed_peer_speedup = workerd.same_isolate.query_speedup.int8: both " +
      "timed interleaved in one isolate, steady when the machine's load changes (see load_average); workerd.ratios " +
      "divide by embed-bench's p50 for ours instead, measured in another wrangler run minutes earlier.",
  };
}

/**
 * The speed peer inside workerd: the all-MiniLM-L6-v2-shaped graphs (bench/peers/minilm-shaped.ts, generated into
 * bench/out/peers/ before wrangler starts) on onnxruntime-web exactly as the edge runs ours (ort-workerd.ts: the
 * pre-compiled wasm module, one thread, SIMD), timing single short-query embeds in blocks as embed-bench.ts does
 * (workerd's clock advances in 1 ms steps).
 *
 * Our edge model is loaded here too, so the same isolate can time both in interleaved blocks: on a busy machine the
 * load drifts over minutes, and interleaving charges the drift to both sides alike. `embed_peer_speedup` is therefore
 * this same-isolate ratio; `embed_p50_ms` for ours alone still comes from embed-bench.ts.
 *
 * GET /cold?model=peer-int8|peer-fp32|ours → { loadMs, firstEmbedMs } (creates that model on first use)
 * GET /embed?models=ours:50,peer-int8:10&blocks=30 → per model { p50_ms, p95_ms, perBlock, mean_tokens }: each of the
 *     `blocks` rounds runs one block of `perBlock` single-query calls per model, in the listed order.
 */
import * as bundle from "../../workers/edge/src/bundled-model.js";
import { createEdgeModel } from "../../workers/edge/src/model-loader.js";
import { ortWorkerd } from "../../workers/edge/src/ort-workerd.js";
import { WordPieceTokenizer, type TokenizerJSON } from "../../src/tokenizer/index.js";
import { SHORT_QUERIES } from "../short-queries.js";
import { MinilmShapedRunner, peerTokenCount } from "../peers/minilm-shaped-runner.js";
import peerInt8 from "../out/peers/minilm-l6-shaped.int8.onnx";
import peerFp32 from "../out/peers/minilm-l6-shaped.fp32.onnx";

type ModelName = "ours" | "peer-int8" | "peer-fp32";
const PEER_GRAPHS: Record<Exclude<ModelName, "ours">, ArrayBuffer> = { "peer-int8": peerInt8, "peer-fp32": peerFp32 };

/** A model as timed here: one embed of one query as the edge serves it, and (untimed) how many tokens it reads. */
interface Timed {
  embed(query: string): Promise<unknown>;
  tokens(query: string): number;
  cold: { loadMs: number; firstEmbedMs: number };
}

const loaded = new Map<ModelName, Timed>();
/** Our WordPiece tokenizer: counts our tokens, and the peer's (its ids are derived from our piece counts). */
let wordPiece: WordPieceTokenizer | undefined;

async function create(name: ModelName): Promise<Omit<Timed, "cold">> {
  const tokenizer = (wordPiece ??= WordPieceTokenizer.fromJSON(bundle.tokenizerJson as TokenizerJSON));
  if (name === "ours") {
    const { encoder } = await createEdgeModel(bundle);
    const maxLength = encoder.architecture.maxLength;
    return {
      embed: (query) => encoder.embed([query], { dims: 128, depth: "auto" }),
      tokens: (query) => Math.max(tokenizer.encode(query, { maxLength }).length, 1),
    };
  }
  const runner = await MinilmShapedRunner.create({ ort: ortWorkerd, model: new Uint8Array(PEER_GRAPHS[name]), tokenizer });
  return { embed: (query) => runner.embed([query]), tokens: (query) => peerTokenCount(query, tokenizer) };
}

async function ensure(name: ModelName): Promise<Timed> {
  let model = loaded.get(name);
  if (!model) {
    const started = performance.now();
    const created = await create(name);
    const ready = performance.now();
    await created.embed(SHORT_QUERIES[0]!);
    model = { ...created, cold: { loadMs: ready - started, firstEmbedMs: performance.now() - ready } };
    loaded.set(name, model);
  }
  return model;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function modelName(value: string | null | undefined): ModelName {
  if (value === "ours" || value === "peer-int8" || value === "peer-fp32") return value;
  throw new Error(`unknown model ${JSON.stringify(value)}: use ours, peer-int8 or peer-fp32`);
}

/** "ours:50,peer-int8:10" → [["ours", 50], ["peer-int8", 10]] */
function parseModels(spec: string): Array<[ModelName, number]> {
  return spec.split(",").map((part) => {
    const [name, perBlock] = part.split(":");
    const n = Number(perBlock ?? 20);
    if (!Number.isInteger(n) || n < 1) throw new Error(`bad block size in ${JSON.stringify(part)}`);
    return [modelName(name), n];
  });
}

async function measure(models: Array<[ModelName, number]>, blocks: number): Promise<Record<string, unknown>> {
  const runs = await Promise.all(
    models.map(async ([name, perBlock]) => ({ name, perBlock, model: await ensure(name), means: [] as number[], queries: [] as string[] })),
  );
  // Warm-up blocks, discarded (V8 tier-up, ORT arena growth), then `blocks` interleaved rounds.
  for (let round = -4; round < blocks; round++) {
    for (const run of runs) {
      const started = performance.now();
      for (let i = 0; i < run.perBlock; i++) {
        const query = SHORT_QUERIES[(Math.max(round, 0) * run.perBlock + i) % SHORT_QUERIES.length]!;
        await run.model.embed(query);
        if (round >= 0) run.queries.push(query);
      }
      if (round >= 0) run.means.push((performance.now() - started) / run.perBlock);
    }
  }
  return Object.fromEntries(
    runs.map((run) => {
      const sorted = [...run.means].sort((a, b) => a - b);
      const meanTokens = run.queries.reduce((sum, q) => sum + run.model.tokens(q), 0) / run.queries.length;
      return [run.name, { p50_ms: quantile(sorted, 0.5), p95_ms: quantile(sorted, 0.95), blocks, perBlock: run.perBlock, mean_tokens: meanTokens }];
    }),
  );
}

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (url.pathname === "/cold") return Response.json((await ensure(modelName(url.searchParams.get("model") ?? "peer-int8"))).cold);
      if (url.pathname === "/embed") {
        const blocks = Number(url.searchParams.get("blocks") ?? 30);
        return Response.json(await measure(parseModels(url.searchParams.get("models") ?? "peer-int8:10"), blocks));
      }
      return Response.json({ error: "GET /cold?model=… or /embed?models=…" }, { status: 404 });
    } catch (error) {
      return Response.json({ error: (error as Error).message }, { status: 500 });
    }
  },
};

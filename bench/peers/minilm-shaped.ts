/**
 * The speed peer's graphs: an ONNX encoder with exactly the shape of sentence-transformers/all-MiniLM-L6-v2 and seeded
 * random weights, so `npm run bench` can time our edge model against the usual small sentence encoder on the same
 * runtimes (onnxruntime-node, onnxruntime-web) without downloading anything. Timing only: random weights say nothing
 * about quality (the quality peer is bench/peers/use-lite.ts).
 *
 * Architecture (BERT, as MiniLM-L6-H384 runs it):
 *   x = LN(wordEmbedding[ids] + positionEmbedding[0..T) + tokenTypeEmbedding[0])      (token_type_ids all zero, folded)
 *   6 × post-LN layers: x = LN(x + MHA(x, mask)) ; x = LN(x + W2·gelu_erf(W1·x + b1) + b2)
 *   embedding = Σ_t mask·x / max(Σ_t mask, 1e-9)                                       (sentence-transformers Pooling)
 * LayerNorm eps 1e-12 (BERT's); 12 heads of 32; additive key-padding mask; GELU written as PyTorch exports it
 * (Div √2 → Erf → Add 1 → Mul x → Mul ½), which ORT fuses into one Gelu as it would for a real export.
 *
 * Like for like with ours (training/src/onnx/taesr-graphs.ts), built with the same GraphBuilder and quantisation helpers:
 * - fp32: MatMul + Add for every dense layer.
 * - int8: every weight matrix 7-bit per output column, run as DynamicQuantizeLinear → MatMulInteger → Cast →
 *   Mul(act_scale · w_scale) → Add(bias), each activation quantised once for the layers that read it (Q/K/V); the
 *   word-embedding table int8 per row with a float scale per row. LayerNorm, biases, position/type tables float32.
 *
 * The BERT pooler (dense + tanh on [CLS]) is part of the checkpoint's 22,713,216 parameters but not of the graph:
 * mean pooling never reads it. Its weights are drawn anyway so the parameter count is the checkpoint's, exactly.
 *
 * The fp32 graph is ~90 MB, so both graphs are cached under bench/out/peers/ (gitignored) and rebuilt only when
 * missing or when the sidecar's key (graph format, shape, seed) differs from this code's.
 *
 * @example
 *   const peer = await ensureMinilmShapedGraphs();   // builds on first use (~20 s), then reuses
 *   peer.paths.int8; // …/bench/out/peers/minilm-l6-shaped.int8.onnx
 *
 * @module
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { attr, GraphBuilder } from "../../training/src/onnx/graph-builder.js";
import { DataType } from "../../training/src/onnx/onnx-proto.js";
import { quantizePerColumn, quantizePerRow } from "../../training/src/onnx/quantize.js";
import { createRng } from "../../training/src/data/random.js";
import { fillNormal } from "../../training/src/model/params.js";
import { ATTENTION_MASK_VALUE, OPSET_VERSION } from "../../src/model/spec.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";
import { MINILM_L6_SHAPE, MinilmShapedRunner, PEER_IO, type BertShape } from "./minilm-shaped-runner.js";

export { MINILM_L6_SHAPE, type BertShape } from "./minilm-shaped-runner.js";

export type PeerVariant = "fp32" | "int8";
export const PEER_VARIANTS: readonly PeerVariant[] = ["int8", "fp32"];

/** Parameters of sentence-transformers/all-MiniLM-L6-v2 (its model card and `sum(p.numel())`), pooler included. */
export const MINILM_L6_V2_PARAMETERS = 22_713_216;
export const MINILM_SHAPED_SEED = 20_240_607;
/** Bump when the graph construction changes, so cached graphs are rebuilt. */
const GRAPH_FORMAT = 1;
const BERT_LAYER_NORM_EPS = 1e-12;
/** BERT's initializer_range: every matrix and table ~ N(0, 0.02²), biases 0, LayerNorm γ 1 / β 0. */
const INIT_STD = 0.02;

export const peersOutDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../out/peers");
const FILE_STEM = "minilm-l6-shaped";

/** Weight tensors by (HuggingFace-like) name, in a fixed order. Matrices are [in, out] (y = x·W + b). */
export type BertWeights = Map<string, { dims: number[]; data: Float32Array }>;

/** Tensor names and shapes of a BERT checkpoint of this shape, pooler included. */
export function bertWeightShapes(shape: BertShape): Array<[string, number[]]> {
  const { vocabSize: V, hidden: H, layers, ffn: F, maxPositions: P, typeVocabSize: TV } = shape;
  const dense = (name: string, inDim: number, outDim: number): Array<[string, number[]]> => [
    [`${name}.weight`, [inDim, outDim]],
    [`${name}.bias`, [outDim]],
  ];
  const ln = (name: string): Array<[string, number[]]> => [
    [`${name}.gamma`, [H]],
    [`${name}.beta`, [H]],
  ];
  const shapes: Array<[string, number[]]> = [
    ["embeddings.word_embeddings", [V, H]],
    ["embeddings.position_embeddings", [P, H]],
    ["embeddings.token_type_embeddings", [TV, H]],
    ...ln("embeddings.LayerNorm"),
  ];
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}`;
    shapes.push(
      ...dense(`${p}.attention.self.query`, H, H),
      ...dense(`${p}.attention.self.key`, H, H),
      ...dense(`${p}.attention.self.value`, H, H),
      ...dense(`${p}.attention.output.dense`, H, H),
      ...ln(`${p}.attention.output.LayerNorm`),
      ...dense(`${p}.intermediate.dense`, H, F),
      ...dense(`${p}.output.dense`, F, H),
      ...ln(`${p}.output.LayerNorm`),
    );
  }
  shapes.push(...dense("pooler.dense", H, H));
  return shapes;
}

export interface ParameterCount {
  /** Every checkpoint tensor, pooler included (22,713,216 for all-MiniLM-L6-v2). */
  total: number;
  /** What the mean-pooled graph holds: total minus the unused pooler. */
  inGraph: number;
}

export function bertParameterCount(shape: BertShape): ParameterCount {
  const sizes = bertWeightShapes(shape).map(([name, dims]) => [name, dims.reduce((p, d) => p * d, 1)] as const);
  const total = sizes.reduce((sum, [, n]) => sum + n, 0);
  const pooler = sizes.filter(([name]) => name.startsWith("pooler.")).reduce((sum, [, n]) => sum + n, 0);
  return { total, inGraph: total - pooler };
}

/** Seeded BERT-style initial weights (drawn in tensor order from one mulberry32 stream). */
export function initBertWeights(shape: BertShape, seed = MINILM_SHAPED_SEED): BertWeights {
  if (shape.hidden % shape.heads !== 0) throw new Error(`hidden ${shape.hidden} is not divisible by heads ${shape.heads}`);
  const rand = createRng(seed);
  const weights: BertWeights = new Map();
  for (const [name, dims] of bertWeightShapes(shape)) {
    const data = new Float32Array(dims.reduce((p, d) => p * d, 1));
    if (dims.length === 2) fillNormal(data, INIT_STD, rand, false);
    else if (name.endsWith(".gamma")) data.fill(1);
    weights.set(name, { dims, data });
  }
  return weights;
}

function weight(weights: BertWeights, name: string): Float32Array {
  const w = weights.get(name);
  if (!w) throw new Error(`BERT weights have no tensor "${name}"`);
  return w.data;
}

/** y = x·W + b in the variant's arithmetic; quantised activations shared between layers reading the same input. */
class Dense {
  private readonly quantized = new Map<string, { q: string; scale: string; zeroPoint: string }>();

  constructor(
    private readonly g: GraphBuilder,
    private readonly variant: PeerVariant,
    private readonly weights: BertWeights,
  ) {}

  emit(x: string, name: string, inDim: number, outDim: number): string {
    const g = this.g;
    const b = g.initializerF32(`${name}.bias`, [outDim], weight(this.weights, `${name}.bias`));
    const w = weight(this.weights, `${name}.weight`);
    if (this.variant === "fp32") return g.op("Add", [g.op("MatMul", [x, g.initializerF32(`${name}.weight`, [inDim, outDim], w)]), b]);
    const { q, scale } = quantizePerColumn(w, inDim, outDim);
    const wq = g.initializer(`${name}.weight.int8`, DataType.INT8, [inDim, outDim], q);
    const ws = g.initializerF32(`${name}.weight.scale`, [outDim], scale);
    let act = this.quantized.get(x);
    if (!act) {
      const [aq, as, az] = g.node("DynamicQuantizeLinear", [x], {}, [`${x}_q`, `${x}_scale`, `${x}_zero_point`]) as [string, string, string];
      act = { q: aq, scale: as, zeroPoint: az };
      this.quantized.set(x, act);
    }
    const accF = g.op("Cast", [g.op("MatMulInteger", [act.q, wq, act.zeroPoint])], { to: attr.int(DataType.FLOAT) });
    return g.op("Add", [g.op("Mul", [accF, g.op("Mul", [act.scale, ws])]), b]);
  }
}

function layerNorm(g: GraphBuilder, x: string, weights: BertWeights, name: string, H: number): string {
  const gamma = g.initializerF32(`${name}.gamma`, [H], weight(weights, `${name}.gamma`));
  const beta = g.initializerF32(`${name}.beta`, [H], weight(weights, `${name}.beta`));
  return g.op("LayerNormalization", [x, gamma, beta], { axis: attr.int(-1), epsilon: attr.float(BERT_LAYER_NORM_EPS) });
}

/** gelu(z) = z·½·(1 + erf(z/√2)), in the node order torch.onnx.export writes it (what ORT's GeluFusion matches). */
function geluErf(g: GraphBuilder, z: string): string {
  const erf = g.op("Erf", [g.op("Div", [z, g.scalarF32("sqrt2", Math.SQRT2)])]);
  return g.op("Mul", [g.op("Mul", [z, g.op("Add", [erf, g.scalarF32("one", 1)])]), g.scalarF32("half", 0.5)]);
}

/**
 * The peer graph: input_ids int64 [batch,seq], attention_mask int64 [batch,seq] → embedding float32 [batch,hidden]
 * (masked mean of the last layer, not normalised; the runner L2-normalises as our encoder does).
 */
export function buildMinilmShapedGraph(shape: BertShape, weights: BertWeights, variant: PeerVariant): Uint8Array {
  const { vocabSize: V, hidden: H, heads, ffn: F, maxPositions: P, typeVocabSize: TV } = shape;
  const dh = H / heads;
  const g = new GraphBuilder(`minilm_shaped_${variant}`);
  const dense = new Dense(g, variant, weights);
  const ids = g.input(PEER_IO.inputIds, DataType.INT64, ["batch", "seq"]);
  const maskI64 = g.input(PEER_IO.attentionMask, DataType.INT64, ["batch", "seq"]);
  const mask = g.op("Cast", [maskI64], { to: attr.int(DataType.FLOAT) });

  let words: string;
  if (variant === "fp32") {
    const table = g.initializerF32("embeddings.word_embeddings", [V, H], weight(weights, "embeddings.word_embeddings"));
    words = g.op("Gather", [table, ids], { axis: attr.int(0) });
  } else {
    const { q, scale } = quantizePerRow(weight(weights, "embeddings.word_embeddings"), V, H);
    const table = g.initializer("embeddings.word_embeddings.int8", DataType.INT8, [V, H], q);
    const scales = g.initializerF32("embeddings.word_embeddings.scale", [V, 1], scale);
    const rows = g.op("Cast", [g.op("Gather", [table, ids], { axis: attr.int(0) })], { to: attr.int(DataType.FLOAT) });
    words = g.op("Mul", [rows, g.op("Gather", [scales, ids], { axis: attr.int(0) })]);
  }
  const positions = g.initializerF32("embeddings.position_embeddings", [P, H], weight(weights, "embeddings.position_embeddings"));
  const seqLen = g.op("Slice", [g.op("Shape", [ids]), g.constI64("one_i64", [1]), g.constI64("two_i64", [2])]);
  const pos = g.op("Slice", [positions, g.constI64("zero_i64", [0]), seqLen, g.constI64("axis0", [0])]);
  // token_type_ids are all zero for single-sentence inputs: row 0 of the type table, added to every position.
  const types = g.initializerF32("embeddings.token_type_embeddings", [TV, H], weight(weights, "embeddings.token_type_embeddings"));
  const type0 = g.op("Gather", [types, g.constI64("type_zero", [0], [])], { axis: attr.int(0) });
  let x = layerNorm(g, g.op("Add", [g.op("Add", [words, pos]), type0]), weights, "embeddings.LayerNorm", H);

  // Additive key-padding bias (1 − mask)·(−1e9), [B,1,1,T], computed once and shared by every layer.
  const padding = g.op("Sub", [g.scalarF32("one", 1), mask]);
  const bias = g.op("Unsqueeze", [g.op("Mul", [padding, g.scalarF32("mask_value", ATTENTION_MASK_VALUE)]), g.constI64("bias_axes", [1, 2])]);
  const headShape = g.constI64("head_shape", [0, 0, heads, dh]);
  const split = (t: string, perm: number[]): string => g.op("Transpose", [g.op("Reshape", [t, headShape])], { perm: attr.ints(perm) });

  for (let l = 0; l < shape.layers; l++) {
    const p = `encoder.layer.${l}`;
    const qh = split(dense.emit(x, `${p}.attention.self.query`, H, H), [0, 2, 1, 3]);
    const kt = split(dense.emit(x, `${p}.attention.self.key`, H, H), [0, 2, 3, 1]);
    const vh = split(dense.emit(x, `${p}.attention.self.value`, H, H), [0, 2, 1, 3]);
    const scores = g.op("Mul", [g.op("MatMul", [qh, kt]), g.scalarF32("attn_scale", 1 / Math.sqrt(dh))]);
    const probs = g.op("Softmax", [g.op("Add", [scores, bias])], { axis: attr.int(-1) });
    const perToken = g.op("Transpose", [g.op("MatMul", [probs, vh])], { perm: attr.ints([0, 2, 1, 3]) }); // [B,T,heads,dh]
    const ctx = g.op("Reshape", [perToken, g.constI64("merge_shape", [0, 0, H])]);
    const a = dense.emit(ctx, `${p}.attention.output.dense`, H, H);
    x = layerNorm(g, g.op("Add", [x, a]), weights, `${p}.attention.output.LayerNorm`, H);
    const f = geluErf(g, dense.emit(x, `${p}.intermediate.dense`, H, F));
    x = layerNorm(g, g.op("Add", [x, dense.emit(f, `${p}.output.dense`, F, H)]), weights, `${p}.output.LayerNorm`, H);
  }

  const axis1 = g.constI64("axis1", [1]);
  const summed = g.op("ReduceSum", [g.op("Mul", [x, g.op("Unsqueeze", [mask, g.constI64("mask_axes", [2])])]), axis1], { keepdims: attr.int(0) });
  const count = g.op("Max", [g.op("ReduceSum", [mask, axis1], { keepdims: attr.int(1) }), g.scalarF32("min_count", 1e-9)]);
  g.output(g.op("Div", [summed, count]), PEER_IO.embedding, DataType.FLOAT, ["batch", H]);
  return g.toModelBytes({
    opset: OPSET_VERSION,
    producerName: "taesr-bench",
    docString: `all-MiniLM-L6-v2-shaped speed peer (${variant}); random weights, timing only`,
  });
}

export interface MinilmShapedGraphs {
  paths: Record<PeerVariant, string>;
  bytes: Record<PeerVariant, number>;
  shape: BertShape;
  seed: number;
  parameters: ParameterCount;
  /** Cache key the graphs were built for (graph format, shape, seed, opset). */
  key: string;
}

interface Sidecar {
  key: string;
  parameters: ParameterCount;
  bytes: Record<PeerVariant, number>;
}

function cacheKey(shape: BertShape, seed: number): string {
  return `minilm-shaped/format${GRAPH_FORMAT}/opset${OPSET_VERSION}/seed${seed}/${JSON.stringify(shape)}`;
}

/**
 * Loads `bytes` in onnxruntime-node and embeds a padded two-row batch: the output must be [2, hidden], finite and
 * non-zero (unit-normalisable). Throws naming the variant otherwise.
 */
export async function smokeTestPeerGraph(bytes: Uint8Array, shape: BertShape, variant: PeerVariant): Promise<void> {
  const { vocabSize, hidden } = shape;
  const runner = await MinilmShapedRunner.create({ ort: ortNode, model: bytes, tokenizer: { encode: () => [] }, vocabSize, hidden });
  try {
    const id = (k: number) => (k * 7919 + 1) % shape.vocabSize;
    const raw = await runner.embedIds([[1, 2, 3, 4, 5].map(id), [6, 7, 8].map(id)]); // the second row padded
    raw.forEach((v, r) => {
      if (v.length !== shape.hidden) throw new Error(`row ${r} has ${v.length} dims, expected ${shape.hidden}`);
      if (!v.every(Number.isFinite)) throw new Error(`row ${r} is not finite`);
      const norm = Math.hypot(...v);
      if (!(Math.abs(norm - 1) < 1e-3)) throw new Error(`row ${r} could not be normalised (norm ${norm} after normalising)`);
    });
  } catch (error) {
    throw new Error(`the ${variant} MiniLM-shaped peer graph failed its smoke test: ${(error as Error).message}`);
  } finally {
    await runner.release();
  }
}

async function readSidecar(file: string): Promise<Sidecar | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Sidecar;
  } catch {
    return undefined;
  }
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}

/**
 * The all-MiniLM-L6-v2-shaped peer graphs (int8 and fp32) under `dir`, building, smoke-testing and caching them when
 * missing or stale. Returns their paths and the exact parameter count.
 */
export async function ensureMinilmShapedGraphs(
  options: { dir?: string; shape?: BertShape; seed?: number; log?: (message: string) => void } = {},
): Promise<MinilmShapedGraphs> {
  const dir = options.dir ?? peersOutDir;
  const shape = options.shape ?? MINILM_L6_SHAPE;
  const seed = options.seed ?? MINILM_SHAPED_SEED;
  const key = cacheKey(shape, seed);
  const parameters = bertParameterCount(shape);
  const paths = { int8: path.join(dir, `${FILE_STEM}.int8.onnx`), fp32: path.join(dir, `${FILE_STEM}.fp32.onnx`) };
  const sidecarPath = path.join(dir, `${FILE_STEM}.json`);

  const sidecar = await readSidecar(sidecarPath);
  if (sidecar?.key === key) {
    const sizes = { int8: await sizeOf(paths.int8), fp32: await sizeOf(paths.fp32) };
    if (PEER_VARIANTS.every((v) => sizes[v] === sidecar.bytes[v])) return { paths, bytes: sidecar.bytes, shape, seed, parameters, key };
  }

  options.log?.(`building the MiniLM-L6-shaped peer graphs (${parameters.total.toLocaleString("en")} parameters) in ${dir}…`);
  await mkdir(dir, { recursive: true });
  // The sidecar goes first, so a build interrupted half-way is never mistaken for a complete one.
  await rm(sidecarPath, { force: true });
  const weights = initBertWeights(shape, seed);
  const bytes = {} as Record<PeerVariant, number>;
  for (const variant of PEER_VARIANTS) {
    const model = buildMinilmShapedGraph(shape, weights, variant);
    await smokeTestPeerGraph(model, shape, variant);
    const temporary = `${paths[variant]}.${process.pid}.tmp`;
    await writeFile(temporary, model);
    await rename(temporary, paths[variant]);
    bytes[variant] = model.byteLength;
    options.log?.(`  ${path.basename(paths[variant])}: ${(model.byteLength / 1e6).toFixed(1)} MB`);
  }
  const written: Sidecar = { key, parameters, bytes };
  await writeFile(sidecarPath, `${JSON.stringify(written, null, 2)}\n`);
  return { paths, bytes, shape, seed, parameters, key };
}

/**
 * TAESRConfig and TAESRModel (src/model/taesr-config.ts, src/model/taesr-model.ts): config validation and JSON round
 * trips, the non-default blocks' construction, and parity of the hand-written forward pass with the fp32 ONNX
 * graphs run by onnxruntime-node — graphs exported from random weights by training's exporter, the committed random
 * fixture and the bundled trained model — at fixed depths, with the router and with early exit.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { defaultArtifactDir } from "../../bench/default-artifact.js";
import {
  GRAPH_IO,
  TAESRModel,
  TaesrConfigError,
  TaesrEncoder,
  architectureOf,
  maxCosineDistance,
  parseTaesrConfig,
  readFloat32,
  lengthRuleOf,
  routeByTokenCount,
  taesrConfigFromJSON,
  taesrConfigToJSON,
  type OrtSessionLike,
  type TAESRConfig,
  type TAESRConfigInput,
  type TAESRWeights,
} from "../../src/model/index.js";
import { WordPieceTokenizer } from "../../src/tokenizer/index.js";
import { buildEmbedGraph, buildStepGraph } from "../../training/src/onnx/taesr-graphs.js";
import { weightsFromArtifactGraphs } from "../../src/model/onnx-weights.js";
import { readArtifactDir, type ArtifactOnDisk } from "../../workers/origin/src/artifact-files.js";
import { initWeights } from "../../training/src/model/params.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

/** The parity tolerance: max |TAESRModel − onnxruntime| relative to the reference's largest magnitude (floor 1). */
const TOLERANCE = 1e-4;

function expectConfigError(raw: unknown, ...paths: string[]): TaesrConfigError {
  let caught: unknown;
  try {
    parseTaesrConfig(raw);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(TaesrConfigError);
  const error = caught as TaesrConfigError;
  for (const p of paths) expect(error.message).toContain(`→ at ${p}`);
  return error;
}

describe("TAESRConfig", () => {
  it("defaults to taesr-edge-small's shape, and architectureOf bridges to spec.ts", () => {
    const config = parseTaesrConfig({});
    expect(config).toMatchObject({
      block: "self_attention",
      subspaces: { semantic: [0, 192], temporal: [192, 256], procedural: [256, 320], contextual: [320, 384] },
      earlyExitEpsilon: 0.002,
      router: { easyMaxTokens: 8, mediumMaxTokens: 32 },
      training: { batchSize: 64, epochs: 1, lr: 0.0015 },
    });
    expect(architectureOf(config)).toEqual({
      vocabSize: 8192,
      hidden: 128,
      heads: 4,
      ffn: 256,
      maxLength: 128,
      outputDim: 384,
      matryoshkaDims: [64, 128, 256, 384],
      depths: { easy: 1, medium: 3, hard: 6 },
    });
  });

  it("rejects a bad block name, naming the field", () => {
    const error = expectConfigError({ block: "transformer" }, "block");
    expect(error.message).toMatch(/self_attention.*mlp_mixer.*hybrid/);
  });

  it("rejects heads that do not divide hidden", () => {
    expectConfigError({ hidden: 128, heads: 5 }, "heads");
  });

  it("rejects subspaces that do not cover the embedding, are not contiguous, or leave the narrow prefixes", () => {
    expectConfigError({ subspaces: { contextual: [320, 380] } }, "subspaces.contextual");
    expectConfigError({ subspaces: { temporal: [200, 256] } }, "subspaces.temporal");
    expectConfigError({ subspaces: { semantic: [0, 100], temporal: [100, 256] } }, "subspaces.semantic");
    expectConfigError({ subspaces: { semantic: [0, 192], temporal: [192, 192], procedural: [192, 320] } }, "subspaces.temporal");
  });

  it("lists every problem at once, nested paths and unknown keys included", () => {
    const error = expectConfigError({ heads: 3, training: { lr: -1 }, depths: { easy: 4 } }, "heads", "training.lr");
    expect(error.issues.length).toBeGreaterThanOrEqual(2);
    expectConfigError({ hidden: 128, heads: 3, matryoshkaDims: [64, 256, 128, 384] }, "heads", "matryoshkaDims");
    expect(() => parseTaesrConfig({ hiden: 64 })).toThrow(/hiden/);
    expectConfigError({ training: { epochs: 1.5 } }, "training.epochs");
  });

  it("round-trips through JSON, every field written out", () => {
    const config = parseTaesrConfig({
      block: "hybrid",
      vocabSize: 512,
      hidden: 48,
      heads: 3,
      ffn: 96,
      maxLength: 32,
      depths: { easy: 2, medium: 4, hard: 8 },
      subspaces: { semantic: [0, 160], temporal: [160, 256], procedural: [256, 300], contextual: [300, 384] },
      earlyExitEpsilon: 0.01,
      training: { batchSize: 16, epochs: 3, lr: 3e-4 },
    });
    const text = taesrConfigToJSON(config);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(Object.keys(config));
    expect(taesrConfigFromJSON(text)).toEqual(config);
    expect(taesrConfigFromJSON('{"hidden": 64, "heads": 2}')).toEqual(parseTaesrConfig({ hidden: 64, heads: 2 }));
    expect(() => taesrConfigFromJSON("{hidden: 64")).toThrow(/not JSON/);
    expect(() => taesrConfigFromJSON('{"block": "mixer"}')).toThrow(/→ at block/);
  });
});

describe("TAESRModel blocks", () => {
  it.each(["mlp_mixer", "hybrid"] as const)("builds %s and records the block in its architecture (test/unit/taesr-blocks.test.ts has its parity)", (block) => {
    const config = parseTaesrConfig({ block, vocabSize: 64, hidden: 16, heads: 2, ffn: 32, maxLength: 16 });
    expect(architectureOf(config)).toMatchObject({ block, maxLength: 16 });
    const model = new TAESRModel(config);
    expect(model.block).toBe(block);
    expect(model.weights["block.mix.w1"]).toHaveLength(16 * 16);
    expect("block.attn.wq" in model.weights).toBe(block === "hybrid");
  });
});

const SMALL: TAESRConfigInput = { vocabSize: 96, hidden: 32, heads: 4, ffn: 64, maxLength: 40, earlyExitEpsilon: 0.01 };

describe("TAESRModel weights", () => {
  it("initialises from a seed exactly as training's initWeights does", () => {
    const config = parseTaesrConfig(SMALL);
    const model = new TAESRModel(config, undefined, { seed: 7 });
    const reference = initWeights(architectureOf(config), 7);
    for (const [name, data] of Object.entries(reference)) expect(model.weights[name as keyof TAESRWeights]).toEqual(data);
    expect(new TAESRModel(config, undefined, { seed: 8 }).weights["block.attn.wq"]).not.toEqual(reference["block.attn.wq"]);
  });

  it("checks given weights against the config's shapes", () => {
    const config = parseTaesrConfig(SMALL);
    const weights = initWeights(architectureOf(config), 1);
    expect(() => new TAESRModel({ ...SMALL, hidden: 64 }, weights)).toThrow(/"embed.token" has 3072 values, expected \[96, 64\]/);
    const { "out.proj.b": _dropped, ...missing } = weights;
    expect(() => new TAESRModel(config, missing as TAESRWeights)).toThrow(/"out.proj.b" must be a Float32Array/);
    expect(() => new TAESRModel(config, { ...weights, extra: new Float32Array(1) } as TAESRWeights)).toThrow(/unknown weights: extra/);
  });

  it("validates its inputs", () => {
    const model = new TAESRModel(SMALL);
    expect(() => model.forward({ inputIds: [] })).toThrow(/non-empty/);
    expect(() => model.forward({ inputIds: [[1, 2], [3]] })).toThrow(/inputIds\[1\] has 1 ids, expected 2/);
    expect(() => model.forward({ inputIds: [[1, 96]] })).toThrow(/inputIds\[0\]\[1\] = 96/);
    expect(() => model.forward({ inputIds: [new Int32Array(41)] })).toThrow(/maxLength \(40\)/);
    expect(() => model.forward({ inputIds: [[1, 2]], attentionMask: [[1, 0.5]] })).toThrow(/must be 0 or 1/);
    expect(() => model.forward({ inputIds: [[1, 2]] }, { depth: 7 })).toThrow(/from 1 to 6/);
  });
});

/** onnxruntime-node sessions over a variant's fp32 graphs, run the way TaesrEncoder runs them, every step recorded. */
class OnnxReference {
  private constructor(
    private readonly embed: OrtSessionLike,
    private readonly step: OrtSessionLike,
    private readonly hidden: number,
  ) {}

  static async create(embedOnnx: Uint8Array, stepOnnx: Uint8Array, hidden: number): Promise<OnnxReference> {
    const [embed, step] = await Promise.all([ortNode.InferenceSession.create(embedOnnx), ortNode.InferenceSession.create(stepOnnx)]);
    return new OnnxReference(embed, step, hidden);
  }

  /** Per step t = 1…steps: the embeddings [B·D] and hidden states [B·T·H] of the whole batch. */
  async run(ids: number[][], mask: number[][], steps: number): Promise<{ embeddings: Float32Array[]; states: Float32Array[] }> {
    const B = ids.length;
    const T = ids[0]!.length;
    const H = this.hidden;
    const idTensor = new ortNode.Tensor("int64", BigInt64Array.from(ids.flat(), (id) => BigInt(id)), [B, T]);
    const embedded = await this.embed.run({ [GRAPH_IO.embed.inputs[0]]: idTensor });
    const x = embedded[GRAPH_IO.embed.outputs[0]]!;
    const maskTensor = new ortNode.Tensor("float32", Float32Array.from(mask.flat()), [B, T]);
    let h = new ortNode.Tensor("float32", new Float32Array(B * T * H), [B, T, H]);
    const embeddings: Float32Array[] = [];
    const states: Float32Array[] = [];
    for (let t = 0; t < steps; t++) {
      const out = await this.step.run({ h, x, attention_mask: maskTensor });
      h = out.h_next!;
      states.push(readFloat32(h, "h_next").slice());
      embeddings.push(readFloat32(out.embedding, "embedding").slice());
    }
    return { embeddings, states };
  }

  async release(): Promise<void> {
    await Promise.all([this.embed.release(), this.step.release()]);
  }
}

/** max |actual − expected| / max(1, max |expected|). */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return worst / scale;
}

function row(flat: Float32Array, index: number, width: number): Float32Array {
  return flat.subarray(index * width, (index + 1) * width);
}

/**
 * Holds model and graphs equal on one padded batch: at each of `fixedDepths` (embedding and hidden state of every
 * row, padding positions included), with the router, and with early exit (the depth each row stops at is the one the
 * graphs' own per-step embeddings give under the same test). Returns the worst relative error seen.
 */
async function checkParity(
  model: TAESRModel,
  reference: OnnxReference,
  ids: number[][],
  mask: number[][],
  fixedDepths: readonly number[],
): Promise<{ worst: number; earlyDepths: number[] }> {
  const { hidden: H, outputDim: D, depths, earlyExitEpsilon } = model.config;
  const T = ids[0]!.length;
  const { embeddings, states } = await reference.run(ids, mask, depths.hard);
  let worst = 0;
  for (const depth of fixedDepths) {
    const out = model.forward({ inputIds: ids, attentionMask: mask }, { depth, earlyExit: false });
    expect(out.depth).toEqual(ids.map(() => depth));
    ids.forEach((_, b) => {
      worst = Math.max(worst, relativeError(out.poolerOutput[b]!, row(embeddings[depth - 1]!, b, D)));
      worst = Math.max(worst, relativeError(out.lastHiddenState[b]!, row(states[depth - 1]!, b, T * H)));
    });
  }

  const routes = mask.map((m) => routeByTokenCount(m.reduce((s, v) => s + v, 0), { kind: "rule", ...model.config.router }));
  const auto = model.forward({ inputIds: ids, attentionMask: mask }, { depth: "auto", earlyExit: false });
  expect(auto.routed).toEqual(routes);
  expect(auto.depth).toEqual(routes.map((r) => depths[r]));
  ids.forEach((_, b) => {
    worst = Math.max(worst, relativeError(auto.poolerOutput[b]!, row(embeddings[auto.depth[b]! - 1]!, b, D)));
  });

  const early = model.forward({ inputIds: ids, attentionMask: mask }, { depth: depths.hard, earlyExit: true });
  ids.forEach((_, b) => {
    let expected = depths.hard;
    for (let t = 2; t <= depths.hard; t++) {
      if (maxCosineDistance(row(embeddings[t - 2]!, b, D), row(embeddings[t - 1]!, b, D), 1, D) < earlyExitEpsilon) {
        expected = t;
        break;
      }
    }
    expect(early.depth[b], `row ${b}`).toBe(expected);
    worst = Math.max(worst, relativeError(early.poolerOutput[b]!, row(embeddings[expected - 1]!, b, D)));
    worst = Math.max(worst, relativeError(early.lastHiddenState[b]!, row(states[expected - 1]!, b, T * H)));
  });
  expect(worst).toBeLessThanOrEqual(TOLERANCE);
  return { worst, earlyDepths: early.depth };
}

/** The early-exit comparison only means something if some rows stopped early and some ran to the end. */
function expectSomeEarlyExits(depths: number[], hard: number): void {
  expect(depths.some((d) => d < hard), `early-exit depths ${depths.join(", ")}`).toBe(true);
  expect(depths.some((d) => d === hard), `early-exit depths ${depths.join(", ")}`).toBe(true);
}

/**
 * An early-exit ε at which, on this batch, some rows stop before `hard` steps and some do not, taken from the graphs'
 * own per-step embeddings: ε sits in the widest gap (by ratio) between two of the cosine changes seen before the last
 * step that still splits the rows that way, so no change lies near ε and float32 rounding cannot move a row's exit.
 * Measured rather than hard-coded, so the test keeps its meaning when the bundled model is retrained.
 */
async function splittingEpsilon(reference: OnnxReference, ids: number[][], mask: number[][], hard: number, D: number): Promise<number> {
  const { embeddings } = await reference.run(ids, mask, hard);
  const changes = ids.map((_, b) => {
    const perStep: number[] = [];
    for (let t = 2; t < hard; t++) perStep.push(maxCosineDistance(row(embeddings[t - 2]!, b, D), row(embeddings[t - 1]!, b, D), 1, D));
    return perStep;
  });
  const smallest = changes.map((perStep) => Math.min(...perStep));
  const values = [...new Set(changes.flat())].filter(Number.isFinite).sort((x, y) => x - y);
  let best = { ratio: 1, epsilon: 0 };
  for (let i = 1; i < values.length; i++) {
    const epsilon = Math.sqrt(values[i]! * values[i - 1]!);
    const early = smallest.filter((m) => m < epsilon).length;
    const ratio = values[i]! / values[i - 1]!;
    if (early > 0 && early < ids.length && ratio > best.ratio) best = { ratio, epsilon };
  }
  expect(best.ratio, `per-row cosine changes ${JSON.stringify(changes)}`).toBeGreaterThan(1.05);
  return best.epsilon;
}

/** Right-pads rows of ids with `padId` to the longest row; mask 1 on ids, 0 on padding. */
function padBatch(rows: number[][], padId: number): { ids: number[][]; mask: number[][] } {
  const T = Math.max(1, ...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...r, ...new Array<number>(T - r.length).fill(padId)]),
    mask: rows.map((r) => [...r.map(() => 1), ...new Array<number>(T - r.length).fill(0)]),
  };
}

describe("TAESRModel = the fp32 ONNX graphs", () => {
  it("on graphs exported from random weights (training's exporter), every depth, router and early exit", async () => {
    const arch = architectureOf(parseTaesrConfig(SMALL));
    const weights = initWeights(arch, 11);
    const reference = await OnnxReference.create(buildEmbedGraph(arch, weights, "fp32"), buildStepGraph(arch, weights, "fp32"), arch.hidden);
    try {
      const lengths = [3, 12, 40, 1, 33];
      const rows = lengths.map((n, r) => Array.from({ length: n }, (_, i) => (r * 31 + i * 7 + 2) % arch.vocabSize));
      const { ids, mask } = padBatch(rows, 0);
      // A row of padding only: every key masked, so attention is uniform and the pooled mean divides by 1, as in the graphs.
      ids.push(ids[0]!.map(() => 0));
      mask.push(mask[0]!.map(() => 0));
      const epsilon = await splittingEpsilon(reference, ids, mask, arch.depths.hard, arch.outputDim);
      const config = parseTaesrConfig({ ...SMALL, earlyExitEpsilon: epsilon });
      const model = new TAESRModel(config, weights);
      const { worst, earlyDepths } = await checkParity(model, reference, ids, mask, [1, 2, 3, 4, 5, 6]);
      expect(worst).toBeLessThan(TOLERANCE);
      expectSomeEarlyExits(earlyDepths, config.depths.hard);
    } finally {
      await reference.release();
    }
  });
});

describe("slicing helpers", () => {
  const model = new TAESRModel(SMALL, undefined, { seed: 3 });
  const [a, b] = model.forward({ inputIds: [[5, 6, 7, 8], [9, 10, 11, 0]], attentionMask: [[1, 1, 1, 1], [1, 1, 1, 0]] }, { depth: 3 }).poolerOutput;

  it("matryoshkaSlice: a unit-length prefix of a trained width only", () => {
    for (const dims of [64, 128, 256, 384]) {
      const slice = model.matryoshkaSlice(a!, dims);
      expect(slice.length).toBe(dims);
      expect(Math.hypot(...slice)).toBeCloseTo(1, 5);
      const scale = slice[0]! / a![0]!;
      slice.forEach((v, i) => expect(v).toBeCloseTo(a![i]! * scale, 6));
    }
    expect(() => model.matryoshkaSlice(a!, 100)).toThrow(/dims must be one of 64, 128, 256, 384/);
    expect(() => model.matryoshkaSlice(a!.subarray(0, 128), 64)).toThrow(/expected outputDim \(384\)/);
  });

  it("subspaceSlice and subspaceShares: the four ranges, whose dot products sum to the total", () => {
    expect(model.subspaceSlice(a!, "semantic")).toEqual(a!.slice(0, 192));
    expect(model.subspaceSlice(a!, "temporal")).toEqual(a!.slice(192, 256));
    expect(model.subspaceSlice(a!, "contextual").length).toBe(64);
    const unitA = model.matryoshkaSlice(a!, 384);
    const unitB = model.matryoshkaSlice(b!, 384);
    const { total, shares } = model.subspaceShares(unitA, unitB);
    let cosine = 0;
    for (let i = 0; i < 384; i++) cosine += unitA[i]! * unitB[i]!;
    expect(total).toBeCloseTo(cosine, 10);
    expect(Object.keys(shares)).toEqual(["semantic", "temporal", "procedural", "contextual"]);
    expect(Object.values(shares).reduce((s, v) => s + v, 0)).toBeCloseTo(total, 10);
    let semantic = 0;
    for (let i = 0; i < 192; i++) semantic += unitA[i]! * unitB[i]!;
    expect(shares.semantic).toBeCloseTo(semantic, 10);
  });
});

/** A config for an artifact: its architecture and router, with the given early-exit ε. */
function configOfArtifact(artifact: ArtifactOnDisk, epsilon: number): TAESRConfig {
  const { architecture } = artifact.manifest;
  const router = lengthRuleOf(artifact.manifest.router);
  return parseTaesrConfig({
    ...architecture,
    earlyExitEpsilon: epsilon,
    router: { easyMaxTokens: router.easyMaxTokens, mediumMaxTokens: router.mediumMaxTokens },
  });
}

/** The artifacts whose fp32 graphs the model is held equal to. */
const ARTIFACTS = [
  { label: "the bundled trained model", dir: () => defaultArtifactDir() },
  { label: "the random fixture taesr-random@0.0.0-test", dir: async () => path.resolve(import.meta.dirname, "../fixtures/taesr-random@0.0.0-test") },
] as const;

async function demoTexts(): Promise<string[]> {
  const corpus = await readFile(path.resolve(import.meta.dirname, "../../workers/edge/dev/demo-corpus.jsonl"), "utf8");
  const docs = corpus
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { title: string; text: string });
  const medium = "recursion stops early when the embedding moves less than epsilon between two steps";
  return [docs[0]!.title, docs[1]!.title, "how fast is the edge model", medium, docs[0]!.text, docs[2]!.text, `${docs[3]!.text} ${docs[4]!.text}`];
}

describe.each(ARTIFACTS)("TAESRModel = the fp32 ONNX graphs of $label", ({ dir }) => {
  let artifact: ArtifactOnDisk;
  let weights: TAESRWeights;
  let reference: OnnxReference;
  let tokenizer: WordPieceTokenizer;
  let texts: string[];
  /** Short, medium and long texts (every route) as one padded batch. */
  let batch: { ids: number[][]; mask: number[][] };
  /** An ε at which some of the batch's rows exit early and some do not (the manifest's may trigger none). */
  let epsilon: number;

  beforeAll(async () => {
    artifact = await readArtifactDir(await dir(), ["fp32"]);
    const { embed, step, sparse, late } = artifact.manifest.variants.fp32;
    const [sparseGraph, lateGraph] = [sparse, late].map((file) => (file ? artifact.files[file] : undefined));
    weights = weightsFromArtifactGraphs(artifact.files[embed]!, artifact.files[step]!, artifact.manifest.architecture, sparseGraph, lateGraph);
    reference = await OnnxReference.create(artifact.files[embed]!, artifact.files[step]!, artifact.manifest.architecture.hidden);
    tokenizer = WordPieceTokenizer.fromJSON(artifact.tokenizerJson);
    texts = await demoTexts();
    const { architecture } = artifact.manifest;
    batch = padBatch(
      texts.map((text) => tokenizer.encode(text, { maxLength: architecture.maxLength })),
      tokenizer.padId,
    );
    epsilon = await splittingEpsilon(reference, batch.ids, batch.mask, architecture.depths.hard, architecture.outputDim);
    return () => reference.release();
  });

  it("at depths 1, 3 and 6, with the router, and with early exit", async () => {
    const config = configOfArtifact(artifact, epsilon);
    const model = new TAESRModel(config, weights);
    const { ids, mask } = batch;
    const routes = new Set(mask.map((m) => routeByTokenCount(m.reduce((s, v) => s + v, 0), { kind: "rule", ...config.router })));
    expect([...routes].sort()).toEqual(["easy", "hard", "medium"]);
    const { earlyDepths } = await checkParity(model, reference, ids, mask, [1, 3, 6]);
    expectSomeEarlyExits(earlyDepths, config.depths.hard);
  });

  it("agrees with TaesrEncoder text by text (router + early exit), at full width and as a 128-d Matryoshka prefix", async () => {
    const config = configOfArtifact(artifact, epsilon);
    const model = new TAESRModel(config, weights);
    // The encoder reads ε from the manifest; give it the same one (the graph files and their checksums are unchanged).
    const encoder = await TaesrEncoder.create({
      ort: ortNode,
      manifest: { ...artifact.manifest, earlyExitEpsilon: epsilon },
      files: artifact.files,
      variant: "fp32",
      tokenizer,
    });
    try {
      for (const text of texts) {
        const ids = tokenizer.encode(text, { maxLength: config.maxLength });
        const out = model.forward({ inputIds: [ids] }, { depth: "auto", earlyExit: true });
        for (const dims of [384, 128]) {
          const embedded = await encoder.embed([text], { dims, depth: "auto", earlyExit: true });
          expect(out.depth[0], text).toBe(embedded.depth);
          expect(out.routed[0]).toBe(embedded.route);
          expect(relativeError(model.matryoshkaSlice(out.poolerOutput[0]!, dims), embedded.embeddings[0]!)).toBeLessThan(TOLERANCE);
        }
      }
    } finally {
      await encoder.release();
    }
  });
});

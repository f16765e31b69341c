/**
 * The mlp_mixer and hybrid blocks (src/model/spec.ts) outside training: TAESRModel equals the fp32 ONNX graphs that
 * training's exporter builds (onnxruntime-node, every step, padded batch, hidden states included), the int8 graphs agree
 * with fp32, padding is invisible (the same text with more trailing padding embeds identically), the weights read back
 * from the graphs rebuild them byte for byte, the manifest keeps the block, and the FLOPs count has the mixer's terms.
 */
import { describe, expect, it } from "vitest";
import {
  GRAPH_IO,
  TAESRModel,
  architectureOf,
  maxCosineDistance,
  parseManifest,
  parseTaesrConfig,
  queryFlops,
  readFloat32,
  weightNames,
  weightsFromArtifactGraphs,
  type BlockArchitecture,
  type TAESRConfigInput,
  type TAESRWeights,
  type TaesrArchitecture,
} from "../../src/model/index.js";
import { initialWeights, mulberry32 } from "../../src/model/init.js";
import { buildEmbedGraph, buildStepGraph } from "../../training/src/onnx/taesr-graphs.js";
import { ortNode } from "../../workers/origin/src/ort-node.js";

const BLOCKS = ["mlp_mixer", "hybrid"] as const satisfies readonly BlockArchitecture[];
const STEPS = 6;

function configFor(block: BlockArchitecture): TAESRConfigInput {
  return { block, vocabSize: 96, hidden: 32, heads: 4, ffn: 64, maxLength: 24 };
}

/** Initial weights plus seeded noise on every tensor, so no LayerNorm is the identity and no bias is zero. */
function nontrivialWeights(arch: TaesrArchitecture, seed: number): TAESRWeights {
  const w = initialWeights(arch, seed);
  const rand = mulberry32(seed + 1000);
  for (const name of weightNames(arch)) {
    const amp = name.endsWith(".gamma") ? 0.3 : name.endsWith(".beta") || /\.b[a-z0-9]*$/.test(name) ? 0.1 : 0.05;
    const a = w[name];
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + amp * (rand() * 2 - 1);
  }
  return w;
}

/** Every step's embeddings [B·D] and states [B·T·H] from one variant's graphs, run as TaesrEncoder runs them. */
async function runGraphs(
  arch: TaesrArchitecture,
  weights: TAESRWeights,
  variant: "fp32" | "int8",
  ids: number[][],
  mask: number[][],
): Promise<{ embeddings: Float32Array[]; states: Float32Array[] }> {
  const [embed, step] = await Promise.all([
    ortNode.InferenceSession.create(buildEmbedGraph(arch, weights, variant)),
    ortNode.InferenceSession.create(buildStepGraph(arch, weights, variant)),
  ]);
  try {
    const B = ids.length;
    const T = ids[0]!.length;
    const idTensor = new ortNode.Tensor("int64", BigInt64Array.from(ids.flat(), (id) => BigInt(id)), [B, T]);
    const x = (await embed.run({ [GRAPH_IO.embed.inputs[0]]: idTensor }))[GRAPH_IO.embed.outputs[0]]!;
    const maskTensor = new ortNode.Tensor("float32", Float32Array.from(mask.flat()), [B, T]);
    let h = new ortNode.Tensor("float32", new Float32Array(B * T * arch.hidden), [B, T, arch.hidden]);
    const embeddings: Float32Array[] = [];
    const states: Float32Array[] = [];
    for (let t = 0; t < STEPS; t++) {
      const out = await step.run({ h, x, attention_mask: maskTensor });
      h = out.h_next!;
      states.push(readFloat32(h, "h_next").slice());
      embeddings.push(readFloat32(out.embedding, "embedding").slice());
    }
    return { embeddings, states };
  } finally {
    await Promise.all([embed.release(), step.release()]);
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

const row = (flat: Float32Array, index: number, width: number): Float32Array => flat.subarray(index * width, (index + 1) * width);
const cosine = (a: Float32Array, b: Float32Array): number => 1 - maxCosineDistance(a, b, 1, a.length);

/** Right-pads token rows to `length` (default: the longest) with id 0; mask 1 on tokens, 0 on padding. */
function padBatch(rows: number[][], length = Math.max(...rows.map((r) => r.length))): { ids: number[][]; mask: number[][] } {
  return {
    ids: rows.map((r) => [...r, ...new Array<number>(length - r.length).fill(0)]),
    mask: rows.map((r) => [...r.map(() => 1), ...new Array<number>(length - r.length).fill(0)]),
  };
}

function tokenRows(lengths: number[], vocabSize: number, seed: number): number[][] {
  const rand = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (vocabSize - 1))));
}

describe.each(BLOCKS)("%s block", (block) => {
  const config = parseTaesrConfig(configFor(block));
  const arch = architectureOf(config);
  const weights = nontrivialWeights(arch, 5);
  const model = new TAESRModel(config, weights);
  // Lengths from 1 to maxLength; the batch pads to 24, so every row but the longest has padding the mixer must ignore.
  const { ids, mask } = padBatch(tokenRows([24, 7, 1, 15], arch.vocabSize, 3));

  it("has its own weight list: embed, mixer, [attention,] FFN, output", () => {
    const names = weightNames(arch);
    expect(names.filter((n) => n.startsWith("block.mix."))).toHaveLength(6);
    expect(names.some((n) => n.startsWith("block.attn."))).toBe(block === "hybrid");
    expect(Object.keys(model.weights).sort()).toEqual([...names].sort());
  });

  it("TAESRModel equals the fp32 graphs at every step 1…6 (embeddings and hidden states, padded batch)", async () => {
    const { embeddings, states } = await runGraphs(arch, weights, "fp32", ids, mask);
    let worst = 0;
    for (let depth = 1; depth <= STEPS; depth++) {
      const out = model.forward({ inputIds: ids, attentionMask: mask }, { depth, earlyExit: false });
      ids.forEach((r, b) => {
        worst = Math.max(worst, relativeError(out.poolerOutput[b]!, row(embeddings[depth - 1]!, b, arch.outputDim)));
        worst = Math.max(worst, relativeError(out.lastHiddenState[b]!, row(states[depth - 1]!, b, r.length * arch.hidden)));
      });
    }
    console.log(`${block}: max relative |TAESRModel − ONNX fp32| over 6 steps = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it("runs every sequence length up to maxLength from one graph (the mixer weights are sliced to T)", async () => {
    for (const length of [1, 5, arch.maxLength]) {
      const batch = padBatch(tokenRows([length], arch.vocabSize, length));
      const { embeddings } = await runGraphs(arch, weights, "fp32", batch.ids, batch.mask);
      const out = model.forward({ inputIds: batch.ids }, { depth: STEPS, earlyExit: false });
      expect(relativeError(out.poolerOutput[0]!, embeddings[STEPS - 1]!)).toBeLessThanOrEqual(1e-5);
    }
    expect(() => model.forward({ inputIds: [new Array<number>(arch.maxLength + 1).fill(1)] })).toThrow(/maxLength \(24\)/);
  });

  it("int8 graphs agree with fp32: per-row cosine ≥ 0.99 at every step", async () => {
    const [fp32, int8] = await Promise.all([runGraphs(arch, weights, "fp32", ids, mask), runGraphs(arch, weights, "int8", ids, mask)]);
    const cosines = fp32.embeddings.map((e, s) => ids.map((_, b) => cosine(row(e, b, arch.outputDim), row(int8.embeddings[s]!, b, arch.outputDim))));
    console.log(`${block}: int8 vs fp32 min row cosine per step ${cosines.map((c) => Math.min(...c).toFixed(5)).join(", ")}`);
    for (const c of cosines.flat()) expect(c).toBeGreaterThanOrEqual(0.99);
  });

  it("ignores padding: a text embeds the same alone, padded to 10, and padded to maxLength (model and graphs)", async () => {
    const text = tokenRows([6], arch.vocabSize, 9)[0]!;
    const alone = model.forward({ inputIds: [text] }, { depth: STEPS, earlyExit: false }).poolerOutput[0]!;
    for (const length of [10, arch.maxLength]) {
      const padded = padBatch([text], length);
      const out = model.forward({ inputIds: padded.ids, attentionMask: padded.mask }, { depth: STEPS, earlyExit: false }).poolerOutput[0]!;
      expect(relativeError(out, alone)).toBeLessThanOrEqual(1e-6);
      const graphs = await runGraphs(arch, weights, "fp32", padded.ids, padded.mask);
      expect(relativeError(graphs.embeddings[STEPS - 1]!, alone)).toBeLessThanOrEqual(1e-5);
    }
    // Different padding contents (other ids, as a batch neighbour's tokens would be) change nothing either.
    const noisy = padBatch([text], 12);
    noisy.ids[0] = noisy.ids[0]!.map((id, t) => (t < text.length ? id : 1 + ((t * 13) % (arch.vocabSize - 1))));
    const out = model.forward({ inputIds: noisy.ids, attentionMask: noisy.mask }, { depth: STEPS, earlyExit: false }).poolerOutput[0]!;
    expect(relativeError(out, alone)).toBeLessThanOrEqual(1e-6);
  });

  it("reads its weights back from the fp32 graphs, which the exporter rebuilds byte for byte", () => {
    const embed = buildEmbedGraph(arch, weights, "fp32");
    const step = buildStepGraph(arch, weights, "fp32");
    const back = weightsFromArtifactGraphs(embed, step, arch);
    expect(Object.keys(back)).toEqual([...weightNames(arch)]);
    for (const name of weightNames(arch)) expect(back[name], name).toEqual(weights[name]);
    expect(Buffer.from(buildStepGraph(arch, back, "fp32")).equals(Buffer.from(step))).toBe(true);
    // Read as another block, the graphs fail: weights that block does not have, or a weight they lack.
    const { block: _block, ...selfAttention } = arch;
    expect(() => weightsFromArtifactGraphs(embed, step, selfAttention)).toThrow(/weights of another block \(block\.mix\.ln\.gamma, /);
    const other: TaesrArchitecture = { ...arch, block: block === "hybrid" ? "mlp_mixer" : "hybrid" };
    expect(() => weightsFromArtifactGraphs(embed, step, other)).toThrow(
      block === "hybrid" ? /weights of another block \(block\.ln1\.gamma, / : /weight block\.ln1\.gamma is missing/,
    );
  });

  it("counts the token mixer's FLOPs (and attention's only in hybrid)", () => {
    const { hidden: H, maxLength: L } = arch;
    const { block: _block, ...selfAttention } = arch;
    const T = 10;
    const mixer = queryFlops(arch, T, 1).perStep;
    const attention = queryFlops(selfAttention, T, 1).perStep;
    const mixerTerms = 7 * T * H + T * H + 2 * H * T * L + H * L + 9 * H * L + 2 * H * L * T + T * H;
    const attentionTerms = 7 * T * H + 4 * (2 * T * H * H + T * H) + 4 * T * T * H + 7 * arch.heads * T * T;
    if (block === "mlp_mixer") expect(mixer).toBe(attention - attentionTerms + mixerTerms);
    else expect(mixer).toBe(attention + mixerTerms + 2 * T * H);
  });
});

describe("manifest", () => {
  const base = {
    format: "taesr-artifact/1",
    name: "m",
    version: "0.0.1",
    createdAt: "2026-01-01T00:00:00.000Z",
    files: { "a.onnx": { sha256: "0".repeat(64), bytes: 1 } },
    tokenizer: "a.onnx",
    variants: { fp32: { embed: "a.onnx", step: "a.onnx" }, int8: { embed: "a.onnx", step: "a.onnx" } },
    parameters: 1,
    router: { kind: "rule", easyMaxTokens: 8, mediumMaxTokens: 32 },
    earlyExitEpsilon: 0.002,
    training: {},
    eval: {},
  };
  const architecture = { vocabSize: 8, hidden: 8, heads: 2, ffn: 8, maxLength: 8, outputDim: 8, matryoshkaDims: [8], depths: { easy: 1, medium: 1, hard: 1 } };

  it("keeps the block when given, and leaves it absent (self-attention) when not", () => {
    expect(parseManifest({ ...base, architecture: { ...architecture, block: "hybrid" } }).architecture.block).toBe("hybrid");
    expect("block" in parseManifest({ ...base, architecture }).architecture).toBe(false);
    expect(() => parseManifest({ ...base, architecture: { ...architecture, block: "mixer" } })).toThrow(/architecture\.block/);
  });
});

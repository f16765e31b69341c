/**
 * Fixed-depth documents (training.documentSteps): documents supervised only at the depth the index embeds them at
 * (the loss itself: loss.test.ts). The micro-batch gradients are those of that loss with the late head reading the documents' deepest document step, validation embeds
 * the documents once at that depth, and the config refuses steps the model cannot run.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { weightNamesIn, type WeightName } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import type { EncodedBatch, TokenMatrix } from "../src/data/batches.js";
import type { TextPair } from "../src/data/pairs.js";
import { encode } from "../src/model/forward.js";
import { initParams, mulberry32, type TaesrParams } from "../src/model/params.js";
import { parseConfig } from "../src/train/config.js";
import { lateLoss } from "../src/train/late-loss.js";
import { contrastiveLoss, type ContrastiveLossOptions } from "../src/train/loss.js";
import { microBatchGradients } from "../src/train/micro-batch.js";
import { validate } from "../src/train/validate.js";
import { microArchitecture } from "./support/architectures.js";
import { randomTokenMatrix } from "./support/random.js";
import { wordTokenizer } from "./support/toy-text.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const value = (t: tf.Scalar) => t.dataSync()[0]!;

// depths 1/3/6 as the runs train them; a 4-d late head, so its document-side pairing is part of the gradients.
const SMALL = microArchitecture({ vocabSize: 60, heads: 4, maxLength: 12, matryoshkaDims: [64, 384], depths: { easy: 1, medium: 3, hard: 6 }, lateHead: { dim: 4 } });

beforeAll(async () => {
  await initBackend("wasm");
});

describe("microBatchGradients with documentSteps", () => {
  let params: TaesrParams;
  const batch: EncodedBatch = { queries: randomTokenMatrix(1, 4, 6, SMALL.vocabSize), docs: randomTokenMatrix(2, 4, 12, SMALL.vocabSize) };
  const lossOptions: ContrastiveLossOptions = { temperature: 0.05, symmetric: true, dims: SMALL.matryoshkaDims, steps: [1, 3, 6], stepWeights: [1, 1, 1], documentSteps: [1] };
  const late = { weight: 0.5, temperature: 0.1, steps: [6] };

  beforeAll(() => {
    params = initParams(SMALL, 5);
  });
  afterAll(() => Object.values(params).forEach((v) => v.dispose()));

  const tensors = (m: TokenMatrix) => [tf.tensor2d(m.ids, [m.rows, m.length], "int32"), tf.tensor2d(m.mask, [m.rows, m.length], "float32")] as const;

  it("are the gradients of the dense loss on 1-step documents plus the late loss against the documents' step-1 tokens", () => {
    const names = weightNamesIn(params);
    const want = tf.variableGrads(() => {
      const [qIds, qMask] = tensors(batch.queries);
      const [dIds, dMask] = tensors(batch.docs);
      const q = encode(params, qIds, qMask, 6);
      const d = encode(params, dIds, dMask, 1);
      const dense = contrastiveLoss(q.embeddings, d.embeddings, lossOptions).total;
      return tf.add(dense, tf.mul(lateLoss(params, q.states[5]!, qMask, d.states[0]!, dMask, late.temperature), late.weight)) as tf.Scalar;
    }, names.map((n) => params[n]));
    const got = microBatchGradients(params, lossOptions, [batch], { late });
    expect(got.losses[0]).toBeCloseTo(value(want.value), 5);
    const maxAbs = (x: ArrayLike<number>) => Math.max(...Array.from(x, Math.abs));
    // Each weight against its own scale, floored at a thousandth of the largest: the key bias's gradient is zero up to
    // rounding (a constant added to every key's logit leaves the softmax unchanged), and the micro-batch runs the
    // documents in length groups, which rounds differently from one padded matrix.
    const floor = 1e-3 * Math.max(...names.map((n) => maxAbs(want.grads[params[n].name]!.dataSync())));
    for (const n of names) {
      const a = got.gradSums[n as WeightName].dataSync();
      const b = want.grads[params[n].name]!.dataSync();
      let diff = 0;
      for (let i = 0; i < b.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
      expect(diff / Math.max(maxAbs(b), floor), n).toBeLessThanOrEqual(1e-5);
    }
    // The late head and the shared block are trained (a head left without gradient would be a silent no-op).
    expect(got.gradSums["late.proj.w" as WeightName].dataSync().some((g) => g !== 0)).toBe(true);
    expect(got.gradSums["block.ffn.w1" as WeightName].dataSync().some((g) => g !== 0)).toBe(true);
    Object.values(got.gradSums).forEach((g) => g.dispose());
    Object.values(want.grads).forEach((g) => g.dispose());
    want.value.dispose();
  });

  it("differ from the run that supervises documents at the query steps", () => {
    const fixed = microBatchGradients(params, lossOptions, [batch]);
    const { documentSteps: _, ...perStepDocs } = lossOptions;
    const both = microBatchGradients(params, { ...perStepDocs, crossSteps: true }, [batch]);
    expect(Math.abs(fixed.losses[0]! - both.losses[0]!)).toBeGreaterThan(1e-4);
    [fixed, both].forEach((r) => Object.values(r.gradSums).forEach((g) => g.dispose()));
  });
});

describe("validation with a fixed document depth", () => {
  let params: TaesrParams;
  // Word-per-token toy tokenizer over the small vocabulary.
  const tokenizer = wordTokenizer(SMALL.vocabSize);
  const rand = mulberry32(9);
  const word = () => "abcdefghij".slice(0, 1 + Math.floor(rand() * 9)) + String.fromCharCode(97 + Math.floor(rand() * 26));
  const pairs: TextPair[] = Array.from({ length: 24 }, (_, i) => ({
    query: Array.from({ length: 4 }, word).join(" "),
    doc: Array.from({ length: 10 }, word).join(" ") + ` d${i}`,
    source: "debian",
    kind: "title->text",
  }));
  const opts = { depths: [1, 3, 6], dim: 64, maxQueryLength: 6, maxDocLength: 12 };

  beforeAll(() => {
    params = initParams(SMALL, 7);
  });
  afterAll(() => Object.values(params).forEach((v) => v.dispose()));

  it("ranks every query depth against documents at that one depth, and says so", () => {
    const fixed = validate(params, pairs, tokenizer, { ...opts, documentDepth: 1 });
    const both = validate(params, pairs, tokenizer, opts);
    expect(fixed.documentDepth).toBe(1);
    expect(both.documentDepth).toBeUndefined();
    // Depth 1 is the same comparison either way; deeper queries now meet 1-step documents.
    expect(fixed.byDepth["1"]).toEqual(both.byDepth["1"]);
    const deeperDiffer = ["3", "6"].some((k) => fixed.byDepth[k]!.mrr !== both.byDepth[k]!.mrr);
    expect(deeperDiffer).toBe(true);
    // The late head keeps its query depth and reads the documents at the fixed one.
    expect(fixed.late?.depth).toBe(6);
    expect(fixed.late?.mrr).not.toBe(both.late?.mrr);
  });
});

describe("config", () => {
  it("refuses a document step beyond the model's depth, and a repeated one", async () => {
    const raw = JSON.parse(await readFile(path.join(here, "../configs/tiny.json"), "utf8")) as Record<string, any>;
    expect(parseConfig({ ...raw, training: { ...raw["training"], documentSteps: [1] } }).training.documentSteps).toEqual([1]);
    expect(() => parseConfig({ ...raw, training: { ...raw["training"], documentSteps: [7] } })).toThrow(/step 7 exceeds arch\.depths\.hard/);
    expect(() => parseConfig({ ...raw, training: { ...raw["training"], documentSteps: [1, 1] } })).toThrow(/lists a step twice/);
    expect(parseConfig(raw).training.documentSteps).toBeUndefined();
  });
});

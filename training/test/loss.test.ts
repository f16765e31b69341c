/**
 * The deep-supervised contrastive loss: same-step pairs by default, with `crossSteps` every (query step, document
 * step) pair, weighted by the product of the step weights, and with `documentSteps` each query step against the
 * documents' fixed steps — checked against the per-pair InfoNCE computed directly.
 */
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../src/backend.js";
import { mulberry32 } from "../src/model/params.js";
import { contrastiveLoss, matryoshkaInfoNce, type ContrastiveLossOptions } from "../src/train/loss.js";

function randomMatrix(seed: number, rows: number, cols: number): tf.Tensor2D {
  const rand = mulberry32(seed);
  return tf.tensor2d(Array.from({ length: rows * cols }, () => rand() * 2 - 1), [rows, cols]);
}

const value = (t: tf.Scalar) => t.dataSync()[0]!;

beforeAll(async () => {
  await initBackend("wasm");
});

describe("contrastiveLoss", () => {
  // Three recursion steps of a batch of 4, embeddings of width 8; steps 1 and 3 supervised with weights 1 and 3.
  let qSteps: tf.Tensor2D[];
  let dSteps: tf.Tensor2D[];
  beforeAll(() => {
    qSteps = [1, 2, 3].map((s) => randomMatrix(10 + s, 4, 8));
    dSteps = [1, 2, 3].map((s) => randomMatrix(20 + s, 4, 8));
  });
  const base: ContrastiveLossOptions = { temperature: 0.1, symmetric: true, dims: [4, 8], steps: [1, 3], stepWeights: [1, 3] };
  const pair = (qs: number, ds: number) => value(matryoshkaInfoNce(qSteps[qs - 1]!, dSteps[ds - 1]!, base));

  it("by default supervises each step against the same step, weights normalised to sum 1", () => {
    const { total, perStep } = contrastiveLoss(qSteps, dSteps, base);
    expect(perStep.map(value)).toEqual([pair(1, 1), pair(3, 3)].map((v) => expect.closeTo(v, 6)));
    expect(value(total)).toBeCloseTo((1 * pair(1, 1) + 3 * pair(3, 3)) / 4, 6);
  });

  it("with crossSteps adds every mixed pair, weighted by the product of the two steps' weights", () => {
    const { total, perStep } = contrastiveLoss(qSteps, dSteps, { ...base, crossSteps: true });
    // perStep still reports the same-step losses, so logs stay comparable across settings.
    expect(perStep.map(value)).toEqual([pair(1, 1), pair(3, 3)].map((v) => expect.closeTo(v, 6)));
    const expected = (1 * pair(1, 1) + 3 * pair(1, 3) + 3 * pair(3, 1) + 9 * pair(3, 3)) / 16;
    expect(value(total)).toBeCloseTo(expected, 6);
    expect(Math.abs(value(total) - value(contrastiveLoss(qSteps, dSteps, base).total))).toBeGreaterThan(1e-4);
  });

  it("names the missing step when the forward pass returned fewer steps than the loss wants", () => {
    expect(() => contrastiveLoss(qSteps.slice(0, 2), dSteps, base)).toThrow(/query recursion step 3 .* 2 steps/);
  });

  describe("with documentSteps (documents supervised only where the index embeds them)", () => {
    it("pairs every query step with the one document step, by the query steps' weights, and needs no deeper documents", () => {
      // Only step 1 of the documents is handed over: the caller encodes them no deeper.
      const { total, perStep } = contrastiveLoss(qSteps, dSteps.slice(0, 1), { ...base, documentSteps: [1] });
      expect(perStep.map(value)).toEqual([pair(1, 1), pair(3, 1)].map((v) => expect.closeTo(v, 6)));
      expect(value(total)).toBeCloseTo((1 * pair(1, 1) + 3 * pair(3, 1)) / 4, 6);
      // Neither the same-step loss nor the cross-step one.
      expect(Math.abs(value(total) - value(contrastiveLoss(qSteps, dSteps, base).total))).toBeGreaterThan(1e-4);
      expect(Math.abs(value(total) - value(contrastiveLoss(qSteps, dSteps, { ...base, crossSteps: true }).total))).toBeGreaterThan(1e-4);
    });

    it("averages a query step's loss over several document steps", () => {
      const { total, perStep } = contrastiveLoss(qSteps, dSteps, { ...base, documentSteps: [1, 2] });
      const q1 = (pair(1, 1) + pair(1, 2)) / 2;
      const q3 = (pair(3, 1) + pair(3, 2)) / 2;
      expect(perStep.map(value)).toEqual([q1, q3].map((v) => expect.closeTo(v, 6)));
      expect(value(total)).toBeCloseTo((q1 + 3 * q3) / 4, 6);
    });

    it("names the document step the forward pass did not compute", () => {
      expect(() => contrastiveLoss(qSteps, dSteps.slice(0, 1), { ...base, documentSteps: [2] })).toThrow(/document recursion step 2 .* 1 steps/);
    });
  });
});

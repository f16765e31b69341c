/**
 * The late head as the dense embedding's teacher (train/distill-loss.ts, `training.objectives.late.distill`) on the
 * wasm backend: the teacher distribution and the KL against hand computations, the teacher as a constant (no gradient
 * reaches the head through it), the loss's gradient through the encoder against finite differences, the config
 * contract, and a tiny run in which the dense student moves towards the teacher.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import type { WeightName } from "../../src/model/spec.js";
import { initBackend } from "../src/backend.js";
import { encode } from "../src/model/forward.js";
import { initWeights, paramsFromWeights, type TaesrWeights } from "../src/model/params.js";
import { parseConfig } from "../src/train/config.js";
import { distillLoss, klFromTeacher, teacherDistribution, type Teacher } from "../src/train/distill-loss.js";
import { lateObjectiveOf, lateScores } from "../src/train/late-loss.js";
import { train } from "../src/train/trainer.js";
import { microArchitecture } from "./support/architectures.js";
import { expectGradientsMatch } from "./support/finite-differences.js";
import { randomArray } from "./support/random.js";
import { TINY_CONFIG, writeTinyConfig } from "./support/tiny-config.js";
import { QUIET_RUN, useTempDir } from "./support/tiny-run.js";

const ARCH = microArchitecture({ lateHead: { dim: 6 } });

function weights(seed: number): TaesrWeights {
  const w = initWeights(ARCH, seed);
  w["out.ln.gamma"] = Float32Array.from(randomArray(seed + 2, ARCH.hidden, 0.5), (v) => 1 + v);
  w["out.ln.beta"] = randomArray(seed + 3, ARCH.hidden, 0.2);
  return w;
}

const softmax = (row: number[]): number[] => {
  const max = Math.max(...row);
  const e = row.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / sum);
};

beforeAll(async () => {
  await initBackend("wasm");
});

describe("distillation loss: values", () => {
  it("the teacher is softmax(MaxSim / τ) per row, with its entropy", () => {
    const maxSim = tf.tensor2d([[2.4, 1.2, -0.6], [0.5, 1.5, 1.0]]);
    const teacher = teacherDistribution(maxSim, 0.5);
    const expected = [softmax([4.8, 2.4, -1.2]), softmax([1, 3, 2])];
    const got = teacher.probabilities.arraySync();
    got.forEach((row, r) => row.forEach((p, c) => expect(p).toBeCloseTo(expected[r]![c]!, 6)));
    expect(teacher.entropy).toBeCloseTo(-expected.flat().reduce((a, p) => a + p * Math.log(p), 0), 5);
    expect(() => teacherDistribution(maxSim, 0)).toThrow(/temperature must be > 0/);
  });

  it("the lexical teacher adds α · (σ_late / σ_bm25) · BM25 to each row's logits; a row without any BM25 match keeps the head's", () => {
    const maxSim = tf.tensor2d([[2.4, 1.2, -0.6], [0.5, 1.5, 1.0]]);
    const bm25 = Float32Array.from([0, 2, 10, 0, 0, 0]);
    const teacher = teacherDistribution(maxSim, 0.5, { scores: bm25, weight: 0.5 });
    const std = (row: number[]) => {
      const mean = row.reduce((a, v) => a + v, 0) / row.length;
      return Math.sqrt(row.reduce((a, v) => a + (v - mean) ** 2, 0) / row.length);
    };
    const late = [4.8, 2.4, -1.2];
    const scale = (0.5 * std(late)) / std([0, 2, 10]);
    const expected = [softmax(late.map((v, c) => v + scale * bm25[c]!)), softmax([1, 3, 2])];
    teacher.probabilities.arraySync().forEach((row, r) => row.forEach((p, c) => expect(p).toBeCloseTo(expected[r]![c]!, 6)));
    // BM25 moves mass to the lexically matching third document (its late logit is the lowest of the row).
    expect(teacher.probabilities.arraySync()[0]![2]!).toBeGreaterThan(softmax(late)[2]!);
    expect(() => teacherDistribution(maxSim, 0.5, { scores: Float32Array.from([1, 2, 3]), weight: 1 })).toThrow(/3 lexical scores for a \[2, 3\] MaxSim matrix/);
  });

  it("KL(teacher ‖ student) matches the hand value, is 0 when the student agrees up to a row constant, and its gradient is softmax − p", () => {
    const p = [softmax([1, 0, -1]), softmax([0.2, 0.9, 0.1])];
    const teacher: Teacher = { probabilities: tf.tensor2d(p), entropy: -p.flat().reduce((a, v) => a + v * Math.log(v), 0) };
    const logits = [[0.3, 0.1, 0.5], [1.2, -0.4, 0.0]];
    const s = logits.map(softmax);
    const kl = p.map((row, r) => row.reduce((a, v, c) => a + v * Math.log(v / s[r]![c]!), 0));
    const student = tf.variable(tf.tensor2d(logits));
    const { value, grads } = tf.variableGrads(() => klFromTeacher(teacher, student), [student]);
    expect(value.dataSync()[0]!).toBeCloseTo((kl[0]! + kl[1]!) / 2, 5);
    const g = grads[student.name]!.arraySync() as number[][];
    g.forEach((row, r) => row.forEach((v, c) => expect(v).toBeCloseTo((s[r]![c]! - p[r]![c]!) / 2, 5)));
    const agreeing = tf.tensor2d(p.map((row, r) => row.map((v) => Math.log(v) + r * 3)));
    expect(klFromTeacher(teacher, agreeing).dataSync()[0]!).toBeCloseTo(0, 5);
    expect(() => klFromTeacher(teacher, tf.zeros([2, 4]) as tf.Tensor2D)).toThrow(/rank different documents/);
  });

  it("through the encoder: no gradient reaches the head through the teacher, and the encoder's matches finite differences", () => {
    const params = paramsFromWeights(ARCH, weights(11));
    const qIds = tf.tensor2d([[3, 7, 9, 0], [4, 2, 0, 0]], [2, 4], "int32");
    const qMask = tf.tensor2d([[1, 1, 1, 0], [1, 1, 0, 0]]);
    // Three documents: the positives, then a hard negative every query is scored against.
    const dIds = tf.tensor2d([[3, 8, 9, 1, 5], [4, 6, 0, 0, 0], [2, 7, 11, 0, 0]], [3, 5], "int32");
    const dMask = tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]);
    const teacherOf = (q: { states: tf.Tensor3D[] }, d: { states: tf.Tensor3D[] }) => teacherDistribution(lateScores(params, q.states[1]!, qMask, d.states[0]!, dMask), 0.5);
    const student = (q: { embeddings: tf.Tensor2D[] }, d: { embeddings: tf.Tensor2D[] }, teacher: Teacher) =>
      distillLoss(teacher, [1, 2].map((k) => ({ q: q.embeddings[k - 1]!, d: d.embeddings[0]! })), { dims: [4, ARCH.outputDim], temperature: 0.1 });
    // As the trainer computes it: the teacher from the same forward pass, inside the tape.
    const asTrained = (): tf.Scalar => {
      const q = encode(params, qIds, qMask, 2);
      const d = encode(params, dIds, dMask, 1);
      return student(q, d, teacherOf(q, d));
    };
    const checked: WeightName[] = ["late.proj.w", "block.ffn.w2", "embed.token", "out.proj.w"];
    const { value, grads } = tf.variableGrads(asTrained, checked.map((n) => params[n]));
    expect(value.dataSync()[0]!).toBeGreaterThan(0);
    // The head only feeds the teacher, a constant: it gets no gradient from this loss.
    const head = grads[params["late.proj.w"].name];
    expect(head === undefined || head === null || Array.from(head.dataSync()).every((v) => v === 0)).toBe(true);
    const analytic = Object.fromEntries(checked.filter((n) => n !== "late.proj.w").map((n) => [n, grads[params[n].name]!.dataSync()])) as Record<WeightName, Float32Array>;
    expect(Array.from(analytic["out.proj.w"]).some((v) => v !== 0)).toBe(true);
    // Finite differences of the student alone: the teacher held at the unperturbed weights' distribution, as the
    // analytic gradient treats it.
    let fixedTeacher!: Teacher;
    tf.tidy(() => {
      fixedTeacher = teacherOf(encode(params, qIds, qMask, 2), encode(params, dIds, dMask, 1));
      tf.keep(fixedTeacher.probabilities);
    });
    const lossAt = () => tf.tidy(() => student(encode(params, qIds, qMask, 2), encode(params, dIds, dMask, 1), fixedTeacher).dataSync()[0]!);
    const probes: [WeightName, number][] = [
      ["out.proj.w", 5],
      ["out.proj.w", 3 * ARCH.outputDim + 1],
      ["block.ffn.w2", 17],
      ["embed.token", 7 * ARCH.hidden + 2],
      ["embed.token", 11 * ARCH.hidden + 5], // a token only the hard negative has
    ];
    expectGradientsMatch(params, probes, lossAt, analytic, 1e-3);
    for (const x of Object.values(params)) x.dispose();
  });
});

describe("distillation in the config and the trainer", () => {
  const tmp = useTempDir("taesr-distill-");

  it("config: late.distill takes a weight and an optional temperature (default: the late objective's τ); refused with trainHeadsOnly", async () => {
    const raw = JSON.parse(await readFile(TINY_CONFIG, "utf8")) as Record<string, any>;
    const withHead = { ...raw, arch: { ...raw["arch"], lateHead: { dim: 16 } } };
    const late = { weight: 0.5, distill: { weight: 1 } };
    const parsed = parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late } } });
    expect(lateObjectiveOf(parsed.training.objectives?.late, parsed.training.lossSteps)).toEqual({
      weight: 0.5,
      temperature: 0.1,
      steps: [Math.max(...parsed.training.lossSteps)],
      distill: { weight: 1, temperature: 0.1 },
    });
    const ownTau = parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, temperature: 0.3 } } } });
    expect(lateObjectiveOf(ownTau.training.objectives?.late, ownTau.training.lossSteps)?.distill).toEqual({ weight: 1, temperature: 0.3 });
    const explicit = parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, distill: { weight: 2, temperature: 0.2 } } } } });
    expect(lateObjectiveOf(explicit.training.objectives?.late, explicit.training.lossSteps)?.distill).toEqual({ weight: 2, temperature: 0.2 });
    const withBm25 = parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, distill: { weight: 1, bm25: 0.5 } } } } });
    expect(lateObjectiveOf(withBm25.training.objectives?.late, withBm25.training.lossSteps)?.distill).toEqual({ weight: 1, temperature: 0.1, bm25: 0.5 });
    expect(() => parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, distill: { weight: 1, bm25: 0 } } } } })).toThrow(/bm25/);
    expect(() => parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, distill: { weight: 0 } } } } })).toThrow(/distill/);
    expect(() => parseConfig({ ...withHead, training: { ...raw["training"], objectives: { late: { ...late, distill: { weight: 1, tau: 1 } } } } })).toThrow(/tau/);
    expect(() =>
      parseConfig({ ...withHead, initFrom: "x.taesr", training: { ...raw["training"], trainHeadsOnly: true, objectives: { late } } }),
    ).toThrow(/distillation teaches the encoder's dense embedding, which trainHeadsOnly keeps fixed/);
  });

  it("a tiny run logs the distillation KL, and the dense student moves towards the late teacher", async () => {
    const config = await writeTinyConfig(tmp(), "distil", {
      arch: { lateHead: { dim: 16 } },
      training: { lossSteps: [1], batchSize: 16, steps: 40, logEvery: 10, checkpointEvery: 1000, objectives: { late: { weight: 1, distill: { weight: 1 } } } },
    });
    const result = await train({ config, runDir: path.join(tmp(), "distil"), ...QUIET_RUN });
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.training.objective).toMatch(/learns the late head's in-batch MaxSim ranking/);
    const metrics = (await readFile(path.join(tmp(), "distil", "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    const objectives = metrics.filter((m) => m.type === "train").map((m) => m.lossByObjective as Record<string, number>);
    expect(objectives).toHaveLength(4);
    expect(Object.keys(objectives[0]!).sort()).toEqual(["dense", "distill", "late"]);
    const kl = objectives.map((o) => o["distill"]!);
    console.log(`distillation KL over 40 updates: ${kl.map((v) => v.toFixed(3)).join(" → ")}`);
    expect(kl.every((v) => v >= 0)).toBe(true);
    expect(kl[kl.length - 1]!).toBeLessThan(kl[0]!);
  });

  it("with the lexical teacher, a tiny run scores its batches by BM25, logs the KL and names both teachers in the manifest", async () => {
    const config = await writeTinyConfig(tmp(), "distil-bm25", {
      arch: { lateHead: { dim: 16 } },
      training: { lossSteps: [1], batchSize: 16, steps: 20, logEvery: 10, checkpointEvery: 1000, objectives: { late: { weight: 1, distill: { weight: 1, bm25: 1 } } } },
    });
    const lines: string[] = [];
    const result = await train({ config, runDir: path.join(tmp(), "distil-bm25"), ...QUIET_RUN, log: (line: string) => lines.push(line) });
    expect(lines.some((l) => /distillation teacher: BM25 over \d+ training documents/.test(l))).toBe(true);
    const manifest = JSON.parse(await readFile(path.join(result.exportDir!, "manifest.json"), "utf8"));
    expect(manifest.training.objective).toMatch(/late head's in-batch MaxSim ranking fused with BM25 over the training documents \(α 1\)/);
    const metrics = (await readFile(path.join(tmp(), "distil-bm25", "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l));
    const kl = metrics.filter((m) => m.type === "train").map((m) => (m.lossByObjective as Record<string, number>)["distill"]!);
    expect(kl).toHaveLength(2);
    expect(kl.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
  });
});

/**
 * Gradient caching (GradCache; Gao, Zhang, Han & Callan 2021): a contrastive micro-batch far larger than fits in
 * memory with gradients, with the same loss and the same gradients as one pass over it.
 *
 * Why: every query of a micro-batch is ranked against all of its documents, so the in-batch negatives — the signal
 * the dense embedding learns from — grow with the micro-batch, but so does the memory of its backward pass. On the
 * wasm backend (a 4 GiB heap) the adapt preset's micro-batch of 64 pairs with documents of 256 word pieces fits and
 * 96 does not (the run aborts); gradient accumulation does not help, since accumulated micro-batches never see each
 * other's documents. The loss depends on the encoder only through a few small outputs per row — the dense embeddings
 * at the supervised steps and the late head's token vectors — so:
 *
 *   1. representations: encode the rows chunk by chunk with no gradient tape and keep only those outputs;
 *   2. loss: compute the whole micro-batch's loss (dense InfoNCE, late MaxSim InfoNCE, its distillation into the dense
 *      embedding) from the outputs alone, and its gradient with respect to each output — the cache;
 *   3. backward: encode each chunk again with the tape and back-propagate Σ output · cached gradient into the weights.
 *
 * The chain rule makes 3's gradient sum the gradient of 2's loss; the price is one more forward pass of the encoder,
 * and peak memory is one chunk's backward plus the outputs (for 256 pairs with hard negatives: 512 × 256 × 32 late
 * token floats, 16 MB). Chunks are cut from the rows in length order and are the same in 1 and 3, so 3 recomputes
 * exactly what 1 cached. The subspace objective does not compare rows with each other; it runs as it does without the
 * cache, on the probe sample, in one pass of its own. The sparse objective and trainHeadsOnly are not covered
 * (config.ts refuses them with `gradientCache`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { weightNamesIn, type WeightName } from "../../../src/model/spec.js";
import type { EncodedBatch, TokenMatrix } from "../data/batches.js";
import { lateTokenVectors, maxSimScores } from "../model/late-head.js";
import type { TaesrParams } from "../model/params.js";
import { labelRows } from "../data/subspace-labels.js";
import { lateObjectiveTerms } from "./late-loss.js";
import { encodeInLengthGroups, shortestFirst } from "./length-groups.js";
import { contrastiveLoss, type ContrastiveLossOptions } from "./loss.js";
import { addInto, documentStepOf, type MicroBatchOptions, type MicroBatchResult } from "./micro-batch.js";
import { probeNames, subspaceLoss, type ProbeName } from "./subspace-loss.js";

/** `training.gradientCache` (config.ts): rows encoded with gradients at a time. */
export interface GradientCacheOptions {
  rows: number;
}

/** A chunk of a matrix's rows: which rows (in the chunk's order) and their tokens at the matrix's full length. */
interface Chunk {
  rows: number[];
  matrix: TokenMatrix;
}

/** Rows `rows` of `m`, in that order, at m's full length (so token outputs line up with the whole matrix's masks). */
function selectRows(m: TokenMatrix, rows: readonly number[]): TokenMatrix {
  const ids = new Int32Array(rows.length * m.length);
  const mask = new Float32Array(rows.length * m.length);
  let tokens = 0;
  rows.forEach((from, r) => {
    ids.set(m.ids.subarray(from * m.length, (from + 1) * m.length), r * m.length);
    const rowMask = m.mask.subarray(from * m.length, (from + 1) * m.length);
    mask.set(rowMask, r * m.length);
    for (const v of rowMask) tokens += v;
  });
  return { ids, mask, rows: rows.length, length: m.length, tokens };
}

/** The matrix cut into chunks of at most `size` rows, shortest rows first (so a chunk's rows pad alike). */
function chunksOf(m: TokenMatrix, size: number): Chunk[] {
  const order = shortestFirst(m);
  const chunks: Chunk[] = [];
  for (let start = 0; start < order.length; start += size) {
    const rows = order.slice(start, start + size);
    chunks.push({ rows, matrix: selectRows(m, rows) });
  }
  return chunks;
}

/** What one side's loss reads of the encoder: dense embeddings and late token vectors at the listed 1-based steps. */
interface SideOutputs {
  dense: number[];
  late: number[];
}

/** One side's outputs [rows, …] at each listed step, in the matrix's own row order. */
interface SideValues {
  dense: Map<number, tf.Tensor2D>;
  late: Map<number, tf.Tensor3D>;
}

/** The chunk's outputs at each listed step (computed inside the caller's tidy or tape). */
function encodeOutputs(params: TaesrParams, chunk: Chunk, deepest: number, wanted: SideOutputs, checkpoint: boolean): { values: SideValues; paddedPositions: number } {
  const encoded = encodeInLengthGroups(params, chunk.matrix, deepest, { checkpoint });
  const values: SideValues = { dense: new Map(), late: new Map() };
  for (const k of wanted.dense) values.dense.set(k, encoded.embeddings[k - 1]!);
  for (const k of wanted.late) values.late.set(k, lateTokenVectors(params, encoded.states[k - 1]!));
  return { values, paddedPositions: encoded.paddedPositions };
}

/**
 * Phase 1 for one side: every chunk forward without a tape; the outputs gathered back into the matrix's row order.
 * The caller owns the returned tensors.
 */
function representations(params: TaesrParams, chunks: readonly Chunk[], rows: number, deepest: number, wanted: SideOutputs): { values: SideValues; paddedPositions: number } {
  let paddedPositions = 0;
  const perChunk = chunks.map((chunk) =>
    tf.tidy(() => {
      const out = encodeOutputs(params, chunk, deepest, wanted, false);
      paddedPositions += out.paddedPositions;
      return flatten(out.values, wanted);
    }),
  );
  // back[r]: where row r of the matrix sits in the chunks' concatenation.
  const back = new Int32Array(rows);
  chunks.flatMap((c) => c.rows).forEach((from, i) => (back[from] = i));
  const values = tf.tidy(() => {
    const indices = tf.tensor1d(back, "int32");
    return perChunk[0]!.map((_, i) => tf.gather(perChunk.length === 1 ? perChunk[0]![i]! : tf.concat(perChunk.map((t) => t[i]!), 0), indices));
  });
  for (const t of perChunk.flat()) t.dispose();
  return { values: unflatten(values, wanted), paddedPositions };
}

/** Tensors of a side in a fixed order (dense steps, then late steps): the leaves phase 2 differentiates. */
function flatten(v: SideValues, wanted: SideOutputs): tf.Tensor[] {
  return [...wanted.dense.map((k) => v.dense.get(k)!), ...wanted.late.map((k) => v.late.get(k)!)];
}

function unflatten(xs: readonly tf.Tensor[], wanted: SideOutputs): SideValues {
  const v: SideValues = { dense: new Map(), late: new Map() };
  wanted.dense.forEach((k, i) => v.dense.set(k, xs[i] as tf.Tensor2D));
  wanted.late.forEach((k, i) => v.late.set(k, xs[wanted.dense.length + i] as tf.Tensor3D));
  return v;
}

/** Σ over a chunk's outputs of output · (the cached gradient's rows of this chunk): the surrogate phase 3 differentiates. */
function surrogate(values: SideValues, cached: SideValues, rows: tf.Tensor1D): tf.Scalar {
  const terms: tf.Scalar[] = [];
  for (const [k, e] of values.dense) terms.push(tf.sum(tf.mul(e, tf.gather(cached.dense.get(k)!, rows))));
  for (const [k, v] of values.late) terms.push(tf.sum(tf.mul(v, tf.gather(cached.late.get(k)!, rows))));
  return (terms.length === 1 ? terms[0]! : tf.addN(terms)) as tf.Scalar;
}

/**
 * microBatchGradients (micro-batch.ts) with the gradient cache: the same result — losses, per-step losses, objectives,
 * gradient sums (none for a weight no objective reaches) — computed in chunks of `cache.rows` rows.
 */
export function cachedMicroBatchGradients(
  params: TaesrParams,
  lossOptions: ContrastiveLossOptions,
  batches: readonly EncodedBatch[],
  options: MicroBatchOptions,
  cache: GradientCacheOptions,
): MicroBatchResult {
  if (!(Number.isInteger(cache.rows) && cache.rows >= 1)) throw new Error(`gradientCache.rows must be a positive integer, got ${cache.rows}`);
  if (options.sparse) throw new Error("the gradient cache does not cover the sparse objective (its loss reads [rows, vocabulary] term weights)");
  if (options.headsOnly) throw new Error("the gradient cache does not cover trainHeadsOnly (its encoder runs without gradients anyway)");
  const maxStep = Math.max(...lossOptions.steps);
  const docStep = documentStepOf(lossOptions);
  const late = options.late;
  for (const k of late?.steps ?? []) {
    if (!Number.isInteger(k) || k < 1 || k > maxStep) throw new Error(`late objective: step ${k} is not a computed step (1…${maxStep})`);
  }
  const queryWants: SideOutputs = { dense: [...lossOptions.steps], late: [...(late?.steps ?? [])] };
  const docDenseSteps = [...new Set(lossOptions.documentSteps ?? lossOptions.steps)];
  const docWants: SideOutputs = { dense: docDenseSteps, late: [...new Set((late?.steps ?? []).map(docStep.paired))] };
  const names = weightNamesIn(params);
  const variables = names.map((n) => params[n]);
  const byVarName = new Map<string, WeightName>(names.map((n) => [params[n].name, n]));
  const probes = options.subspaces?.probes;
  const auxByVarName = new Map<string, ProbeName>(probes ? probeNames().map((n) => [probes[n].name, n]) : []);
  let gradSums: Record<WeightName, tf.Tensor> | undefined;
  let auxGradSums: Record<ProbeName, tf.Tensor> | undefined;
  const losses: number[] = [];
  const perStep: number[][] = [];
  const objectives: Record<string, number>[] = [];
  let tokens = 0;
  let paddedTokens = 0;

  /** Adds a tape's gradients to the sums, model weights and probes apart. */
  const addGrads = (grads: tf.NamedTensorMap) => {
    const named: Partial<Record<WeightName, tf.Tensor>> = {};
    const aux: Partial<Record<ProbeName, tf.Tensor>> = {};
    for (const [varName, g] of Object.entries(grads)) {
      const probe = auxByVarName.get(varName);
      if (probe) aux[probe] = g;
      else {
        const name = byVarName.get(varName);
        if (!name) throw new Error(`gradient for unknown variable ${varName}`);
        named[name] = g;
      }
    }
    gradSums = addInto(gradSums, named);
    auxGradSums = addInto(auxGradSums, aux);
  };

  for (const batch of batches) {
    const qChunks = chunksOf(batch.queries, cache.rows);
    const dChunks = chunksOf(batch.docs, cache.rows);
    const q = representations(params, qChunks, batch.queries.rows, maxStep, queryWants);
    const d = representations(params, dChunks, batch.docs.rows, docStep.deepest, docWants);
    // Positions of one pass, as microBatchGradients counts them (phase 3 runs the same positions again).
    paddedTokens += q.paddedPositions + d.paddedPositions;
    const qMask = tf.tensor2d(batch.queries.mask, [batch.queries.rows, batch.queries.length], "float32");
    const dMask = tf.tensor2d(batch.docs.mask, [batch.docs.rows, batch.docs.length], "float32");
    const qLeaves = flatten(q.values, queryWants);
    const dLeaves = flatten(d.values, docWants);
    let kept: Record<string, tf.Tensor> = {};
    let stepLosses: tf.Scalar[] = [];
    // Phase 2: the loss from the outputs alone, and its gradient with respect to each of them.
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => {
      const qv = unflatten(xs.slice(0, qLeaves.length), queryWants);
      const dv = unflatten(xs.slice(qLeaves.length), docWants);
      const qSteps: tf.Tensor2D[] = [];
      const dSteps: tf.Tensor2D[] = [];
      for (const [k, e] of qv.dense) qSteps[k - 1] = e;
      for (const [k, e] of dv.dense) dSteps[k - 1] = e;
      const dense = contrastiveLoss(qSteps, dSteps, lossOptions);
      stepLosses = dense.perStep.map((l) => tf.keep(l));
      let total: tf.Scalar = dense.total;
      const record: Record<string, tf.Tensor> = { dense: dense.total };
      if (late) {
        const scoresPerStep = late.steps.map((k) => maxSimScores(qv.late.get(k)!, qMask, dv.late.get(docStep.paired(k))!, dMask));
        const pairs = lossOptions.steps.map((k) => ({ q: qSteps[k - 1]!, d: dSteps[docStep.paired(k) - 1]! }));
        const terms = lateObjectiveTerms(scoresPerStep, late, pairs, lossOptions, batch.lexical);
        record.late = terms.late;
        if (terms.distill) record.distill = terms.distill;
        total = tf.add(total, terms.total) as tf.Scalar;
      }
      kept = Object.fromEntries(Object.entries(record).map(([k, t]) => [k, tf.keep(t)]));
      return total;
    })([...qLeaves, ...dLeaves]);
    let loss = value.dataSync()[0] as number;
    // Read before disposing: with no other objective the dense total is the returned value itself.
    const record: Record<string, number> = Object.fromEntries(Object.entries(kept).map(([k, t]) => [k, t.dataSync()[0] as number]));
    for (const t of new Set([value, ...Object.values(kept)])) t.dispose();
    for (const t of [...qLeaves, ...dLeaves, qMask, dMask]) t.dispose();
    const cachedQ = unflatten(grads.slice(0, qLeaves.length), queryWants);
    const cachedD = unflatten(grads.slice(qLeaves.length), docWants);
    // Phase 3: each chunk again, with the tape, back-propagating its rows of the cached gradients.
    const sides = [
      { chunks: qChunks, deepest: maxStep, wanted: queryWants, cached: cachedQ },
      { chunks: dChunks, deepest: docStep.deepest, wanted: docWants, cached: cachedD },
    ];
    for (const side of sides) {
      for (const chunk of side.chunks) {
        const rows = tf.tensor1d(chunk.rows, "int32");
        const { value: s, grads: g } = tf.variableGrads(
          () => surrogate(encodeOutputs(params, chunk, side.deepest, side.wanted, options.checkpoint ?? false).values, side.cached, rows),
          variables,
        );
        s.dispose();
        rows.dispose();
        addGrads(g);
      }
    }
    for (const g of grads) g.dispose();
    tokens += batch.queries.tokens + batch.docs.tokens;
    // The subspace objective ranks nothing against anything: its own pass, as micro-batch.ts computes it.
    if (options.subspaces) {
      const sample = batch.probe;
      if (!sample) throw new Error("the subspace objectives need each batch's probe sample (PairBatcher options.probeRows)");
      const sub = options.subspaces;
      let parts: Record<string, tf.Tensor> = {};
      let probePositions = 0;
      const { value: subValue, grads: subGrads } = tf.variableGrads(() => {
        const probe = encodeInLengthGroups(params, sample.matrix, Math.max(...sub.loss.steps), { checkpoint: options.checkpoint ?? false });
        probePositions = probe.paddedPositions;
        const out = subspaceLoss(sub.probes, probe.embeddings, labelRows(sample.rows), sub.loss);
        parts = Object.fromEntries(Object.entries({ subspaces: out.total, ...out.perSubspace }).map(([k, t]) => [k, tf.keep(t)]));
        return out.total;
      }, [...variables, ...probeNames().map((n) => sub.probes[n])]);
      loss += subValue.dataSync()[0] as number;
      for (const [k, t] of Object.entries(parts)) record[k] = t.dataSync()[0] as number;
      // parts.subspaces is the returned value itself.
      for (const t of new Set([subValue, ...Object.values(parts)])) t.dispose();
      addGrads(subGrads);
      tokens += sample.matrix.tokens;
      paddedTokens += probePositions;
    }
    losses.push(loss);
    perStep.push(stepLosses.map((l) => l.dataSync()[0] as number));
    for (const l of stepLosses) l.dispose();
    if (late || options.subspaces) objectives.push(record);
  }
  return {
    gradSums: gradSums!,
    losses,
    perStep,
    tokens,
    paddedTokens,
    objectives,
    ...(probes ? { auxGradSums: auxGradSums! } : {}),
  };
}

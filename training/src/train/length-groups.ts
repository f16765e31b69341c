/**
 * Encoding a padded token matrix in length groups: consecutive rows cut into groups, each run padded only to its own
 * longest row, so short rows beside long ones stop paying for the long ones' padding — in every recursion step and in
 * the backward pass. The states are padded back to the matrix's length with zeros, so the result has the shape of one
 * encode of the whole matrix and, up to float rounding, its values at every token; at the padding, which every reader
 * of states masks (pooling, the late and sparse heads), the values differ.
 *
 * Where it pays: the rows the training runs with gradients through all 6 steps — the queries (each batch is cut by
 * document length, so its queries range from 3 pieces to the query cap) and the subspace probes' sample (glosses
 * beside full-length abstracts) — and long documents, whose attention grows with the square of the padded length.
 * The rows are cut shortest first; the batcher already orders the queries and the probe sample that way
 * (data/batches.ts), and any other order (the documents follow their queries) is sorted here and gathered back.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { TokenMatrix } from "../data/batches.js";
import { encode, type EncodeOptions, type EncodeResult } from "../model/forward.js";
import type { TaesrParams } from "../model/params.js";

/**
 * What one more forward call over a group costs, in padded positions: per-op dispatch of a 6-step forward and its
 * backward, the same whatever the group's size. {@link lengthGroups} only opens a group when the padding it saves is
 * worth more.
 */
export const GROUP_COST_POSITIONS = 64;

/**
 * Sizes of the consecutive groups that rows of these token `lengths` are best cut into when each group is padded to its
 * own longest row, minimising Σ (rows × longest row) + groupCost per group: an exact dynamic programme over the cut
 * points (O(n²), n = rows). Any order is valid; rows sorted by length are where cutting saves the most.
 */
export function lengthGroups(lengths: readonly number[], groupCost: number = GROUP_COST_POSITIONS): number[] {
  const n = lengths.length;
  // best[j]: least cost of the first j rows; cut[j]: where their last group starts.
  const best = new Float64Array(n + 1);
  const cut = new Int32Array(n + 1);
  for (let j = 1; j <= n; j++) {
    best[j] = Infinity;
    let longest = 1;
    for (let i = j - 1; i >= 0; i--) {
      longest = Math.max(longest, lengths[i] as number);
      const cost = (best[i] as number) + (j - i) * longest + groupCost;
      if (cost < (best[j] as number)) {
        best[j] = cost;
        cut[j] = i;
      }
    }
  }
  const sizes: number[] = [];
  for (let j = n; j > 0; j = cut[j] as number) sizes.unshift(j - (cut[j] as number));
  return sizes;
}

/** Tokens in each row of a padded matrix (its mask's ones). */
export function rowLengths(m: TokenMatrix): number[] {
  return Array.from({ length: m.rows }, (_, r) => {
    let n = 0;
    for (let c = 0; c < m.length; c++) n += m.mask[r * m.length + c] as number;
    return n;
  });
}

/** Rows [start, start + size) of `m`, cut to `length` columns (their longest row). */
function rowsOf(m: TokenMatrix, start: number, size: number, length: number): TokenMatrix {
  const ids = new Int32Array(size * length);
  const mask = new Float32Array(size * length);
  let tokens = 0;
  for (let r = 0; r < size; r++) {
    const from = (start + r) * m.length;
    ids.set(m.ids.subarray(from, from + length), r * length);
    mask.set(m.mask.subarray(from, from + length), r * length);
    for (let c = 0; c < length; c++) tokens += m.mask[from + c] as number;
  }
  return { ids, mask, rows: size, length, tokens };
}

/** Row order shortest first (stable: rows of equal length keep their order). */
export function shortestFirst(m: TokenMatrix): number[] {
  const lengths = rowLengths(m);
  return lengths.map((_, r) => r).sort((a, b) => (lengths[a] as number) - (lengths[b] as number));
}

/** The matrix with its rows in `order` (row r of the result is row order[r] of `m`). */
export function permuteRows(m: TokenMatrix, order: readonly number[]): TokenMatrix {
  const ids = new Int32Array(m.ids.length);
  const mask = new Float32Array(m.mask.length);
  order.forEach((from, r) => {
    ids.set(m.ids.subarray(from * m.length, (from + 1) * m.length), r * m.length);
    mask.set(m.mask.subarray(from * m.length, (from + 1) * m.length), r * m.length);
  });
  return { ...m, ids, mask };
}

/** The groups a matrix is encoded in: consecutive row ranges, each with its own padded length. */
export function groupsOf(m: TokenMatrix, groupCost: number = GROUP_COST_POSITIONS): TokenMatrix[] {
  const lengths = rowLengths(m);
  const groups: TokenMatrix[] = [];
  let start = 0;
  for (const size of lengthGroups(lengths, groupCost)) {
    const length = Math.max(1, ...lengths.slice(start, start + size));
    groups.push(rowsOf(m, start, size, length));
    start += size;
  }
  return groups;
}

/**
 * encode (model/forward.ts) of a padded matrix, run group by group ({@link groupsOf}) over its rows shortest first: the
 * embeddings of every step [rows, D] and the states [rows, m.length, H], the rows in the matrix's own order (rows out of
 * length order are put back by a gather, whose gradient is a scatter). Also the positions it computed on.
 */
export function encodeInLengthGroups(
  params: TaesrParams,
  m: TokenMatrix,
  steps: number,
  options: EncodeOptions = {},
  groupCost: number = GROUP_COST_POSITIONS,
): EncodeResult & { paddedPositions: number } {
  const order = shortestFirst(m);
  if (order.every((from, r) => from === r)) return encodeSorted(params, m, steps, options, groupCost);
  const sorted = encodeSorted(params, permuteRows(m, order), steps, options, groupCost);
  // back[r]: where row r of the matrix sits in the sorted one.
  const back = new Int32Array(order.length);
  order.forEach((from, r) => (back[from] = r));
  const indices = tf.tensor1d(back, "int32");
  return {
    embeddings: sorted.embeddings.map((e) => tf.gather(e, indices)),
    states: sorted.states.map((h) => tf.gather(h, indices)),
    paddedPositions: sorted.paddedPositions,
  };
}

/** {@link encodeInLengthGroups} of a matrix whose rows are already in the order they are cut in. */
function encodeSorted(params: TaesrParams, m: TokenMatrix, steps: number, options: EncodeOptions, groupCost: number): EncodeResult & { paddedPositions: number } {
  const groups = groupsOf(m, groupCost);
  const paddedPositions = groups.reduce((sum, g) => sum + g.rows * g.length, 0);
  const tensors = (g: TokenMatrix) => [tf.tensor2d(g.ids, [g.rows, g.length], "int32"), tf.tensor2d(g.mask, [g.rows, g.length], "float32")] as const;
  if (groups.length === 1 && groups[0]!.length === m.length) return { ...encode(params, ...tensors(m), steps, undefined, options), paddedPositions };
  const perGroup = groups.map((g) => ({ length: g.length, ...encode(params, ...tensors(g), steps, undefined, options) }));
  const embeddings: tf.Tensor2D[] = [];
  const states: tf.Tensor3D[] = [];
  for (let k = 0; k < steps; k++) {
    embeddings.push(perGroup.length === 1 ? perGroup[0]!.embeddings[k]! : tf.concat(perGroup.map((g) => g.embeddings[k]!), 0));
    const padded = perGroup.map((g) => (g.length === m.length ? g.states[k]! : tf.pad(g.states[k]!, [[0, 0], [0, m.length - g.length], [0, 0]])));
    states.push(padded.length === 1 ? padded[0]! : tf.concat(padded, 0));
  }
  return { embeddings, states, paddedPositions };
}

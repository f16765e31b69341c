/**
 * Seeded random test inputs (mulberry32, so a seed gives the same numbers on every run and machine): float arrays for
 * states, weights and gradients' weightings, and token-id sequences for padded batches.
 *
 * @example
 *   const h = randomArray(11, B * T * ARCH.hidden, 2);
 *   const batch = padBatch(randomSequences(7, [17, 9, 3, 12], ARCH.vocabSize));
 */
import type { TokenMatrix } from "../../src/data/batches.js";
import { mulberry32 } from "../../src/model/params.js";

/** `n` values uniform in [−scale, scale). */
export function randomArray(seed: number, n: number, scale = 1): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

/** One token-id sequence per length, ids uniform in 1..vocabSize−1 (0 is padding). */
export function randomSequences(seed: number, lengths: number[], vocabSize: number): number[][] {
  const rand = mulberry32(seed);
  return lengths.map((n) => Array.from({ length: n }, () => 1 + Math.floor(rand() * (vocabSize - 1))));
}

/**
 * A padded [rows, length] token matrix with ragged rows (each keeps at least half of `length`), so padding — the
 * attention bias and the masked pooling — is part of what a test exercises.
 */
export function randomTokenMatrix(seed: number, rows: number, length: number, vocabSize: number): TokenMatrix {
  const rand = mulberry32(seed);
  const ids = new Int32Array(rows * length);
  const mask = new Float32Array(rows * length);
  let tokens = 0;
  for (let r = 0; r < rows; r++) {
    const len = Math.max(1, length - Math.floor(rand() * (length / 2)));
    for (let c = 0; c < len; c++) {
      ids[r * length + c] = 1 + Math.floor(rand() * (vocabSize - 1));
      mask[r * length + c] = 1;
    }
    tokens += len;
  }
  return { ids, mask, rows, length, tokens };
}

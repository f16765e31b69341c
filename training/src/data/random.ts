/**
 * Seeded randomness and stable string hashing for the data pipeline.
 *
 * Everything that decides which pair lands where (subsampling, validation split, epoch order) goes through these
 * functions, so a run is reproducible from its seed and a resumed run sees exactly the batches it would have seen.
 *
 * @module
 */
import { mulberry32 } from "../../../src/model/init.js";

/**
 * 53-bit string hash (cyrb53). Stable across processes and platforms, unlike anything keyed on object identity;
 * 53 bits keep collisions negligible for the few hundred thousand texts we deduplicate.
 */
export function hashString(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** A uniform float in [0,1) derived from a string: a stable coin that does not depend on iteration order. */
export function hashUnit(text: string, seed = 0): number {
  return hashString(text, seed) / 2 ** 53;
}

/** Mulberry32 (src/model/init.ts): a tiny, fast, seedable PRNG with a 32-bit state; the same stream everywhere. */
export const createRng = mulberry32;

/** Derives an independent stream seed from a base seed and a label (e.g. "epoch:3"), so streams never overlap by accident. */
export function deriveSeed(seed: number, label: string): number {
  return hashString(label, seed) >>> 0;
}

/** In-place Fisher–Yates shuffle with the given PRNG; returns the same array for chaining. */
export function shuffleInPlace<T>(items: T[], rng: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/**
 * The small architectures the training tests build models of, named once so a test states the shape it needs (and the
 * heads, vocabulary or block it adds) instead of spelling the whole architecture out again.
 *
 * @example
 *   const ARCH = tinyArchitecture(300, { lateHead: { dim: 24 } });
 *   const ARCH = microArchitecture({ sparseHead: true });
 */
import type { TaesrArchitecture } from "../../../src/model/spec.js";

/** training/configs/tiny.json's architecture (64 wide, 4 heads, 32 positions, depths 1/3/6) with a vocabulary. */
export function tinyArchitecture(vocabSize: number, extra: Partial<TaesrArchitecture> = {}): TaesrArchitecture {
  return {
    vocabSize,
    hidden: 64,
    heads: 4,
    ffn: 128,
    maxLength: 32,
    outputDim: 384,
    matryoshkaDims: [64, 128, 256, 384],
    depths: { easy: 1, medium: 3, hard: 6 },
    ...extra,
  };
}

/** A 16-wide, 2-head, 3-step model over 50 tokens: small enough for a head's hand computation and finite differences. */
export function microArchitecture(extra: Partial<TaesrArchitecture> = {}): TaesrArchitecture {
  return {
    vocabSize: 50,
    hidden: 16,
    heads: 2,
    ffn: 32,
    maxLength: 8,
    outputDim: 384,
    matryoshkaDims: [64, 384],
    depths: { easy: 1, medium: 2, hard: 3 },
    ...extra,
  };
}

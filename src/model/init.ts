/**
 * Seeded initial weights of a TAESR model, drawn in plain JavaScript so every runtime gets the same numbers from the
 * same seed: training's variables (training/src/model/params.ts) and the pure-TypeScript {@link TAESRModel} start from
 * identical weights, whatever tfjs backend or platform they run on.
 *
 * @module
 */
import { blockOf, weightNames, weightShapes, type TaesrArchitecture, type WeightName } from "./spec.js";

/** Mulberry32: a tiny, fast, seedable PRNG with a 32-bit state (enough for inits and shuffles; not for cryptography). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `out` with N(0, std²) samples (Box–Muller), by default redrawn beyond ±2σ like BERT-style inits. */
export function fillNormal(out: Float32Array, std: number, rand: () => number, truncate = true): Float32Array {
  for (let i = 0; i < out.length; i++) {
    let z: number;
    do {
      const u = Math.max(rand(), 1e-12);
      const v = rand();
      z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    } while (truncate && Math.abs(z) > 2);
    out[i] = z * std;
  }
  return out;
}

/**
 * Initial values of every weight:
 * - embeddings: N(0, 0.02²)
 * - matrices: Glorot normal, std = √(2/(in+out))
 * - the residual projections (attn.wo, mix.w2, ffn.w2) additionally × 1/√(branches·maxDepth): the shared block is
 *   applied up to depths.hard times, each adding its residual branches to h (two: attention or mixer, and the FFN;
 *   three in the hybrid block), so without the damping h's variance grows with depth and the deepest embeddings start
 *   far from the shallow ones.
 * Values are drawn in weightNames(arch) order from one stream, so a self-attention model gets the numbers it always got.
 * - the late head's late.proj.w [H, dim] is a matrix like the others (Glorot normal), drawn last.
 * - LayerNorm gamma 1, beta 0; biases 0, except the sparse head's:
 * - sparse.bias = −3·0.02·√H, three standard deviations of the head's initial logits (LNs(h) has unit-variance
 *   components and E's rows N(0, 0.02²), so z ~ N(0, 0.02²·H)). With a zero bias about half of all (position, term)
 *   logits are positive and the max over the text makes most of the 8,192 terms non-zero: on the tiny config the
 *   first updates saw ~4,300 non-zero terms per text, q·d scores in the hundreds, a sparse InfoNCE of 8.4 (ln 32 = 3.5
 *   is chance) and a gradient 15× the dense one, which collapsed the dense loss to chance within 10 updates. At −3σ
 *   about 0.1% of the logits start positive: a few hundred small weights per text, scores of order 1.
 */
const EMBEDDING_STD = 0.02;
/** The sparse head's initial bias in standard deviations of its initial logits (see initialWeights). */
const SPARSE_BIAS_SIGMAS = -2;

export function initialWeights(arch: TaesrArchitecture, seed: number): Record<WeightName, Float32Array> {
  const shapes = weightShapes(arch);
  const rand = mulberry32(seed);
  const maxDepth = Math.max(arch.depths.easy, arch.depths.medium, arch.depths.hard, 1);
  const branches = blockOf(arch) === "hybrid" ? 3 : 2;
  const residualScale = 1 / Math.sqrt(branches * maxDepth);
  const out = {} as Record<WeightName, Float32Array>;
  for (const name of weightNames(arch)) {
    const shape = shapes[name];
    const data = new Float32Array(shape.reduce((p, d) => p * d, 1));
    if (name === "embed.token" || name === "embed.position") {
      fillNormal(data, EMBEDDING_STD, rand);
    } else if (shape.length === 2) {
      const [fanIn, fanOut] = shape as [number, number];
      let std = Math.sqrt(2 / (fanIn + fanOut));
      if (name === "block.attn.wo" || name === "block.mix.w2" || name === "block.ffn.w2") std *= residualScale;
      fillNormal(data, std, rand);
    } else if (name.endsWith(".gamma")) {
      data.fill(1);
    } else if (name === "sparse.bias") {
      data.fill(SPARSE_BIAS_SIGMAS * EMBEDDING_STD * Math.sqrt(arch.hidden));
    }
    out[name] = data;
  }
  return out;
}

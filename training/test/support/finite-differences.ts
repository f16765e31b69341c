/**
 * Central finite differences against analytic gradients: the check every hand-written gradient in the model gets
 * (tfjs on wasm registers none of its own; see src/gradients.ts). expectGradientsMatch probes chosen weight elements
 * of a model; expectInputGradientsMatch probes every element of a function's input tensors (a custom-gradient op).
 *
 * @example
 *   expectGradientsMatch(params, [["block.ffn.w1", 50]], () => loss(params).dataSync()[0]!, grads, 1e-3);
 *   expectInputGradientsMatch((q, d) => tf.sum(op(q, d)) as tf.Scalar, [q, d], 1e-3);
 */
import * as tf from "@tensorflow/tfjs-core";
import { expect } from "vitest";

/**
 * For each (weight, element) probe: nudges the variable's element by ±eps, evaluates `lossAt`, restores it, and
 * expects (plus − minus) / 2eps to match `analytic[weight][element]` within 2% (absolute below 1).
 */
export function expectGradientsMatch<N extends string>(
  params: Record<N, tf.Variable>,
  probes: ReadonlyArray<readonly [N, number]>,
  lossAt: () => number,
  analytic: Record<N, ArrayLike<number>>,
  eps: number,
): void {
  for (const [name, idx] of probes) {
    const v = params[name];
    const data = v.dataSync().slice() as Float32Array;
    const orig = data[idx]!;
    const evaluateAt = (value: number): number => {
      data[idx] = value;
      v.assign(tf.tensor(data, v.shape));
      return lossAt();
    };
    const plus = evaluateAt(orig + eps);
    const minus = evaluateAt(orig - eps);
    data[idx] = orig;
    v.assign(tf.tensor(data, v.shape));
    const numeric = (plus - minus) / (2 * eps);
    const grad = analytic[name][idx]!;
    expect(Math.abs(grad - numeric), `${name}[${idx}] analytic ${grad} numeric ${numeric}`).toBeLessThanOrEqual(2e-2 * Math.max(1, Math.abs(numeric)));
  }
}

/**
 * For every element of every input: tf.grads(f)'s analytic gradient against the central difference (f(x + eps) −
 * f(x − eps)) / 2eps with that one element moved, expected within 1% (absolute below 1); the message names the input's
 * index and the element.
 */
export function expectInputGradientsMatch(f: (...inputs: tf.Tensor[]) => tf.Scalar, inputs: tf.Tensor[], eps: number): void {
  const analytic = tf.grads(f)(inputs).map((g) => g.dataSync());
  inputs.forEach((input, k) => {
    const base = input.dataSync().slice() as Float32Array;
    for (let i = 0; i < base.length; i++) {
      const at = (delta: number): number =>
        tf.tidy(() => {
          const data = base.slice();
          data[i] = data[i]! + delta;
          const args = inputs.map((t, j) => (j === k ? tf.tensor(data, t.shape) : t));
          return f(...args).dataSync()[0]!;
        });
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(analytic[k]![i]! - numeric), `input ${k} element ${i}`).toBeLessThanOrEqual(1e-2 * Math.max(1, Math.abs(numeric)));
    }
  });
}

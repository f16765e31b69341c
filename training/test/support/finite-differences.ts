/**
 * Central finite differences against analytic gradients, one weight element at a time: the check every hand-written
 * gradient in the model gets (tfjs on wasm registers none of its own; see src/gradients.ts).
 *
 * @example
 *   expectGradientsMatch(params, [["block.ffn.w1", 50]], () => loss(params).dataSync()[0]!, grads, 1e-3);
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

/**
 * The gradient registry after backend selection (src/backend.ts, src/gradients.ts): the registry is global and the last
 * registration of a kernel wins, and importing @tensorflow/tfjs — which the "auto" chain's native attempts do even when
 * their native library fails to load — registers tfjs's own gradients over ours. Its GatherV2 gradient needs
 * UnsortedSegmentSum, which wasm lacks, and its BatchMatMul takes wasm's slow transposed paths; initBackend puts ours
 * back.
 */
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { initBackend } from "../src/backend.js";
import { ownsGradient } from "../src/gradients.js";

/** d/dx of Σ gather(x, [2, 0, 2]) on the current backend. */
function gatherGradient(): number[] {
  return tf.tidy(() => Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, tf.tensor1d([2, 0, 2], "int32"))))(tf.tensor1d([1, 2, 3, 4])).dataSync()));
}

describe("gradient registry", () => {
  it("initBackend(\"auto\") puts our gradients back over those importing @tensorflow/tfjs registers", async () => {
    await initBackend("wasm");
    expect(ownsGradient("GatherV2")).toBe(true);
    // What the native attempts do: import the union package (a variable specifier: it is a transitive dependency of
    // tfjs-node-gpu, not one of ours).
    const union: string = "@tensorflow/tfjs";
    await import(union);
    expect(ownsGradient("GatherV2")).toBe(false);
    expect(ownsGradient("BatchMatMul")).toBe(false);
    expect(() => gatherGradient()).toThrow(/UnsortedSegmentSum/);
    expect(await initBackend("auto")).toBe("wasm");
    for (const kernel of ["GatherV2", "BatchMatMul", "Softmax", "PadV2"]) expect(ownsGradient(kernel), kernel).toBe(true);
    expect(gatherGradient()).toEqual([1, 0, 2, 0]);
  });
});

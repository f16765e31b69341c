/**
 * Chooses the fastest TensorFlow.js backend that loads on this machine and says which one it picked.
 *
 * Order: tfjs-node-gpu (CUDA) → tfjs-node (native CPU) → wasm (SIMD) → cpu (plain JS).
 * The native bindings are optional and absent on most machines we run on, so they are imported dynamically by a
 * string held in a variable (the type checker must not require them) and any failure falls through to the next.
 *
 * @example
 *   const backend = await initBackend();          // "wasm" on a 2-core box without native bindings
 *   const backend = await initBackend("cpu");     // force the reference JS backend (tests, debugging)
 *
 * @module
 */
import { createRequire } from "node:module";
import path from "node:path";
import * as tf from "@tensorflow/tfjs-core";
// Side effect: tfjs-core's Node build registers no gradients (see gradients.ts).
import { registerGradients } from "./gradients.js";

export type BackendName = "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu";

/** What the caller may ask for: a specific backend, or "auto" for the fallback chain. */
export type BackendPreference = "auto" | "gpu" | "node" | "wasm" | "cpu";

const require = createRequire(import.meta.url);

async function tryNative(pkg: string): Promise<boolean> {
  try {
    // A variable specifier keeps tsc and bundlers from resolving a package that is usually not installed.
    const specifier: string = pkg;
    await import(specifier);
    // tfjs-node registers the "tensorflow" backend on import (the GPU build registers the same name).
    return await tf.setBackend("tensorflow");
  } catch {
    return false;
  }
}

/**
 * The directory holding tfjs-backend-wasm's .wasm binaries. In Node the emscripten loader reads them with fs, so
 * setWasmPaths takes a filesystem prefix (with trailing separator), not a URL.
 */
export function wasmBinaryDir(): string {
  return path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm")) + path.sep;
}

let wasmPathsSet = false;

async function tryWasm(): Promise<boolean> {
  try {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    if (!wasmPathsSet) {
      // usePlatformFetch=false: Node's fetch cannot read file paths; the emscripten Node loader uses fs instead.
      wasm.setWasmPaths(wasmBinaryDir(), false);
      wasmPathsSet = true;
    }
    // SIMD is on by default when the runtime supports it (Node 20 does); we say so explicitly and keep one thread,
    // because the threaded build needs SharedArrayBuffer workers the Node loader does not set up.
    tf.env().set("WASM_HAS_SIMD_SUPPORT", true);
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
    return await tf.setBackend("wasm");
  } catch {
    return false;
  }
}

async function tryCpu(): Promise<boolean> {
  await import("@tensorflow/tfjs-backend-cpu");
  return tf.setBackend("cpu");
}

/**
 * Initialise TensorFlow.js with the preferred backend (or the best available one) and return its name.
 * A preference that cannot load falls back down the chain rather than failing: training still runs, only slower,
 * and the log line says so.
 */
export async function initBackend(preferred: BackendPreference = "auto"): Promise<BackendName> {
  const chain: Array<[BackendName, () => Promise<boolean>]> = [
    ["tensorflow-gpu", () => tryNative("@tensorflow/tfjs-node-gpu")],
    ["tensorflow", () => tryNative("@tensorflow/tfjs-node")],
    ["wasm", tryWasm],
    ["cpu", tryCpu],
  ];
  const start = { auto: 0, gpu: 0, node: 1, wasm: 2, cpu: 3 }[preferred];
  for (const [name, attempt] of chain.slice(start)) {
    if (await attempt()) {
      await tf.ready();
      // A native attempt imports @tensorflow/tfjs even when it fails, and that registers tfjs's gradients over ours.
      registerGradients(true);
      const simd = name === "wasm" ? ` (simd=${String(tf.env().getBool("WASM_HAS_SIMD_SUPPORT"))})` : "";
      process.stderr.write(`[taesr] tfjs backend: ${name}${simd}\n`);
      return name;
    }
  }
  throw new Error("no TensorFlow.js backend could be initialised (not even cpu)");
}

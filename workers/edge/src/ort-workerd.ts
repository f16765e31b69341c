/**
 * onnxruntime-web inside workerd: the adapter that turns ORT-web into an {@link OrtLike} the model runtime can use.
 *
 * Why this is more than `import * as ort from "onnxruntime-web"`:
 * - Workers forbid compiling WebAssembly from bytes at run time (`WebAssembly.instantiate(bytes)` /
 *   `WebAssembly.compile` throw "Wasm code generation disallowed by embedder"). The only way in is a `.wasm` module
 *   import, which wrangler's "CompiledWasm" rule turns into a ready `WebAssembly.Module`.
 * - ORT-web 1.30 has no option that accepts a `WebAssembly.Module`: `env.wasm.wasmBinary` takes bytes, `wasmPaths`
 *   takes URLs, and the Emscripten `instantiateWasm` hook is not reachable (ORT builds the Emscripten config itself).
 *   With `wasmBinary` set, Emscripten calls `WebAssembly.instantiate(new Uint8Array(wasmBinary), imports)` exactly once.
 *   So we hand ORT a unique empty placeholder buffer as `wasmBinary` and wrap `WebAssembly.instantiate` so that
 *   the call carrying *that* buffer instantiates the pre-compiled module instead. Every other call passes through
 *   untouched, which is why the wrapper can stay installed for the isolate's lifetime (no unpatch race when several
 *   sessions are created concurrently).
 * - `onnxruntime-web/wasm` resolves (conditions `import`/`default`) to `ort.wasm.bundle.min.mjs`, which embeds the
 *   Emscripten glue (`ort-wasm-simd-threaded.mjs`) instead of `import()`-ing it from a URL at run time, which workerd
 *   cannot do. With `wasmBinary` set and one thread, ORT uses that embedded glue and never fetches anything.
 * - One thread (`numThreads = 1`): workerd has no Web Workers, so no pthreads; no proxy worker for the same reason.
 *   SIMD stays on (the only build ORT 1.30 ships is the SIMD one).
 *
 * The `.wasm` is ~14 MB raw (~3.5 MB gzipped): it dominates the Worker's upload size.
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasmModule from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import type { OrtLike, OrtSessionOptions } from "../../../src/model/ort-seam.js";

/** Placeholder handed to ORT as `env.wasm.wasmBinary`; recognised by identity in the `instantiate` wrapper. */
const PLACEHOLDER_BINARY = new ArrayBuffer(0);

let configured = false;

/** Idempotent: configures ORT's wasm backend and installs the instantiate wrapper once per isolate. */
function configureOnce(): void {
  if (configured) return;
  configured = true;

  const original = WebAssembly.instantiate.bind(WebAssembly) as (
    source: unknown,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>;
  const wrapped = (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (ArrayBuffer.isView(source) && source.buffer === PLACEHOLDER_BINARY) {
      // Instantiating an already compiled module is allowed in Workers; the result mimics the bytes overload.
      return WebAssembly.instantiate(ortWasmModule, imports).then((instance) => ({ instance, module: ortWasmModule }));
    }
    return original(source, imports);
  };
  WebAssembly.instantiate = wrapped as typeof WebAssembly.instantiate;

  ort.env.wasm.wasmBinary = PLACEHOLDER_BINARY;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "warning";
}

/** Session defaults for the edge: the wasm execution provider (the only one in this bundle), full graph optimisation. */
const DEFAULT_SESSION_OPTIONS: OrtSessionOptions = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };

/**
 * onnxruntime-web configured for workerd, as the platform-neutral {@link OrtLike}. Configuration happens on the first
 * session creation, so importing this module has no global side effects.
 */
export const ortWorkerd: OrtLike = {
  Tensor: ort.Tensor,
  InferenceSession: {
    async create(model: Uint8Array, options?: OrtSessionOptions) {
      configureOnce();
      return ort.InferenceSession.create(model, { ...DEFAULT_SESSION_OPTIONS, ...options });
    },
  },
};

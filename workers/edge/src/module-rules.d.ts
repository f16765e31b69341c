/**
 * Types for the non-JS modules wrangler bundles through its module rules (see wrangler.toml `[[rules]]`):
 * `.wasm` → "CompiledWasm" (a WebAssembly.Module, compiled by the runtime at upload/startup, because Workers forbid
 * compiling WebAssembly from bytes at run time) and `.onnx` → "Data" (the file's bytes as an ArrayBuffer).
 */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}

declare module "*.onnx" {
  const bytes: ArrayBuffer;
  export default bytes;
}

import { describe, expect, it } from "vitest";
import tinyModel from "../fixtures/tiny-matmul-add.onnx";
import { ortWorkerd } from "../../workers/edge/src/ort-workerd.js";

/**
 * Proves onnxruntime-web runs inside workerd: the .wasm arrives as a CompiledWasm module, the .onnx as a Data module,
 * and a session is created and run in the test isolate. The fixture is Y = X·W + B with
 * W = [[1,0,0],[0,1,0],[0,0,1],[1,1,1]] and B = [0.5,−0.5,2] (a hand-encoded ONNX protobuf, opset 17).
 */
describe("onnxruntime-web in workerd", () => {
  it("receives the model as a Data module", () => {
    expect(tinyModel).toBeInstanceOf(ArrayBuffer);
    expect(tinyModel.byteLength).toBeGreaterThan(0);
  });

  it("creates a session from bundled bytes and runs it", async () => {
    const session = await ortWorkerd.InferenceSession.create(new Uint8Array(tinyModel));
    expect(session.inputNames).toEqual(["X"]);
    expect(session.outputNames).toEqual(["Y"]);

    const x = new ortWorkerd.Tensor("float32", Float32Array.from([1, 2, 3, 4, 0, 0, 0, 0]), [2, 4]);
    const { Y } = await session.run({ X: x });
    expect(Y?.dims).toEqual([2, 3]);
    expect(Array.from(Y?.data as Float32Array)).toEqual([5.5, 5.5, 9, 0.5, -0.5, 2]);
    await session.release();
  });

  it("creates concurrent sessions on the shared wasm instance", async () => {
    const sessions = await Promise.all(
      [0, 1, 2].map(() => ortWorkerd.InferenceSession.create(new Uint8Array(tinyModel))),
    );
    const outputs = await Promise.all(
      sessions.map((s, i) =>
        s.run({ X: new ortWorkerd.Tensor("float32", Float32Array.from([i, 0, 0, 0]), [1, 4]) }),
      ),
    );
    expect(outputs.map((o) => (o.Y?.data as Float32Array)[0])).toEqual([0.5, 1.5, 2.5]);
    await Promise.all(sessions.map((s) => s.release()));
  });

  it("still refuses to compile WebAssembly from bytes (the restriction the adapter works around)", async () => {
    const emptyModule = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
    await expect(WebAssembly.instantiate(emptyModule)).rejects.toThrow(/disallowed/);
  });
});

/**
 * A tiny ONNX graph builder: unique value names, typed initializers, nodes with attributes, and model serialisation.
 *
 * @example
 *   const g = new GraphBuilder("demo");
 *   const x = g.input("x", DataType.FLOAT, ["batch", 4]);
 *   const w = g.initializerF32("w", [4, 2], weights);
 *   const [y] = g.node("MatMul", [x, w]);
 *   g.output(y, "y", DataType.FLOAT, ["batch", 2]);
 *   const bytes = g.toModelBytes({ opset: 17 });
 *
 * @module
 */
import {
  AttributeType,
  DataType,
  encodeModel,
  type AttributeProto,
  type DataTypeCode,
  type GraphProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "./onnx-proto.js";

/** Attribute values are tagged so an integer-valued float (epsilon 1) is never written as an INT. */
export type AttrValue =
  | { kind: "int"; value: number }
  | { kind: "float"; value: number }
  | { kind: "ints"; value: number[] }
  | { kind: "floats"; value: number[] }
  | { kind: "string"; value: string };

export const attr = {
  int: (value: number): AttrValue => ({ kind: "int", value }),
  float: (value: number): AttrValue => ({ kind: "float", value }),
  ints: (value: number[]): AttrValue => ({ kind: "ints", value }),
  floats: (value: number[]): AttrValue => ({ kind: "floats", value }),
  string: (value: string): AttrValue => ({ kind: "string", value }),
};

function toAttribute(name: string, v: AttrValue): AttributeProto {
  switch (v.kind) {
    case "int":
      return { name, type: AttributeType.INT, i: v.value };
    case "float":
      return { name, type: AttributeType.FLOAT, f: v.value };
    case "ints":
      return { name, type: AttributeType.INTS, ints: v.value };
    case "floats":
      return { name, type: AttributeType.FLOATS, floats: v.value };
    case "string":
      return { name, type: AttributeType.STRING, s: v.value };
  }
}

/**
 * Element data of an initializer. Uint16Array carries float16 bit patterns (ONNX has no native float16 array type in JS).
 */
export type InitializerData = Float32Array | Int8Array | Uint8Array | Uint16Array | BigInt64Array | Int32Array;

/** Little-endian element bytes of a typed array (copies; the host may be big-endian in theory). */
function rawBytes(data: InitializerData): Uint8Array {
  if (data instanceof Int8Array || data instanceof Uint8Array) return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  if (data instanceof Float32Array) data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  else if (data instanceof Uint16Array) data.forEach((v, i) => view.setUint16(i * 2, v, true));
  else if (data instanceof Int32Array) data.forEach((v, i) => view.setInt32(i * 4, v, true));
  else data.forEach((v, i) => view.setBigInt64(i * 8, v, true));
  return out;
}

export interface ModelOptions {
  opset: number;
  /** ONNX IR version; 8 is the one that goes with opset 17 (ONNX 1.12). */
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  metadata?: Record<string, string>;
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private readonly counters = new Map<string, number>();
  /** Small constants are shared: the same scalar or shape vector is stored once whatever prefix asked for it. */
  private readonly constants = new Map<string, string>();

  constructor(readonly name: string) {}

  /** A value name not used yet: `prefix` itself if free, else `prefix_1`, `prefix_2`, … */
  unique(prefix: string): string {
    let name = prefix;
    let n = this.counters.get(prefix) ?? 0;
    while (this.used.has(name)) name = `${prefix}_${++n}`;
    this.counters.set(prefix, n);
    this.used.add(name);
    return name;
  }

  input(name: string, elemType: DataTypeCode, shape: Array<number | string>): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: duplicate value name ${name}`);
    this.used.add(name);
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  /** Declares `value` as a graph output under `name` (an Identity node renames it when the names differ). */
  output(value: string, name: string, elemType: DataTypeCode, shape: Array<number | string>): void {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`graph ${this.name}: output name ${name} already used`);
      this.used.add(name);
      this.nodes.push({ input: [value], output: [name], name: this.unique(`${name}_identity`), opType: "Identity", attribute: [] });
    }
    this.outputs.push({ name, elemType, shape });
  }

  initializer(
    prefix: string,
    dataType: DataTypeCode,
    dims: number[],
    data: InitializerData,
  ): string {
    const size = dims.reduce((p, d) => p * d, 1);
    if (data.length !== size) throw new Error(`initializer ${prefix}: ${data.length} values for dims [${dims.join(",")}]`);
    const name = this.unique(prefix);
    this.initializers.push({ name, dims, dataType, rawData: rawBytes(data) });
    return name;
  }

  initializerF32(prefix: string, dims: number[], data: Float32Array | number[]): string {
    return this.initializer(prefix, DataType.FLOAT, dims, data instanceof Float32Array ? data : Float32Array.from(data));
  }

  private constant(key: string, make: () => string): string {
    let name = this.constants.get(key);
    if (name === undefined) {
      name = make();
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant (rank 0); deduplicated by value. */
  scalarF32(prefix: string, value: number): string {
    const f = Math.fround(value);
    return this.constant(`f32:${f}`, () => this.initializer(prefix, DataType.FLOAT, [], Float32Array.of(f)));
  }

  /** An int64 constant (1-D unless dims given), e.g. Reshape shapes, Slice bounds, Unsqueeze axes; deduplicated. */
  constI64(prefix: string, values: number[], dims: number[] = [values.length]): string {
    return this.constant(`i64:${dims.join("x")}:${values.join(",")}`, () =>
      this.initializer(prefix, DataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v)))),
    );
  }

  /**
   * Adds a node; returns its output names (fresh unique names derived from the op type unless given).
   * `outputs` may be a count (fresh names) or explicit names.
   */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs: number | string[] = 1): string[] {
    const base = opType.toLowerCase();
    const outs = typeof outputs === "number" ? Array.from({ length: outputs }, () => this.unique(base)) : outputs.map((o) => this.unique(o));
    this.nodes.push({
      input: inputs,
      output: outs,
      name: this.unique(`${opType}_node`),
      opType,
      attribute: Object.entries(attrs).map(([k, v]) => toAttribute(k, v)),
    });
    return outs;
  }

  /** Single-output convenience over `node`. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    return this.node(opType, inputs, attrs, outName ? [outName] : 1)[0]!;
  }

  build(docString?: string): GraphProto {
    return {
      name: this.name,
      node: [...this.nodes],
      initializer: [...this.initializers],
      input: [...this.inputs],
      output: [...this.outputs],
      ...(docString ? { docString } : {}),
    };
  }

  /** Number of scalar values held in initializers (for reporting). */
  initializerElementCount(): number {
    return this.initializers.reduce((sum, t) => sum + t.dims.reduce((p, d) => p * d, 1), 0);
  }

  toModelBytes(options: ModelOptions): Uint8Array {
    return encodeModel({
      irVersion: options.irVersion ?? 8,
      opsetImport: [{ domain: "", version: options.opset }],
      producerName: options.producerName ?? "taesr-training",
      producerVersion: options.producerVersion ?? "0.1.0",
      ...(options.docString ? { docString: options.docString } : {}),
      graph: this.build(),
      ...(options.metadata ? { metadataProps: options.metadata } : {}),
    });
  }
}

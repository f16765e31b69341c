/**
 * The subset of ONNX's protobuf schema (onnx/onnx.proto) that TAESR graphs use, as plain TypeScript objects plus encoders.
 * Field numbers are copied from onnx.proto; each encoder lists them beside the field so a reader can check them.
 *
 * @module
 */
import { ProtoWriter } from "./protobuf.js";

/** TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  FLOAT16: 10,
} as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** AttributeProto.AttributeType values used here. */
export const AttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  FLOATS: 6,
  INTS: 7,
} as const;

export interface TensorProto {
  name: string;
  dims: number[];
  dataType: DataTypeCode;
  /** Fixed-width little-endian element bytes (TensorProto.raw_data). */
  rawData: Uint8Array;
}

export type AttributeProto =
  | { name: string; type: typeof AttributeType.FLOAT; f: number }
  | { name: string; type: typeof AttributeType.INT; i: number }
  | { name: string; type: typeof AttributeType.STRING; s: string }
  | { name: string; type: typeof AttributeType.TENSOR; t: TensorProto }
  | { name: string; type: typeof AttributeType.FLOATS; floats: number[] }
  | { name: string; type: typeof AttributeType.INTS; ints: number[] };

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  domain?: string;
  attribute: AttributeProto[];
}

/** A tensor-typed value: element type and shape, each dim a fixed size or a symbolic name ("batch", "seq"). */
export interface ValueInfoProto {
  name: string;
  elemType: DataTypeCode;
  shape: Array<number | string>;
}

export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  docString?: string;
}

export interface OperatorSetIdProto {
  domain: string;
  version: number;
}

export interface ModelProto {
  irVersion: number;
  opsetImport: OperatorSetIdProto[];
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: GraphProto;
  metadataProps?: Record<string, string>;
}

export function encodeTensor(t: TensorProto): Uint8Array {
  const w = new ProtoWriter();
  w.repeatedInt64(1, t.dims); // dims = 1
  w.int64(2, t.dataType); // data_type = 2
  w.string(8, t.name); // name = 8
  w.bytes(9, t.rawData); // raw_data = 9
  return w.finish();
}

export function encodeAttribute(a: AttributeProto): Uint8Array {
  const w = new ProtoWriter();
  w.string(1, a.name); // name = 1
  w.int64(20, a.type); // type = 20
  switch (a.type) {
    case AttributeType.FLOAT:
      w.float(2, a.f); // f = 2
      break;
    case AttributeType.INT:
      w.int64(3, a.i); // i = 3
      break;
    case AttributeType.STRING:
      w.string(4, a.s); // s = 4
      break;
    case AttributeType.TENSOR:
      w.message(5, encodeTensor(a.t)); // t = 5
      break;
    case AttributeType.FLOATS:
      w.repeatedFloat(7, a.floats); // floats = 7
      break;
    case AttributeType.INTS:
      w.repeatedInt64(8, a.ints); // ints = 8
      break;
  }
  return w.finish();
}

export function encodeNode(n: NodeProto): Uint8Array {
  const w = new ProtoWriter();
  for (const i of n.input) w.string(1, i); // input = 1
  for (const o of n.output) w.string(2, o); // output = 2
  w.string(3, n.name); // name = 3
  w.string(4, n.opType); // op_type = 4
  for (const a of n.attribute) w.message(5, encodeAttribute(a)); // attribute = 5
  if (n.domain) w.string(7, n.domain); // domain = 7
  return w.finish();
}

function encodeDimension(d: number | string): Uint8Array {
  const w = new ProtoWriter();
  if (typeof d === "number") w.int64(1, d); // dim_value = 1
  else w.string(2, d); // dim_param = 2
  return w.finish();
}

export function encodeValueInfo(v: ValueInfoProto): Uint8Array {
  const shape = new ProtoWriter();
  for (const d of v.shape) shape.message(1, encodeDimension(d)); // TensorShapeProto.dim = 1
  const tensorType = new ProtoWriter();
  tensorType.int64(1, v.elemType); // TypeProto.Tensor.elem_type = 1
  tensorType.message(2, shape.finish()); // TypeProto.Tensor.shape = 2
  const type = new ProtoWriter();
  type.message(1, tensorType.finish()); // TypeProto.tensor_type = 1
  const w = new ProtoWriter();
  w.string(1, v.name); // name = 1
  w.message(2, type.finish()); // type = 2
  return w.finish();
}

export function encodeGraph(g: GraphProto): Uint8Array {
  const w = new ProtoWriter();
  for (const n of g.node) w.message(1, encodeNode(n)); // node = 1
  w.string(2, g.name); // name = 2
  for (const t of g.initializer) w.message(5, encodeTensor(t)); // initializer = 5
  if (g.docString) w.string(10, g.docString); // doc_string = 10
  for (const i of g.input) w.message(11, encodeValueInfo(i)); // input = 11
  for (const o of g.output) w.message(12, encodeValueInfo(o)); // output = 12
  return w.finish();
}

function encodeOpset(o: OperatorSetIdProto): Uint8Array {
  const w = new ProtoWriter();
  w.string(1, o.domain); // domain = 1
  w.int64(2, o.version); // version = 2
  return w.finish();
}

function encodeStringEntry(key: string, value: string): Uint8Array {
  const w = new ProtoWriter();
  w.string(1, key); // key = 1
  w.string(2, value); // value = 2
  return w.finish();
}

export function encodeModel(m: ModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.int64(1, m.irVersion); // ir_version = 1
  w.string(2, m.producerName); // producer_name = 2
  w.string(3, m.producerVersion); // producer_version = 3
  if (m.docString) w.string(6, m.docString); // doc_string = 6
  w.message(7, encodeGraph(m.graph)); // graph = 7
  for (const o of m.opsetImport) w.message(8, encodeOpset(o)); // opset_import = 8
  for (const [k, v] of Object.entries(m.metadataProps ?? {})) w.message(14, encodeStringEntry(k, v)); // metadata_props = 14
  return w.finish();
}

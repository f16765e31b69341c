/**
 * Reads TAESR weights back out of an artifact's fp32 ONNX graphs, so a published artifact can be the starting point of
 * further training (domain adaptation) without the params checkpoint it was exported from.
 *
 * Only what that needs is decoded: a minimal protobuf (proto2 wire format) reader, ModelProto.graph (field 7) →
 * GraphProto.initializer (field 5) → TensorProto {dims 1, data_type 2, float_data 4, name 8, raw_data 9,
 * data_location 14}. Every other field is skipped by wire type, so graphs from other producers parse as well.
 * Input is bytes and there are no `node:` imports: the module is platform-neutral like the rest of src/model.
 *
 * The fp32 graphs (training/src/onnx/taesr-graphs.ts) store every weight as an initializer named exactly by its
 * WeightName (embed.token and embed.position in embed.onnx, the rest in step.onnx). The int8 graphs store quantised
 * matrices (`<name>.int8` + `<name>.scale`), the int4 embed graph a 4-bit token table (`embed.token.int4` + float16
 * `embed.token.int4.scale`): the float weights cannot be recovered from them exactly, so they are refused as weights;
 * tokenTableFromEmbedGraph decodes the token table of any variant, as the graph computes it.
 *
 * @example
 *   const weights = weightsFromArtifactGraphs(embedBytes, stepBytes, manifest.architecture);
 *
 * @module
 */
import { dequantizeInt4Table } from "./int4-table.js";
import { ALL_WEIGHT_NAMES, blockOf, weightNames, weightShapes, type TaesrArchitecture, type WeightName } from "./spec.js";

/** TensorProto.DataType codes this reader names in messages (FLOAT is the only one it decodes). */
const DATA_TYPE_NAMES: Record<number, string> = { 1: "FLOAT", 2: "UINT8", 3: "INT8", 6: "INT32", 7: "INT64", 10: "FLOAT16", 11: "DOUBLE" };
const FLOAT = 1;
const UINT8 = 2;
const INT8 = 3;
const FLOAT16 = 10;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** One graph initializer as stored: the payload is kept as bytes and decoded only for the tensors asked for. */
export interface OnnxInitializer {
  name: string;
  dims: number[];
  dataType: number;
  /** TensorProto.raw_data (little-endian element bytes), when the tensor uses it. */
  rawData?: Uint8Array;
  /** TensorProto.float_data, when the tensor uses it instead of raw_data. */
  floatData?: number[];
  /** TensorProto.data_location = EXTERNAL: the data lives in another file this reader cannot see. */
  external?: boolean;
}

/** Cursor over a protobuf message's bytes. Errors name the message being read and the offset. */
class ProtoReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string): never {
    throw new Error(`${this.what}: ${message} at byte ${this.pos}`);
  }

  /**
   * A varint as a JS number. Values above 2^53 lose precision, which is harmless here: the numbers read are field tags,
   * lengths, dims and enum codes. Negative int64s (ten bytes) come out as large positives; no field read here has them.
   */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    return this.fail("varint longer than 10 bytes");
  }

  /** The [start, end) range of a length-delimited field's payload; advances past it. */
  lengthDelimited(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) this.fail(`length-delimited field of ${length} bytes runs past the end`);
    this.pos = start + length;
    return [start, start + length];
  }

  float32(): number {
    if (this.pos + 4 > this.end) this.fail("truncated fixed32");
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        break;
      case WIRE_LENGTH_DELIMITED:
        this.lengthDelimited();
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        break;
      default:
        // Groups (3, 4) are deprecated and never used by ONNX; anything else means the bytes are not protobuf.
        this.fail(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) this.fail("truncated field");
  }

  /** Iterates the fields of the message: yields (field number, wire type); the caller reads or skips the value. */
  *fields(): Generator<[number, number]> {
    while (!this.done) {
      const tag = this.varint();
      const field = Math.floor(tag / 8);
      if (field === 0) this.fail("field number 0");
      yield [field, tag & 7];
    }
  }

  sub(range: [number, number], what: string): ProtoReader {
    return new ProtoReader(this.bytes, what, range[0], range[1]);
  }

  slice(range: [number, number]): Uint8Array {
    return this.bytes.subarray(range[0], range[1]);
  }
}

const textDecoder = new TextDecoder();

function readTensor(r: ProtoReader): OnnxInitializer {
  const t: OnnxInitializer = { name: "", dims: [], dataType: 0 };
  for (const [field, wire] of r.fields()) {
    if (field === 1) {
      // dims: repeated int64, written unpacked by our exporter but packed by others; accept both.
      if (wire === WIRE_LENGTH_DELIMITED) {
        const packed = r.sub(r.lengthDelimited(), "dims");
        while (!packed.done) t.dims.push(packed.varint());
      } else if (wire === WIRE_VARINT) t.dims.push(r.varint());
      else r.skip(wire);
    } else if (field === 2 && wire === WIRE_VARINT) {
      t.dataType = r.varint();
    } else if (field === 4) {
      // float_data: repeated float, packed (length-delimited) or one fixed32 per element.
      t.floatData ??= [];
      if (wire === WIRE_LENGTH_DELIMITED) {
        const packed = r.sub(r.lengthDelimited(), "float_data");
        while (!packed.done) t.floatData.push(packed.float32());
      } else if (wire === WIRE_FIXED32) t.floatData.push(r.float32());
      else r.skip(wire);
    } else if (field === 8 && wire === WIRE_LENGTH_DELIMITED) {
      t.name = textDecoder.decode(r.slice(r.lengthDelimited()));
    } else if (field === 9 && wire === WIRE_LENGTH_DELIMITED) {
      t.rawData = r.slice(r.lengthDelimited());
    } else if (field === 14 && wire === WIRE_VARINT) {
      t.external = r.varint() === 1;
    } else {
      r.skip(wire);
    }
  }
  return t;
}

/**
 * Every initializer of an ONNX model's main graph, in file order.
 * @throws Error when the bytes are not a protobuf ModelProto with a graph.
 */
export function readOnnxInitializers(model: Uint8Array, what = "ONNX model"): OnnxInitializer[] {
  const top = new ProtoReader(model, what);
  let graph: [number, number] | undefined;
  for (const [field, wire] of top.fields()) {
    if (field === 7 && wire === WIRE_LENGTH_DELIMITED) graph = top.lengthDelimited();
    else top.skip(wire);
  }
  if (!graph) throw new Error(`${what}: no graph (ModelProto field 7); is this an ONNX model file?`);
  const g = top.sub(graph, `${what} graph`);
  const out: OnnxInitializer[] = [];
  for (const [field, wire] of g.fields()) {
    if (field === 5 && wire === WIRE_LENGTH_DELIMITED) out.push(readTensor(g.sub(g.lengthDelimited(), `${what} initializer #${out.length}`)));
    else g.skip(wire);
  }
  return out;
}

/** The float32 values of a FLOAT initializer (from raw_data or float_data), checked against its dims. */
export function initializerToFloat32(t: OnnxInitializer, what = t.name): Float32Array {
  if (t.dataType !== FLOAT) {
    throw new Error(`${what}: data type ${DATA_TYPE_NAMES[t.dataType] ?? t.dataType}, expected FLOAT`);
  }
  if (t.external) throw new Error(`${what}: data is stored outside the model file (external data), which is not supported`);
  const size = t.dims.reduce((p, d) => p * d, 1);
  let out: Float32Array;
  if (t.rawData && t.rawData.byteLength > 0) {
    if (t.rawData.byteLength !== size * 4) {
      throw new Error(`${what}: raw_data has ${t.rawData.byteLength} bytes, dims [${t.dims.join(",")}] need ${size * 4}`);
    }
    // Copy through a DataView: raw_data is little-endian by spec and sits at an arbitrary (unaligned) offset.
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    out = new Float32Array(size);
    for (let i = 0; i < size; i++) out[i] = view.getFloat32(i * 4, true);
  } else {
    const values = t.floatData ?? [];
    if (values.length !== size) throw new Error(`${what}: ${values.length} float_data values, dims [${t.dims.join(",")}] need ${size}`);
    out = Float32Array.from(values);
  }
  return out;
}

/**
 * The weights of a TAESR artifact's fp32 variant, by WeightName, from its embed.onnx and step.onnx bytes.
 * Checks that every weight of the architecture's block (spec.ts weightNames) is present with the shape `weightShapes(arch)`
 * gives; the block comes from `arch.block` (the manifest's), so a mixer artifact read as self-attention fails by name.
 * @throws Error naming the missing or misshaped weight; for int8 graphs, an error saying they cannot be read back.
 */
export function weightsFromArtifactGraphs(
  embedOnnx: Uint8Array,
  stepOnnx: Uint8Array,
  arch: TaesrArchitecture,
  /** The fp32 sparse.onnx, for an architecture with the sparse head (its sparse.* weights live there). */
  sparseOnnx?: Uint8Array,
  /** The fp32 late.onnx, for an architecture with the late-interaction head (late.proj.w lives there). */
  lateOnnx?: Uint8Array,
): Record<WeightName, Float32Array> {
  const byName = new Map<string, { tensor: OnnxInitializer; graph: string }>();
  const graphs: [Uint8Array, string][] = [
    [embedOnnx, "embed.onnx"],
    [stepOnnx, "step.onnx"],
  ];
  if (sparseOnnx) graphs.push([sparseOnnx, "sparse.onnx"]);
  // After step.onnx: late.onnx repeats out.ln.*, and the first one (step's) wins.
  if (lateOnnx) graphs.push([lateOnnx, "late.onnx"]);
  for (const [bytes, graph] of graphs) {
    for (const tensor of readOnnxInitializers(bytes, graph)) {
      // First one wins: the exporter never writes a weight into both graphs, and the scalar constants are not weights.
      if (!byName.has(tensor.name)) byName.set(tensor.name, { tensor, graph });
    }
  }
  const shapes = weightShapes(arch);
  const names = weightNames(arch);
  // Weights of another block mean the manifest's architecture.block does not describe these graphs: reading on would
  // silently drop a sub-layer (a hybrid model's mixer read as self-attention).
  const foreign = ALL_WEIGHT_NAMES.filter((n) => !names.includes(n) && (byName.has(n) || byName.has(`${n}.int8`)));
  if (foreign.length > 0) {
    throw new Error(
      `the graphs hold weights of another block (${foreign.join(", ")}): they are not a ${blockOf(arch)} model; ` +
        `check the manifest's architecture.block`,
    );
  }
  const out = {} as Record<WeightName, Float32Array>;
  for (const name of names) {
    const found = byName.get(name);
    if (!found) {
      if (byName.has(`${name}.int4`)) {
        throw new Error(
          `weight ${name} is stored at 4 bits (${name}.int4): this is an int4 embed graph, whose float weights cannot be read back; ` +
            `use the artifact's fp32 variant (fp32/embed.onnx, fp32/step.onnx), or tokenTableFromEmbedGraph for the dequantised table`,
        );
      }
      if (byName.has(`${name}.int8`)) {
        throw new Error(
          `weight ${name} is stored quantised (${name}.int8): these are int8 graphs, whose float weights cannot be read back; ` +
            `use the artifact's fp32 variant (fp32/embed.onnx, fp32/step.onnx)`,
        );
      }
      const where = name.startsWith("embed.")
        ? "embed.onnx"
        : name.startsWith("sparse.")
          ? "sparse.onnx (pass it: the architecture has the sparse head)"
          : name.startsWith("late.")
            ? "late.onnx (pass it: the architecture has the late-interaction head)"
            : "step.onnx";
      const block = blockOf(arch) === "self_attention" ? "" : ` (a ${blockOf(arch)} model)`;
      throw new Error(`weight ${name} is missing: no initializer of that name in the graphs (expected in ${where})${block}`);
    }
    const expected = shapes[name];
    if (found.tensor.dims.join(",") !== expected.join(",")) {
      throw new Error(
        `weight ${name} in ${found.graph} has shape [${found.tensor.dims.join(",")}], the architecture needs [${expected.join(",")}]`,
      );
    }
    out[name] = initializerToFloat32(found.tensor, `weight ${name} in ${found.graph}`);
  }
  return out;
}

/** A UINT8 / FLOAT16 initializer's raw bytes, checked against its dims (element size 1 or 2). */
function rawOf(t: OnnxInitializer, dataType: number, elementBytes: number, what: string): Uint8Array {
  if (t.dataType !== dataType) {
    throw new Error(`${what}: data type ${DATA_TYPE_NAMES[t.dataType] ?? t.dataType}, expected ${DATA_TYPE_NAMES[dataType]}`);
  }
  if (t.external) throw new Error(`${what}: data is stored outside the model file (external data), which is not supported`);
  const size = t.dims.reduce((p, d) => p * d, 1);
  if (!t.rawData || t.rawData.byteLength !== size * elementBytes) {
    throw new Error(`${what}: raw_data has ${t.rawData?.byteLength ?? 0} bytes, dims [${t.dims.join(",")}] need ${size * elementBytes}`);
  }
  return t.rawData;
}

/**
 * The token-embedding table [vocabSize, hidden] an embed.onnx of any variant computes its rows from: exact for fp32
 * (`embed.token`), dequantised for int8 (`embed.token.int8` · per-row scale) and int4 (src/model/int4-table.ts: the
 * values the int4 graph produces, bit for bit). Used to check a quantised variant against its source and by tests.
 * @throws Error when the graph holds no token table of a known format, or one of the wrong shape.
 */
export function tokenTableFromEmbedGraph(embedOnnx: Uint8Array, arch: Pick<TaesrArchitecture, "vocabSize" | "hidden">): Float32Array {
  const { vocabSize: V, hidden: H } = arch;
  const byName = new Map(readOnnxInitializers(embedOnnx, "embed.onnx").map((t) => [t.name, t]));
  const expectDims = (t: OnnxInitializer, dims: number[]) => {
    if (t.dims.join(",") !== dims.join(",")) throw new Error(`${t.name} in embed.onnx has shape [${t.dims.join(",")}], expected [${dims.join(",")}]`);
  };
  const fp32 = byName.get("embed.token");
  if (fp32) {
    expectDims(fp32, [V, H]);
    return initializerToFloat32(fp32, "embed.token in embed.onnx");
  }
  const int4 = byName.get("embed.token.int4");
  const int4Scale = byName.get("embed.token.int4.scale");
  if (int4 && int4Scale) {
    expectDims(int4, [V, H / 2]);
    const groups = int4Scale.dims[1] ?? 0;
    expectDims(int4Scale, [V, groups, 1]);
    if (groups <= 0 || H % groups !== 0) throw new Error(`embed.token.int4.scale: ${groups} groups do not divide hidden ${H}`);
    const codes = rawOf(int4, UINT8, 1, "embed.token.int4");
    const scaleBytes = rawOf(int4Scale, FLOAT16, 2, "embed.token.int4.scale");
    const scales = new Uint16Array(V * groups);
    const view = new DataView(scaleBytes.buffer, scaleBytes.byteOffset, scaleBytes.byteLength);
    for (let i = 0; i < scales.length; i++) scales[i] = view.getUint16(i * 2, true);
    return dequantizeInt4Table({ codes, scales, rows: V, cols: H, groupSize: H / groups });
  }
  const int8 = byName.get("embed.token.int8");
  const int8Scale = byName.get("embed.token.scale");
  if (int8 && int8Scale) {
    expectDims(int8, [V, H]);
    expectDims(int8Scale, [V, 1]);
    const codes = new Int8Array(rawOf(int8, INT8, 1, "embed.token.int8").slice().buffer);
    const scales = initializerToFloat32(int8Scale, "embed.token.scale in embed.onnx");
    const out = new Float32Array(V * H);
    for (let i = 0; i < out.length; i++) out[i] = codes[i]! * scales[Math.floor(i / H)]!;
    return out;
  }
  throw new Error("embed.onnx holds no token table: expected embed.token (fp32), embed.token.int8 + embed.token.scale, or embed.token.int4 + embed.token.int4.scale");
}

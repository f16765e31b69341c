/**
 * A minimal protobuf (proto2 wire format) writer — just what ONNX serialisation needs.
 *
 * Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. Each message is built bottom-up: nested messages are
 * encoded to bytes first and then embedded as length-delimited fields, so no size pre-computation pass is needed.
 *
 * @example
 *   const w = new ProtoWriter();
 *   w.int64(1, 8);                  // ir_version = 8
 *   w.string(2, "taesr");           // producer_name
 *   w.message(7, graphBytes);       // graph
 *   const bytes = w.finish();
 *
 * @module
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const textEncoder = new TextEncoder();

/** Appends bytes to growable chunks; `finish` concatenates once. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  private length = 0;

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    const bytes = Uint8Array.from(this.scratch);
    this.chunks.push(bytes);
    this.length += bytes.length;
    this.scratch = [];
  }

  private pushBytes(bytes: Uint8Array): void {
    this.flushScratch();
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  /**
   * Unsigned LEB128 of a 64-bit value. Negative numbers are written as their 64-bit two's complement (10 bytes), which
   * is how protobuf encodes negative int32/int64 (e.g. an `axis = -1` attribute).
   */
  varint(value: number | bigint): this {
    let v = typeof value === "bigint" ? value : BigInt(value);
    if (typeof value === "number" && !Number.isInteger(value)) throw new Error(`varint of non-integer ${value}`);
    v = BigInt.asUintN(64, v);
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
    return this;
  }

  private tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** int32 / int64 / enum / bool field (varint). */
  int64(field: number, value: number | bigint): this {
    this.tag(field, WIRE_VARINT);
    return this.varint(value);
  }

  /** float field (fixed32, little-endian IEEE 754). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.scratch.push(x);
    return this;
  }

  /** bytes field (length-delimited). */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.varint(value.length);
    this.pushBytes(value);
    return this;
  }

  /** string field (UTF-8, length-delimited). */
  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** Embedded message field: the already-encoded message bytes, length-delimited. */
  message(field: number, encoded: Uint8Array): this {
    return this.bytes(field, encoded);
  }

  /**
   * Unpacked repeated int64: one tagged varint per element. ONNX's proto2 schema declares dims/ints without
   * [packed = true]; parsers accept both encodings, but the unpacked one is what the schema literally describes.
   */
  repeatedInt64(field: number, values: ReadonlyArray<number | bigint>): this {
    for (const v of values) this.int64(field, v);
    return this;
  }

  /** Unpacked repeated float (AttributeProto.floats). */
  repeatedFloat(field: number, values: ReadonlyArray<number>): this {
    for (const v of values) this.float(field, v);
    return this;
  }

  /** Packed repeated int64 (one length-delimited field holding back-to-back varints). */
  packedInt64(field: number, values: ReadonlyArray<number | bigint>): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated float (fixed32 values back to back). */
  packedFloat(field: number, values: ReadonlyArray<number>): this {
    const b = new Uint8Array(values.length * 4);
    const view = new DataView(b.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

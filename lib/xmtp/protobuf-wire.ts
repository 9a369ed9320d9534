/**
 * A small protobuf (proto3) codec driven by field tables, for the few messages of XMTP's decentralized API that
 * `@xmtp/proto` has no codecs for (`xmtp.xmtpv4.*`). Field numbers come from xmtp/proto `proto/xmtpv4/`.
 * Decoding skips unknown fields and accepts packed and unpacked repeated numbers; encoding leaves out proto3
 * defaults, as every protobuf encoder does.
 */

/** Scalar field types. 64-bit integers are bigints. */
export type Scalar = "uint32" | "uint64" | "int64" | "bool" | "string" | "bytes" | "enum";
/** A field's type: a scalar, a nested message, or a map. */
export type FieldType = Scalar | MessageSchema | { readonly map: readonly [Scalar, Scalar | MessageSchema] };
/** One field of a message. */
export interface Field {
  readonly no: number;
  readonly type: FieldType;
  readonly repeated?: boolean;
  /** Proto3 `optional` or a oneof member: present even when it holds the default value. */
  readonly present?: boolean;
}
/** A message: its fields by name. */
export type MessageSchema = { readonly [name: string]: Field };

/** Bytes that are not a valid encoding of the message. */
export class ProtobufDecodeError extends Error {
  override readonly name = "ProtobufDecodeError";
}

const WIRE = { varint: 0, fixed64: 1, delimited: 2, fixed32: 5 } as const;
const isMessage = (t: FieldType): t is MessageSchema => typeof t === "object" && !("map" in t);
const isMap = (t: FieldType): t is { readonly map: readonly [Scalar, Scalar | MessageSchema] } => typeof t === "object" && "map" in t;
const numeric = (t: FieldType) => t === "uint32" || t === "uint64" || t === "int64" || t === "bool" || t === "enum";

class Reader {
  offset = 0;
  constructor(readonly bytes: Uint8Array) {}
  get done(): boolean {
    return this.offset >= this.bytes.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.offset >= this.bytes.length) throw new ProtobufDecodeError("truncated varint");
      const byte = this.bytes[this.offset++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result & 0xffffffffffffffffn;
    }
    throw new ProtobufDecodeError("varint too long");
  }
  take(n: number): Uint8Array {
    if (n < 0 || this.offset + n > this.bytes.length) throw new ProtobufDecodeError("truncated field");
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  delimited(): Uint8Array {
    return this.take(Number(this.varint()));
  }
  skip(wire: number): void {
    if (wire === WIRE.varint) this.varint();
    else if (wire === WIRE.fixed64) this.take(8);
    else if (wire === WIRE.delimited) this.delimited();
    else if (wire === WIRE.fixed32) this.take(4);
    else throw new ProtobufDecodeError(`unsupported wire type ${wire}`);
  }
}

const defaultOf = (t: FieldType): unknown => {
  if (isMessage(t)) return undefined;
  if (isMap(t)) return new Map();
  if (t === "uint64" || t === "int64") return 0n;
  if (t === "uint32" || t === "enum") return 0;
  if (t === "bool") return false;
  if (t === "string") return "";
  return new Uint8Array();
};

function scalarFrom(t: Scalar, raw: bigint | Uint8Array): unknown {
  if (raw instanceof Uint8Array) {
    if (t === "string") return new TextDecoder().decode(raw);
    if (t === "bytes") return raw;
    throw new ProtobufDecodeError(`expected a number for a ${t} field`);
  }
  if (t === "uint64") return raw;
  if (t === "int64") return BigInt.asIntN(64, raw);
  if (t === "bool") return raw !== 0n;
  if (t === "uint32" || t === "enum") return Number(BigInt.asUintN(32, raw));
  throw new ProtobufDecodeError(`expected bytes for a ${t} field`);
}

function readValue(r: Reader, wire: number, t: Scalar | MessageSchema): unknown {
  if (isMessage(t)) {
    if (wire !== WIRE.delimited) throw new ProtobufDecodeError("a message field must be length-delimited");
    return decodeMessage(t, r.delimited());
  }
  if (wire === WIRE.varint) return scalarFrom(t, r.varint());
  if (wire === WIRE.delimited) return scalarFrom(t, r.delimited());
  throw new ProtobufDecodeError(`unexpected wire type ${wire} for a ${t} field`);
}

/**
 * Decodes `bytes` as a message of `schema` into a plain object (absent fields hold proto3 defaults; absent
 * messages and absent `present` fields are undefined).
 * @throws {ProtobufDecodeError} when the bytes are not a valid encoding.
 */
export function decodeMessage<T = Record<string, unknown>>(schema: MessageSchema, bytes: Uint8Array): T {
  const out: Record<string, unknown> = {};
  const byNumber = new Map<number, [string, Field]>();
  for (const [name, field] of Object.entries(schema)) {
    byNumber.set(field.no, [name, field]);
    out[name] = field.repeated ? [] : field.present ? undefined : defaultOf(field.type);
  }
  const r = new Reader(bytes);
  while (!r.done) {
    const key = r.varint();
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    const known = byNumber.get(no);
    if (!known) {
      r.skip(wire);
      continue;
    }
    const [name, field] = known;
    const t = field.type;
    if (isMap(t)) {
      if (wire !== WIRE.delimited) throw new ProtobufDecodeError("a map entry must be length-delimited");
      const entry = decodeMessage<{ key: unknown; value: unknown }>({ key: { no: 1, type: t.map[0] }, value: { no: 2, type: t.map[1] } }, r.delimited());
      (out[name] as Map<unknown, unknown>).set(entry.key, entry.value);
    } else if (field.repeated) {
      const list = out[name] as unknown[];
      if (numeric(t) && wire === WIRE.delimited) {
        const packed = new Reader(r.delimited());
        while (!packed.done) list.push(scalarFrom(t, packed.varint()));
      } else list.push(readValue(r, wire, t));
    } else {
      out[name] = readValue(r, wire, t);
    }
  }
  return out as T;
}

class Writer {
  private readonly parts: Uint8Array[] = [];
  varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const bytes: number[] = [];
    while (v >= 0x80n) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
    this.parts.push(Uint8Array.from(bytes));
  }
  key(no: number, wire: number): void {
    this.varint((BigInt(no) << 3n) | BigInt(wire));
  }
  delimited(no: number, bytes: Uint8Array): void {
    this.key(no, WIRE.delimited);
    this.varint(BigInt(bytes.length));
    this.parts.push(bytes);
  }
  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

function writeValue(w: Writer, no: number, t: Scalar | MessageSchema, value: unknown): void {
  if (isMessage(t)) return w.delimited(no, encodeMessage(t, value as Record<string, unknown>));
  if (t === "string") return w.delimited(no, new TextEncoder().encode(String(value)));
  if (t === "bytes") return w.delimited(no, value as Uint8Array);
  w.key(no, WIRE.varint);
  w.varint(t === "bool" ? (value ? 1n : 0n) : BigInt(value as number | bigint));
}

const isDefault = (t: FieldType, value: unknown): boolean => {
  if (value === undefined || value === null) return true;
  if (isMessage(t)) return false;
  if (t === "bytes") return (value as Uint8Array).length === 0;
  if (t === "string") return value === "";
  if (t === "bool") return value === false;
  return BigInt(value as number | bigint) === 0n;
};

/** Encodes a plain object as a message of `schema` (missing fields are left out). */
export function encodeMessage(schema: MessageSchema, message: Record<string, unknown>): Uint8Array {
  const w = new Writer();
  for (const [name, field] of Object.entries(schema).sort((a, b) => a[1].no - b[1].no)) {
    const value = message[name];
    const t = field.type;
    if (isMap(t)) {
      const entries = value instanceof Map ? [...(value as Map<unknown, unknown>)] : Object.entries((value ?? {}));
      for (const [k, v] of entries) {
        w.delimited(field.no, encodeMessage({ key: { no: 1, type: t.map[0] }, value: { no: 2, type: t.map[1] } }, { key: k, value: v }));
      }
    } else if (field.repeated) {
      for (const item of (value ?? []) as unknown[]) writeValue(w, field.no, t, item);
    } else if (field.present ? value !== undefined && value !== null : !isDefault(t, value)) {
      writeValue(w, field.no, t, value);
    }
  }
  return w.finish();
}

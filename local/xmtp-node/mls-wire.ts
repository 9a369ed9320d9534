/**
 * The little of MLS's wire format (RFC 9420, TLS presentation language) the local node reads:
 * which group a message belongs to and whether it is a commit, and which installation a key package is for.
 * Nothing is verified: the clients verify signatures and the MLS state themselves.
 */

/** MLSMessage.wire_format values (RFC 9420 §6). */
const WIRE_FORMAT = { publicMessage: 1, privateMessage: 2, keyPackage: 5 } as const;
/** ContentType.commit (RFC 9420 §6). */
const CONTENT_TYPE_COMMIT = 3;
/** Sender types carrying a 4-byte index (member, external). */
const SENDER_WITH_INDEX = new Set([1, 2]);

/** A message the node cannot read; it answers INVALID_ARGUMENT, as the real node does. */
export class MlsWireError extends Error {
  override readonly name = "MlsWireError";
}

class Reader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++]!;
  }

  u16(): number {
    return (this.u8() << 8) | this.u8();
  }

  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }

  /** A variable-length vector `opaque x<V>`: a QUIC-style varint length (RFC 9420 §2.1.2), then that many bytes. */
  vector(): Uint8Array {
    const first = this.u8();
    const prefix = first >> 6;
    if (prefix === 3) throw new MlsWireError("invalid variable-length vector length");
    let length = first & 0x3f;
    for (let i = 0; i < (1 << prefix) - 1; i++) length = length * 256 + this.u8();
    this.need(length);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  private need(n: number): void {
    if (this.offset + n > this.bytes.length) throw new MlsWireError("message is truncated");
  }
}

/** What the node needs of a group message: its group and whether it changes the group's epoch. */
export interface GroupMessageFacts {
  readonly groupId: Uint8Array;
  readonly isCommit: boolean;
}

/**
 * Reads an MLSMessage carrying a PublicMessage or PrivateMessage.
 * @throws {MlsWireError} for anything else, or a truncated message.
 */
export function readGroupMessage(data: Uint8Array): GroupMessageFacts {
  const r = new Reader(data);
  r.u16(); // version
  const wireFormat = r.u16();
  if (wireFormat === WIRE_FORMAT.privateMessage) {
    // PrivateMessage: group_id<V>, epoch u64, content_type u8, ...
    const groupId = r.vector();
    r.skip(8);
    return { groupId, isCommit: r.u8() === CONTENT_TYPE_COMMIT };
  }
  if (wireFormat === WIRE_FORMAT.publicMessage) {
    // FramedContent: group_id<V>, epoch u64, sender, authenticated_data<V>, content_type u8, ...
    const groupId = r.vector();
    r.skip(8);
    const senderType = r.u8();
    if (SENDER_WITH_INDEX.has(senderType)) r.skip(4);
    r.vector();
    return { groupId, isCommit: r.u8() === CONTENT_TYPE_COMMIT };
  }
  throw new MlsWireError(`not a group message (wire format ${wireFormat})`);
}

/**
 * The installation key of a TLS-serialized key package: its leaf node's `signature_key`.
 * Accepts a bare KeyPackage or one wrapped in an MLSMessage (wire format 5).
 * @throws {MlsWireError}
 */
export function readKeyPackageInstallationKey(data: Uint8Array): Uint8Array {
  const r = new Reader(data);
  r.u16(); // version
  // A bare KeyPackage has its cipher suite here; XMTP's suite is 1, never the key-package wire format 5.
  if (r.u16() === WIRE_FORMAT.keyPackage) {
    r.u16(); // the wrapped KeyPackage's version
    r.u16(); // cipher_suite
  }
  r.vector(); // init_key
  r.vector(); // leaf_node.encryption_key
  const signatureKey = r.vector();
  if (signatureKey.length === 0) throw new MlsWireError("key package has no signature key");
  return signatureKey;
}

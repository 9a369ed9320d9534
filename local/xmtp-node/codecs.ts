import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/**
 * Protobuf codecs of XMTP's v3 API (`xmtp.mls.api.v1`, `xmtp.identity.api.v1`), from the ts-proto
 * build in `@xmtp/proto`. Its ESM deep imports lack `.js` extensions and its `exports` block subpaths,
 * so the CommonJS files are loaded by absolute path.
 */

/** A 64-bit integer as ts-proto decodes it (Long). */
export interface Int64 {
  toNumber(): number;
}

/** A ts-proto message codec: `fromPartial` accepts plain numbers for 64-bit fields. */
export interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
  fromPartial(object: unknown): T;
}

export interface PagingInfo {
  direction: number;
  limit: number;
  idCursor: Int64;
}

export interface GroupMessageInput {
  v1?: { data: Uint8Array; senderHmac: Uint8Array; shouldPush: boolean };
}

export interface WelcomeMessageInput {
  v1?: {
    installationKey: Uint8Array;
    data: Uint8Array;
    hpkePublicKey: Uint8Array;
    wrapperAlgorithm: number;
    welcomeMetadata: Uint8Array;
  };
  welcomePointer?: { installationKey: Uint8Array; welcomePointer: Uint8Array; hpkePublicKey: Uint8Array; wrapperAlgorithm: number };
}

export interface MemberIdentifier {
  ethereumAddress?: string;
  installationPublicKey?: Uint8Array;
  passkey?: unknown;
}

export interface IdentityUpdate {
  inboxId: string;
  actions: {
    createInbox?: { initialIdentifier: string; initialIdentifierKind: number };
    add?: { newMemberIdentifier?: MemberIdentifier };
    revoke?: { memberToRevoke?: MemberIdentifier };
  }[];
}

export interface CommitLogSignature {
  bytes: Uint8Array;
  publicKey: Uint8Array;
}

/** Request and response codecs by message name. */
export interface XmtpCodecs {
  // xmtp.mls.api.v1
  SendGroupMessagesRequest: Codec<{ messages: GroupMessageInput[] }>;
  SendWelcomeMessagesRequest: Codec<{ messages: WelcomeMessageInput[] }>;
  UploadKeyPackageRequest: Codec<{ keyPackage?: { keyPackageTlsSerialized: Uint8Array } }>;
  RegisterInstallationRequest: Codec<{ keyPackage?: { keyPackageTlsSerialized: Uint8Array } }>;
  RegisterInstallationResponse: Codec<unknown>;
  FetchKeyPackagesRequest: Codec<{ installationKeys: Uint8Array[] }>;
  FetchKeyPackagesResponse: Codec<unknown>;
  QueryGroupMessagesRequest: Codec<{ groupId: Uint8Array; pagingInfo?: PagingInfo }>;
  QueryGroupMessagesResponse: Codec<unknown>;
  QueryWelcomeMessagesRequest: Codec<{ installationKey: Uint8Array; pagingInfo?: PagingInfo }>;
  QueryWelcomeMessagesResponse: Codec<unknown>;
  SubscribeGroupMessagesRequest: Codec<{ filters: { groupId: Uint8Array; idCursor: Int64 }[] }>;
  SubscribeWelcomeMessagesRequest: Codec<{ filters: { installationKey: Uint8Array; idCursor: Int64 }[] }>;
  GroupMessage: Codec<unknown>;
  WelcomeMessage: Codec<unknown>;
  BatchPublishCommitLogRequest: Codec<{ requests: { groupId: Uint8Array; serializedCommitLogEntry: Uint8Array; signature?: CommitLogSignature }[] }>;
  BatchQueryCommitLogRequest: Codec<{ requests: { groupId: Uint8Array; pagingInfo?: PagingInfo }[] }>;
  BatchQueryCommitLogResponse: Codec<unknown>;
  GetNewestGroupMessageRequest: Codec<{ groupIds: Uint8Array[]; includeContent: boolean }>;
  GetNewestGroupMessageResponse: Codec<unknown>;
  // xmtp.identity.api.v1
  PublishIdentityUpdateRequest: Codec<{ identityUpdate?: IdentityUpdate }>;
  GetIdentityUpdatesRequest: Codec<{ requests: { inboxId: string; sequenceId: Int64 }[] }>;
  GetIdentityUpdatesResponse: Codec<unknown>;
  GetInboxIdsRequest: Codec<{ requests: { identifier: string; identifierKind: number }[] }>;
  GetInboxIdsResponse: Codec<unknown>;
  VerifySmartContractWalletSignaturesRequest: Codec<{ signatures: unknown[] }>;
  VerifySmartContractWalletSignaturesResponse: Codec<unknown>;
  /** The stored form of an identity update (re-encoded into GetIdentityUpdates answers). */
  IdentityUpdate: Codec<IdentityUpdate>;
  // The client's payloads inside a d14n ClientEnvelope (the same messages as V3's).
  GroupMessageInput: Codec<GroupMessageInput>;
  WelcomeMessageInput: Codec<WelcomeMessageInput>;
}

let loaded: XmtpCodecs | undefined;

/** Loads the codecs once. */
export function xmtpCodecs(): XmtpCodecs {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("@xmtp/proto"));
  const mls = require(join(root, "mls/api/v1/mls.pb.js")) as Record<string, unknown>;
  const identity = require(join(root, "identity/api/v1/identity.pb.js")) as Record<string, unknown>;
  const associations = require(join(root, "identity/associations/association.pb.js")) as Record<string, unknown>;
  loaded = { ...mls, ...identity, IdentityUpdate: associations.IdentityUpdate } as unknown as XmtpCodecs;
  return loaded;
}

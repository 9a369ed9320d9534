import { decodeMessage } from "./protobuf-wire.js";
import { PublishClientEnvelopesRequest, type ClientEnvelopeMessage } from "./xmtpv4.js";

/**
 * What the write-ahead relay needs to know of XMTP's two protocols (V3 and the decentralized network, d14n): which
 * gRPC calls are reads. Everything else is a write. The list is explicit and closed on purpose: a call this code
 * has never heard of (a future libxmtp's new write, say) is held until the state is saved, or refused, never
 * forwarded unsaved.
 */

const V3_MLS = "/xmtp.mls.api.v1.MlsApi/";
const V3_IDENTITY = "/xmtp.identity.api.v1.IdentityApi/";
const PAYER = "/xmtp.xmtpv4.payer_api.PayerApi/";
const REPLICATION = "/xmtp.xmtpv4.message_api.ReplicationApi/";

/** What XMTP's V3 backend answers every write with once it is retired (xmtp-node-go's d14n cutover). */
export const V3_RETIRED = /publishing to XMTP V3 is no longer available/i;

/** The d14n gateway call that lists the nodes to read from (the relay rewrites their URLs to its own forwarders). */
export const GET_NODES = `${PAYER}GetNodes`;
/** The d14n gateway call that carries every write of a d14n client. */
export const PUBLISH_CLIENT_ENVELOPES = `${PAYER}PublishClientEnvelopes`;

/** Calls that change nothing on the network: passed through as they are. */
export const KNOWN_READS: ReadonlySet<string> = new Set([
  // V3
  `${V3_MLS}FetchKeyPackages`,
  `${V3_MLS}QueryGroupMessages`,
  `${V3_MLS}QueryWelcomeMessages`,
  `${V3_MLS}SubscribeGroupMessages`,
  `${V3_MLS}SubscribeWelcomeMessages`,
  `${V3_MLS}GetNewestGroupMessage`,
  `${V3_MLS}BatchQueryCommitLog`,
  `${V3_IDENTITY}GetIdentityUpdates`,
  `${V3_IDENTITY}GetInboxIds`,
  `${V3_IDENTITY}VerifySmartContractWalletSignatures`,
  // d14n
  GET_NODES,
  `${REPLICATION}QueryEnvelopes`,
  `${REPLICATION}GetNewestEnvelope`,
  `${REPLICATION}GetInboxIds`,
  `${REPLICATION}SubscribeEnvelopes`,
  "/grpc.health.v1.Health/Check",
]);

/**
 * Writes that need no save first: welcomes follow a commit the saved state already knows, and are sent again from
 * it. Every other write is saved first.
 */
const V3_WELCOMES = `${V3_MLS}SendWelcomeMessages`;

/** How the relay treats one call. `labels` name what a write carries, in V3's method names whatever the protocol. */
export type CallClass = { readonly kind: "read" } | { readonly kind: "write"; readonly savedFirst: boolean; readonly labels: readonly string[] };

const labelOf = (envelope: ClientEnvelopeMessage): string =>
  envelope.groupMessage
    ? "SendGroupMessages"
    : envelope.welcomeMessage
      ? "SendWelcomeMessages"
      : envelope.uploadKeyPackage
        ? "UploadKeyPackage"
        : envelope.identityUpdate
          ? "PublishIdentityUpdate"
          : "unknown-payload";

/**
 * Classifies a call by its path (and, for d14n's one write method, by what its request carries).
 * Unknown paths, and bodies that cannot be read, are writes saved first.
 */
export function classifyCall(path: string, requestMessage?: Uint8Array): CallClass {
  if (KNOWN_READS.has(path)) return { kind: "read" };
  const method = path.slice(path.lastIndexOf("/") + 1);
  if (path === V3_WELCOMES) return { kind: "write", savedFirst: false, labels: [method] };
  if (path === PUBLISH_CLIENT_ENVELOPES && requestMessage) {
    try {
      const { envelopes } = decodeMessage<{ envelopes: ClientEnvelopeMessage[] }>(PublishClientEnvelopesRequest, requestMessage);
      const labels = [...new Set(envelopes.map(labelOf))];
      const welcomesOnly = labels.length === 1 && labels[0] === "SendWelcomeMessages";
      return { kind: "write", savedFirst: !welcomesOnly, labels };
    } catch {
      return { kind: "write", savedFirst: true, labels: [method] };
    }
  }
  return { kind: "write", savedFirst: true, labels: [method] };
}

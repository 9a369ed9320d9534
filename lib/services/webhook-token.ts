import { createHmac } from "node:crypto";
import { secretsEqual } from "../shared/secrets.js";

/**
 * The webhook token for one group: base64url(HMAC-SHA256(secret, groupId)).
 * A leaked webhook URL therefore authorizes joins to its own group only.
 */
export function webhookToken(secret: string, groupId: string): string {
  return createHmac("sha256", secret).update(groupId).digest("base64url");
}

/** Whether `token` is the webhook token of `groupId`, compared in constant time. */
export function isValidWebhookToken(secret: string, groupId: string, token: string): boolean {
  return secretsEqual(token, webhookToken(secret, groupId));
}

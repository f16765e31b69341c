/**
 * Request authentication: the API key for document management and the signed-webhook check. Both compare secrets in
 * constant time; both refuse (never open) when the secret is not configured.
 *
 * @module
 */
import { sha256Hex } from "../../../src/digest.js";
import { constantTimeEqual, verifyWebhook } from "../../../src/webhook/signature.js";
import { ApiError } from "./errors.js";

/**
 * Checks `Authorization: Bearer <key>` against the configured key. Both sides are hashed first, so the comparison
 * takes the same time whatever the lengths and wherever the first difference is.
 */
export async function requireApiKey(authorization: string | undefined, apiKey: string | undefined): Promise<void> {
  if (!apiKey) throw new ApiError(503, "not_configured", "document management is disabled: the API_KEY secret is not set on this worker");
  const challenge = { "WWW-Authenticate": 'Bearer realm="taesr-edge"' };
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? "");
  if (!match) {
    throw new ApiError(401, "unauthorized", "missing API key: send the header `Authorization: Bearer <API_KEY>`", undefined, challenge);
  }
  const [given, expected] = await Promise.all([sha256Hex(match[1]!), sha256Hex(apiKey)]);
  if (!constantTimeEqual(given, expected)) throw new ApiError(401, "unauthorized", "invalid API key", undefined, challenge);
}

/**
 * Verifies a webhook's HMAC-SHA256 signature over `${timestamp}.${rawBody}` and its ±5-minute replay window
 * (src/webhook/signature.ts holds the scheme, shared with senders).
 */
export async function requireWebhookSignature(
  rawBody: string,
  headers: { get(name: string): string | null },
  secret: string | undefined,
  nowMs: number,
): Promise<void> {
  if (!secret) throw new ApiError(503, "not_configured", "webhooks are disabled: the WEBHOOK_SECRET secret is not set on this worker");
  const verdict = await verifyWebhook(secret, rawBody, headers, Math.floor(nowMs / 1000));
  if (!verdict.ok) throw new ApiError(401, "unauthorized", `webhook refused: ${verdict.message}`);
}

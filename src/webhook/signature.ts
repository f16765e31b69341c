/**
 * Webhook signatures: HMAC-SHA256 over `${timestamp}.${rawBody}`, sent as `X-TAESR-Signature: sha256=<hex>` beside
 * `X-TAESR-Timestamp: <unix seconds>`. Signing the timestamp with the body lets the receiver refuse replays outside a
 * window without keeping a nonce store. Platform-neutral (Web Crypto), so senders and the worker share one definition.
 *
 * @example
 *   const headers = await signWebhook(secret, body);            // sender
 *   const verdict = await verifyWebhook(secret, body, headers);  // receiver
 */

import { toHex } from "../digest.js";

export const SIGNATURE_HEADER = "X-TAESR-Signature";
export const TIMESTAMP_HEADER = "X-TAESR-Timestamp";
export const REPLAY_WINDOW_SECONDS = 300;

const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return toHex(mac);
}

export async function signWebhook(
  secret: string,
  rawBody: string,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<Record<typeof SIGNATURE_HEADER | typeof TIMESTAMP_HEADER, string>> {
  const timestamp = String(nowSeconds);
  return {
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: `sha256=${await hmacHex(secret, `${timestamp}.${rawBody}`)}`,
  };
}

export type WebhookVerdict =
  | { ok: true; timestamp: number }
  | { ok: false; reason: "missing_timestamp" | "bad_timestamp" | "stale_timestamp" | "missing_signature" | "bad_signature"; message: string };

/** Compares in time independent of where the strings differ, so the signature cannot be guessed byte by byte. */
export function constantTimeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  let difference = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  return difference === 0;
}

export async function verifyWebhook(
  secret: string,
  rawBody: string,
  headers: { get(name: string): string | null },
  nowSeconds: number = Math.floor(Date.now() / 1000),
): Promise<WebhookVerdict> {
  const timestampText = headers.get(TIMESTAMP_HEADER);
  if (!timestampText) return { ok: false, reason: "missing_timestamp", message: `missing ${TIMESTAMP_HEADER} header` };
  if (!/^\d{1,12}$/.test(timestampText)) {
    return { ok: false, reason: "bad_timestamp", message: `${TIMESTAMP_HEADER} must be unix seconds, got "${timestampText.slice(0, 40)}"` };
  }
  const timestamp = Number(timestampText);
  if (Math.abs(nowSeconds - timestamp) > REPLAY_WINDOW_SECONDS) {
    return {
      ok: false,
      reason: "stale_timestamp",
      message: `${TIMESTAMP_HEADER} is ${nowSeconds - timestamp} s from the server's clock; the window is ±${REPLAY_WINDOW_SECONDS} s`,
    };
  }
  const signature = headers.get(SIGNATURE_HEADER);
  if (!signature) return { ok: false, reason: "missing_signature", message: `missing ${SIGNATURE_HEADER} header` };
  const expected = `sha256=${await hmacHex(secret, `${timestampText}.${rawBody}`)}`;
  if (!constantTimeEqual(signature, expected)) {
    return { ok: false, reason: "bad_signature", message: `${SIGNATURE_HEADER} does not match the body and timestamp` };
  }
  return { ok: true, timestamp };
}

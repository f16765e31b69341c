/**
 * The origin's one credential: a secret shared with the edge, sent as `Authorization: Bearer <secret>`. Compared in
 * constant time over sha256 digests (as the edge compares its API key), so neither the length nor the position of the
 * first wrong character shows in the timing.
 *
 * @module
 */
import { sha256Hex } from "../../../src/digest.js";
import { constantTimeEqual } from "../../../src/webhook/signature.js";
import { ApiError } from "../../edge/src/errors.js";

const CHALLENGE = { "WWW-Authenticate": 'Bearer realm="taesr-origin"' };

/** Resolves when `authorization` carries `secret`; throws a 401 {@link ApiError} otherwise. */
export async function requireOriginSecret(authorization: string | undefined, secret: string): Promise<void> {
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? "");
  if (!match) {
    throw new ApiError(401, "unauthorized", "missing origin secret: send the header `Authorization: Bearer <ORIGIN_SECRET>`", undefined, CHALLENGE);
  }
  const [given, expected] = await Promise.all([sha256Hex(match[1]!), sha256Hex(secret)]);
  if (!constantTimeEqual(given, expected)) throw new ApiError(401, "unauthorized", "invalid origin secret", undefined, CHALLENGE);
}

/**
 * Request plumbing shared by the routes: body size limits, JSON parsing and zod validation that fail as `ApiError`s,
 * and access to the platform's `waitUntil`.
 *
 * @module
 */
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import type { Background } from "./contracts.js";
import { ApiError, invalidRequest } from "./errors.js";

/** The platform's waitUntil when there is one (Workers), else undefined so the caller awaits instead. */
export function background(c: Context): Background | undefined {
  try {
    const ctx = c.executionCtx;
    return (promise) => ctx.waitUntil(promise);
  } catch {
    return undefined;
  }
}

/** Refuses bodies over `maxBytes` with 413 before they are read into memory (Content-Length or streamed count). */
export function limit(maxBytes: number) {
  return bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `request body exceeds ${maxBytes} bytes`);
    },
  });
}

/** Parses a body as JSON whatever its Content-Type (curl -d sends form encoding by default). */
export function parseJsonText(text: string): unknown {
  if (text.trim() === "") throw new ApiError(400, "invalid_json", "request body is empty; send a JSON object");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, "invalid_json", `request body is not valid JSON: ${(error as Error).message}`);
  }
}

export function validate<Schema extends z.ZodType>(schema: Schema, value: unknown, what: string): z.infer<Schema> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidRequest(parsed.error, what);
  return parsed.data;
}

export async function readJson<Schema extends z.ZodType>(c: Context, schema: Schema, what: string): Promise<z.infer<Schema>> {
  return validate(schema, parseJsonText(await c.req.text()), what);
}

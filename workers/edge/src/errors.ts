/**
 * The API's one error shape, `{ error: { code, message, type, param?, issues? } }`, and the exception that carries it.
 * Routes throw `ApiError`; `app.onError` renders it — so every failure path answers JSON with a code a client can branch
 * on and a message a person can act on.
 *
 * `type` and `param` are OpenAI's error fields (the `openai` client and LangChain read `error.message`, `error.type`,
 * `error.code`, `error.param`), so an OpenAI client pointed at /v1/embeddings reports our errors as precisely as its own.
 *
 * @module
 */
import type { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { z } from "zod";

/** Every error code a client may branch on (the OpenAPI document lists these same values). */
export const ERROR_CODES = [
  "invalid_json",
  "invalid_request",
  "payload_too_large",
  "unauthorized",
  "not_found",
  "model_not_found",
  "method_not_allowed",
  "conflict",
  "invalid_model",
  "not_configured",
  "model_unavailable",
  "overloaded",
  "shutting_down",
  "queue_unavailable",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface Issue {
  /** Where in the input, e.g. "documents.3.id" ("" = the body itself). */
  path: string;
  message: string;
}

/** OpenAI's two broad classes: the request was wrong (4xx) or the server failed (5xx). */
export type ErrorType = "invalid_request_error" | "server_error";

export interface ErrorBody {
  error: {
    code: ErrorCode;
    message: string;
    type: ErrorType;
    /** The first offending field ("dimensions", "documents.3.id"); absent when the problem is not one field. */
    param?: string;
    issues?: Issue[];
  };
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly issues?: Issue[],
    /** Extra response headers (WWW-Authenticate, Allow). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "ApiError";
  }

  toBody(): ErrorBody {
    const param = this.issues?.[0]?.path;
    return {
      error: {
        code: this.code,
        message: this.message,
        type: this.status >= 500 ? "server_error" : "invalid_request_error",
        ...(param ? { param } : {}),
        ...(this.issues ? { issues: this.issues } : {}),
      },
    };
  }
}

/** A zod failure as a 400 whose message names the first problems, e.g. `query: expected string, received number`. */
export function invalidRequest(error: z.ZodError, what: string): ApiError {
  const issues: Issue[] = error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
  const summary = issues
    .slice(0, 3)
    .map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message))
    .join("; ");
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : "";
  return new ApiError(400, "invalid_request", `invalid ${what}: ${summary}${more}`, issues);
}

/**
 * Makes every failure of `app` answer in the one error shape: unknown routes 404, our `ApiError`s as thrown, Hono's own
 * exceptions (body limit, …) with their status, anything else a logged 500 that leaks no detail. `service` names the
 * process whose log holds the details ("worker", "origin").
 */
export function answerErrorsAsJson(app: Hono, service: string): void {
  app.notFound((c) => c.json(new ApiError(404, "not_found", `no route for ${c.req.method} ${c.req.path}`).toBody(), 404));
  app.onError((error, c) => {
    if (error instanceof ApiError) return c.json(error.toBody(), error.status, error.headers);
    if (error instanceof HTTPException) {
      // Raised by Hono itself (not by our routes): keep its status, give it our shape.
      const status = error.status as ApiError["status"];
      return c.json(new ApiError(status, status === 413 ? "payload_too_large" : "invalid_request", error.message || "bad request").toBody(), status);
    }
    console.error(`${service}: unhandled error on ${c.req.method} ${c.req.path}:`, error);
    return c.json(new ApiError(500, "internal", `internal error; the details are in the ${service}'s log`).toBody(), 500);
  });
}

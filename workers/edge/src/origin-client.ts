/**
 * The edge's client for the GPU origin (workers/origin): `POST /v1/embed` with the shared secret, a per-call timeout
 * and a {@link CircuitBreaker}. Platform-neutral (fetch and AbortSignal only), so it runs in workerd and in Node tests.
 *
 * Every way the origin can fail — too slow, unreachable, an error status, an answer that does not match the contract,
 * a circuit opened by earlier failures — surfaces as one {@link OriginUnavailableError} with a machine-readable
 * `reason`, so the caller has a single place to fall back to the local model and can say why in its response.
 * Nothing here throws anything else for an origin problem.
 *
 * @module
 * @example
 *   const origin = new OriginClient({ url: env.ORIGIN_URL, secret: env.ORIGIN_SECRET });
 *   try {
 *     const { embeddings } = await origin.embed([query], { dims: 128, depth: 6 });
 *   } catch (error) {
 *     if (!(error instanceof OriginUnavailableError)) throw error;
 *     // fall back to the local model at full depth; report error.reason
 *   }
 */
import { originEmbedResponseSchema, type OriginEmbedRequest, type OriginModelInfo, type OriginProvider } from "../../origin/src/contract.js";
import type { TokenVectors } from "../../../src/model/index.js";
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from "./circuit-breaker.js";

export type OriginFailureReason = "timeout" | "circuit_open" | `http_${number}` | "network" | "bad_response";

export class OriginUnavailableError extends Error {
  constructor(
    readonly reason: OriginFailureReason,
    message: string,
  ) {
    super(message);
    this.name = "OriginUnavailableError";
  }
}

export interface OriginClientOptions extends CircuitBreakerOptions {
  /** The origin's base URL, e.g. http://127.0.0.1:8790. */
  url: string;
  /** Sent as `Authorization: Bearer <secret>`. */
  secret: string;
  /** Longest a call may take, response body included. Default 2,000 ms. */
  timeoutMs?: number;
  /** Injected for tests; default the global fetch. */
  fetch?: typeof fetch;
}

export interface OriginEmbedCallOptions {
  dims: number;
  /** Recursion steps; omitted → the origin's deepest (what document indexing asks for). */
  depth?: number;
  /** Also each text's late-interaction token vectors (the origin's model must have the head). */
  tokenVectors?: boolean;
  /** Also each text's learned sparse terms, cut with these options (the origin's model must have the sparse head). */
  sparse?: { threshold: number; maxTerms: number };
  /** Embed each text as these passages pooled into one vector (the model's documentPassages). */
  passages?: { maxPieces: number; maxPassages: number };
}

export interface OriginEmbedding {
  /** One unit-length vector of `dims` components per text, in input order. */
  embeddings: Float32Array[];
  /** When asked for: one token matrix per text, in input order. */
  tokenVectors?: TokenVectors[];
  /** When asked for: each text's sparse terms (vocabulary id → weight), in input order. */
  sparse?: Record<number, number>[];
  dims: number;
  depth: number;
  model: OriginModelInfo;
  provider: OriginProvider;
}

export class OriginClient {
  private readonly endpoint: string;
  private readonly secret: string;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;
  private readonly breaker: CircuitBreaker;

  constructor(options: OriginClientOptions) {
    this.endpoint = new URL("/v1/embed", options.url).toString();
    this.secret = options.secret;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    // Bound to globalThis: workerd refuses a fetch called with another `this` ("Illegal invocation").
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.breaker = new CircuitBreaker(options);
  }

  get circuit(): CircuitState {
    return this.breaker.state;
  }

  /** Embeds `texts` on the origin, or throws {@link OriginUnavailableError} saying why it could not. */
  async embed(texts: readonly string[], options: OriginEmbedCallOptions): Promise<OriginEmbedding> {
    if (!this.breaker.tryAcquire()) {
      throw new OriginUnavailableError("circuit_open", "the origin failed repeatedly; calls are paused until its cooldown ends");
    }
    try {
      const result = await this.call(texts, options);
      this.breaker.recordSuccess();
      return result;
    } catch (error) {
      this.breaker.recordFailure();
      throw error;
    }
  }

  private async call(texts: readonly string[], options: OriginEmbedCallOptions): Promise<OriginEmbedding> {
    const request: OriginEmbedRequest = {
      input: [...texts],
      dims: options.dims,
      ...(options.depth === undefined ? {} : { depth: options.depth }),
      ...(options.tokenVectors ? { tokenVectors: true } : {}),
      ...(options.sparse ? { sparse: { threshold: options.sparse.threshold, maxTerms: options.sparse.maxTerms } } : {}),
      ...(options.passages ? { passages: { maxPieces: options.passages.maxPieces, maxPassages: options.passages.maxPassages } } : {}),
    };
    const signal = AbortSignal.timeout(this.timeoutMs);
    let body: unknown;
    try {
      const response = await this.fetch(this.endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.secret}` },
        body: JSON.stringify(request),
        signal,
      });
      if (!response.ok) {
        // Read (and so release) the body; its error message is worth keeping, but not worth failing over.
        const detail = await response.text().catch(() => "");
        throw new OriginUnavailableError(`http_${response.status}`, `the origin answered ${response.status}: ${detail.slice(0, 200)}`);
      }
      body = await response.json().catch((error: unknown) => {
        if (signal.aborted) throw error;
        throw new OriginUnavailableError("bad_response", `the origin's answer is not JSON: ${(error as Error).message}`);
      });
    } catch (error) {
      if (error instanceof OriginUnavailableError) throw error;
      if (signal.aborted) throw new OriginUnavailableError("timeout", `the origin did not answer within ${this.timeoutMs} ms`);
      throw new OriginUnavailableError("network", `the origin is unreachable: ${(error as Error).message}`);
    }
    return this.checked(body, texts.length, options);
  }

  /** The answer as the contract promises it, or bad_response: a wrong shape must not reach the index as vectors. */
  private checked(body: unknown, count: number, options: OriginEmbedCallOptions): OriginEmbedding {
    const parsed = originEmbedResponseSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new OriginUnavailableError("bad_response", `the origin's answer does not match the contract: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim());
    }
    const answer = parsed.data;
    const problem =
      answer.embeddings.length !== count
        ? `${answer.embeddings.length} embeddings for ${count} texts`
        : answer.dims !== options.dims
          ? `dims ${answer.dims}, asked ${options.dims}`
          : answer.embeddings.some((row) => row.length !== options.dims || !row.every(Number.isFinite))
            ? `an embedding is not ${options.dims} finite numbers`
            : (options.tokenVectors ? tokenVectorsProblem(answer.tokenVectors, count) : undefined) ??
              (options.sparse ? sparseTermsProblem(answer.sparse, count, options.sparse) : undefined);
    if (problem) throw new OriginUnavailableError("bad_response", `the origin's answer is inconsistent: ${problem}`);
    return {
      embeddings: answer.embeddings.map((row) => Float32Array.from(row)),
      ...(options.tokenVectors ? { tokenVectors: answer.tokenVectors!.map((m) => ({ count: m.count, dims: m.dims, data: Float32Array.from(m.data) })) } : {}),
      ...(options.sparse ? { sparse: answer.sparse!.map((pairs) => Object.fromEntries(pairs) as Record<number, number>) } : {}),
      dims: answer.dims,
      depth: answer.depth,
      model: answer.model,
      provider: answer.provider,
    };
  }
}

/** What is wrong with the token vectors an answer carries for `count` texts, or undefined when they are sound. */
function tokenVectorsProblem(matrices: readonly { count: number; dims: number; data: readonly number[] }[] | undefined, count: number): string | undefined {
  if (!matrices) return "no token vectors, which were asked for";
  if (matrices.length !== count) return `${matrices.length} token matrices for ${count} texts`;
  const bad = matrices.findIndex((m) => m.data.length !== m.count * m.dims || !m.data.every(Number.isFinite));
  return bad < 0 ? undefined : `token matrix ${bad} is not count × dims finite numbers`;
}

/**
 * What is wrong with the sparse terms an answer carries for `count` texts, or undefined when they are what was asked:
 * per text at most `maxTerms` distinct vocabulary ids, each weight finite and above `threshold`.
 */
function sparseTermsProblem(
  lists: readonly (readonly [number, number])[][] | undefined,
  count: number,
  cut: { threshold: number; maxTerms: number },
): string | undefined {
  if (!lists) return "no sparse terms, which were asked for";
  if (lists.length !== count) return `${lists.length} sparse term lists for ${count} texts`;
  const bad = lists.findIndex(
    (pairs) => pairs.length > cut.maxTerms || new Set(pairs.map(([id]) => id)).size !== pairs.length || !pairs.every(([, w]) => Number.isFinite(w) && w > cut.threshold),
  );
  return bad < 0 ? undefined : `sparse terms ${bad} are not at most ${cut.maxTerms} distinct ids with finite weights above ${cut.threshold}`;
}

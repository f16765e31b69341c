/**
 * A small stand-in for Upstash Vector's REST API on loopback, for driving the real `@upstash/vector` SDK in tests (no
 * live index is reachable from CI). It serves what the adapter calls — upsert, query, fetch, range, delete, info, with
 * and without a namespace — on a hybrid index, following Upstash's documentation:
 *   - dense scores are (1 + cos)/2; sparse scores the dot product over shared dimensions, each weighted with
 *     ln((N − n + 0.5)/(n + 0.5)) under `weightingStrategy: "IDF"`; results best first, at most topK, ties by id;
 *   - a query with both a vector and a sparse vector would be fused by Upstash; the fake refuses it (422), since the
 *     adapter must fuse itself;
 *   - filters are parsed and evaluated (the grammar the filtering page documents, minus GLOB and array indexing), with
 *     the operand-type assumptions upstash-filter.ts states: a comparison on a missing field or a value of another type
 *     is false; `=`/`!=`/`IN`/`NOT IN` look at scalars, `CONTAINS`/`NOT CONTAINS` at arrays;
 *   - range pages through a namespace in id order; its cursor is the offset of the next vector ("0" — or "", as the
 *     Python SDK sends — to start, as the documentation's example shows "2" after two vectors), and `nextCursor` is ""
 *     once no vectors follow the page;
 *   - errors answer `{ error, status }` with the HTTP status, as Upstash does; a bad bearer token is a 401.
 * Every request is recorded (`requests`), and `failNext` makes the next one fail as told.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

interface StoredVector {
  id: string;
  vector: number[];
  sparseVector: { indices: number[]; values: number[] };
  metadata?: Record<string, unknown>;
  data?: string;
}

export interface RecordedRequest {
  path: string;
  body: any;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

// ---- filter language -------------------------------------------------------------------------------------------

type Literal = string | number | boolean;
type FilterNode =
  | { kind: "and" | "or"; parts: FilterNode[] }
  | { kind: "has"; field: string; negated: boolean }
  | { kind: "compare"; field: string; op: string; value: Literal }
  | { kind: "in"; field: string; negated: boolean; values: Literal[] }
  | { kind: "contains"; field: string; negated: boolean; value: Literal };

type Token = { type: "word" | "op" | "punct"; text: string } | { type: "literal"; value: Literal };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "'" || c === '"') {
      let value = "";
      i++;
      while (i < input.length && input[i] !== c) {
        if (input[i] === "\\") i++;
        if (i >= input.length) break;
        value += input[i++];
      }
      if (input[i] !== c) throw new HttpError(400, `unterminated string in filter: ${input}`);
      i++;
      tokens.push({ type: "literal", value });
    } else if (c === "(" || c === ")" || c === ",") {
      tokens.push({ type: "punct", text: c });
      i++;
    } else if ("=!<>".includes(c)) {
      const two = input.slice(i, i + 2);
      const text = ["!=", "<=", ">="].includes(two) ? two : c;
      if (text === "!") throw new HttpError(400, "bad operator !");
      tokens.push({ type: "op", text });
      i += text.length;
    } else if (/[-\d]/.test(c)) {
      const match = /^-?\d+(\.\d+)?/.exec(input.slice(i));
      if (!match) throw new HttpError(400, `bad number in filter at ${i}`);
      tokens.push({ type: "literal", value: Number(match[0]) });
      i += match[0].length;
    } else {
      const match = /^[A-Za-z_][A-Za-z0-9_.\-]*/.exec(input.slice(i));
      if (!match) throw new HttpError(400, `unexpected character ${c} in filter`);
      const word = match[0];
      if (/^(true|false)$/i.test(word)) tokens.push({ type: "literal", value: word.toLowerCase() === "true" });
      else tokens.push({ type: "word", text: word });
      i += word.length;
    }
  }
  return tokens;
}

export function parseFilter(input: string): FilterNode {
  const tokens = tokenize(input);
  let at = 0;
  const peekWord = (word: string): boolean => {
    const token = tokens[at];
    return token?.type === "word" && token.text.toUpperCase() === word;
  };
  const expectWord = (word: string): void => {
    if (!peekWord(word)) throw new HttpError(400, `expected ${word} in filter: ${input}`);
    at++;
  };
  const expectPunct = (text: string): void => {
    const token = tokens[at];
    if (token?.type !== "punct" || token.text !== text) throw new HttpError(400, `expected ${text} in filter: ${input}`);
    at++;
  };
  const literal = (): Literal => {
    const token = tokens[at++];
    if (token?.type !== "literal") throw new HttpError(400, `expected a literal in filter: ${input}`);
    return token.value;
  };
  const atom = (): FilterNode => {
    const token = tokens[at];
    if (token?.type === "punct" && token.text === "(") {
      at++;
      const inner = expression();
      expectPunct(")");
      return inner;
    }
    if (peekWord("HAS")) {
      at++;
      const negated = peekWord("NOT");
      if (negated) at++;
      expectWord("FIELD");
      const field = tokens[at++];
      if (field?.type !== "word") throw new HttpError(400, `expected a field in filter: ${input}`);
      return { kind: "has", field: field.text, negated };
    }
    if (token?.type !== "word") throw new HttpError(400, `expected a field in filter: ${input}`);
    at++;
    const field = token.text;
    const next = tokens[at];
    if (next?.type === "op") {
      at++;
      return { kind: "compare", field, op: next.text, value: literal() };
    }
    const negated = peekWord("NOT");
    if (negated) at++;
    if (peekWord("IN")) {
      at++;
      expectPunct("(");
      const values = [literal()];
      while (tokens[at]?.type === "punct" && (tokens[at] as { text: string }).text === ",") {
        at++;
        values.push(literal());
      }
      expectPunct(")");
      return { kind: "in", field, negated, values };
    }
    expectWord("CONTAINS");
    return { kind: "contains", field, negated, value: literal() };
  };
  const conjunction = (): FilterNode => {
    const parts = [atom()];
    while (peekWord("AND")) {
      at++;
      parts.push(atom());
    }
    return parts.length === 1 ? parts[0]! : { kind: "and", parts };
  };
  const expression = (): FilterNode => {
    const parts = [conjunction()];
    while (peekWord("OR")) {
      at++;
      parts.push(conjunction());
    }
    return parts.length === 1 ? parts[0]! : { kind: "or", parts };
  };
  const node = expression();
  if (at !== tokens.length) throw new HttpError(400, `trailing input in filter: ${input}`);
  return node;
}

const MISSING = Symbol("missing");

function lookup(metadata: unknown, path: string): unknown {
  let value = metadata;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, key)) return MISSING;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

const isScalar = (value: unknown): value is Literal => ["string", "number", "boolean"].includes(typeof value);

export function evaluateFilter(node: FilterNode, metadata: unknown): boolean {
  switch (node.kind) {
    case "and":
      return node.parts.every((part) => evaluateFilter(part, metadata));
    case "or":
      return node.parts.some((part) => evaluateFilter(part, metadata));
    case "has":
      return (lookup(metadata, node.field) !== MISSING) !== node.negated;
    case "compare": {
      const value = lookup(metadata, node.field);
      if (!isScalar(value) || typeof value !== typeof node.value) return false;
      switch (node.op) {
        case "=":
          return value === node.value;
        case "!=":
          return value !== node.value;
        default: {
          if (typeof value !== "number") return false;
          const bound = node.value as number;
          return node.op === "<" ? value < bound : node.op === "<=" ? value <= bound : node.op === ">" ? value > bound : value >= bound;
        }
      }
    }
    case "in": {
      const value = lookup(metadata, node.field);
      if (!isScalar(value)) return false;
      return node.values.includes(value) !== node.negated;
    }
    case "contains": {
      const value = lookup(metadata, node.field);
      if (!Array.isArray(value)) return false;
      return value.includes(node.value) !== node.negated;
    }
  }
}

// ---- the server ----------------------------------------------------------------------------------------------

export class FakeUpstash {
  readonly requests: RecordedRequest[] = [];
  private readonly namespaces = new Map<string, Map<string, StoredVector>>();
  private failure: { status: number; body: string; contentType: string } | undefined;
  private server: Server | undefined;
  url = "";

  constructor(
    readonly token = "test-token",
    readonly dimension = 128,
  ) {}

  async start(): Promise<this> {
    this.server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.server?.close((error) => (error ? reject(error) : resolve())));
  }

  /** The next request answers `status` with this body (JSON `{error, status}` unless raw text is given). */
  failNext(status: number, error: string, raw?: string): void {
    this.failure = raw === undefined
      ? { status, body: JSON.stringify({ error, status }), contentType: "application/json" }
      : { status, body: raw, contentType: "text/html" };
  }

  /** The stored vectors of a namespace ("" = default), by id. */
  stored(namespace = ""): Map<string, StoredVector> {
    let vectors = this.namespaces.get(namespace);
    if (!vectors) this.namespaces.set(namespace, (vectors = new Map()));
    return vectors;
  }

  /** Recorded requests to one endpoint (e.g. "query", "upsert/ns"). */
  calls(path: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path === path);
  }

  reset(): void {
    this.requests.length = 0;
    this.namespaces.clear();
    this.failure = undefined;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const path = (request.url ?? "/").replace(/^\//, "");
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    this.requests.push({ path, body });
    const send = (status: number, payload: string, contentType = "application/json"): void => {
      response.writeHead(status, { "content-type": contentType });
      response.end(payload);
    };
    if (this.failure) {
      const { status, body: payload, contentType } = this.failure;
      this.failure = undefined;
      return send(status, payload, contentType);
    }
    try {
      if (request.method !== "POST") throw new HttpError(405, "method not allowed");
      if (request.headers.authorization !== `Bearer ${this.token}`) throw new HttpError(401, "Unauthorized: Invalid auth token");
      const [endpoint, namespace = ""] = path.split("/");
      send(200, JSON.stringify({ result: this.route(endpoint ?? "", decodeURIComponent(namespace), body) }));
    } catch (error) {
      const status = error instanceof HttpError ? error.status : 500;
      send(status, JSON.stringify({ error: (error as Error).message, status }));
    }
  }

  private route(endpoint: string, namespace: string, body: any): unknown {
    switch (endpoint) {
      case "upsert":
        return this.upsert(namespace, Array.isArray(body) ? body : [body]);
      case "query":
        return this.query(namespace, body);
      case "fetch":
        return (body.ids as string[]).map((id) => {
          const stored = this.stored(namespace).get(id);
          return stored ? this.view(stored, body) : null;
        });
      case "range":
        return this.range(namespace, body);
      case "delete": {
        const vectors = this.stored(namespace);
        return { deleted: (body.ids as string[]).filter((id) => vectors.delete(id)).length };
      }
      case "info": {
        const namespaces = Object.fromEntries([...this.namespaces].map(([name, vectors]) => [name, { vectorCount: vectors.size, pendingVectorCount: 0 }]));
        const total = [...this.namespaces.values()].reduce((sum, vectors) => sum + vectors.size, 0);
        return { vectorCount: total, pendingVectorCount: 0, indexSize: 0, dimension: this.dimension, similarityFunction: "COSINE", namespaces };
      }
      default:
        throw new HttpError(404, `no endpoint ${endpoint}`);
    }
  }

  private upsert(namespace: string, vectors: any[]): string {
    for (const vector of vectors) {
      if (typeof vector.id !== "string" || vector.id === "") throw new HttpError(422, "Vector ID cannot be empty");
      if (!Array.isArray(vector.vector) || !vector.sparseVector) throw new HttpError(422, "Hybrid indexes need both a dense and a sparse vector");
      if (vector.vector.length !== this.dimension) throw new HttpError(422, `Invalid vector dimension: ${vector.vector.length}, expected: ${this.dimension}`);
      const { indices, values } = vector.sparseVector;
      if (indices.length !== values.length || indices.length > 1000 || new Set(indices).size !== indices.length) {
        throw new HttpError(422, "Invalid sparse vector");
      }
      if (indices.some((index: number) => !Number.isInteger(index) || index < 0 || index > 0x7fffffff)) throw new HttpError(422, "Invalid sparse index");
    }
    for (const vector of vectors) this.stored(namespace).set(vector.id, structuredClone(vector));
    return "Success";
  }

  private query(namespace: string, body: any): unknown[] {
    const { vector, sparseVector, topK = 10, filter, weightingStrategy } = body;
    if (vector && sparseVector) throw new HttpError(422, "fake Upstash: fused hybrid queries are not implemented (the adapter fuses itself)");
    if (!vector && !sparseVector) throw new HttpError(422, "either vector or sparseVector is required");
    const predicate = filter ? parseFilter(filter) : undefined;
    const all = [...this.stored(namespace).values()];
    const candidates = predicate ? all.filter((stored) => evaluateFilter(predicate, stored.metadata)) : all;
    let scored: { stored: StoredVector; score: number }[];
    if (vector) {
      if (vector.length !== this.dimension) throw new HttpError(422, `Invalid vector dimension: ${vector.length}, expected: ${this.dimension}`);
      scored = candidates.map((stored) => ({ stored, score: (1 + cosine(vector, stored.vector)) / 2 }));
    } else {
      // IDF over the whole namespace, as Upstash keeps it per token.
      const df = new Map<number, number>();
      for (const stored of all) for (const index of stored.sparseVector.indices) df.set(index, (df.get(index) ?? 0) + 1);
      const idf = (index: number): number => {
        if (weightingStrategy !== "IDF") return 1;
        const n = df.get(index) ?? 0;
        return Math.log((all.length - n + 0.5) / (n + 0.5));
      };
      scored = candidates.flatMap((stored) => {
        let score = 0;
        let shared = false;
        sparseVector.indices.forEach((index: number, i: number) => {
          const at = stored.sparseVector.indices.indexOf(index);
          if (at < 0) return;
          shared = true;
          score += sparseVector.values[i] * stored.sparseVector.values[at]! * idf(index);
        });
        return shared ? [{ stored, score }] : [];
      });
    }
    scored.sort((a, b) => b.score - a.score || (a.stored.id < b.stored.id ? -1 : 1));
    return scored.slice(0, topK).map(({ stored, score }) => ({ ...this.view(stored, body), score }));
  }

  private range(namespace: string, body: any): { nextCursor: string; vectors: Record<string, unknown>[] } {
    const { cursor, limit } = body;
    const text = String(cursor ?? "");
    if (!/^\d*$/.test(text)) throw new HttpError(400, `Invalid cursor: ${text}`);
    if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, `Invalid limit: ${limit}`);
    const start = Number(text || "0");
    const ordered = [...this.stored(namespace).values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const page = ordered.slice(start, start + limit);
    const end = start + page.length;
    return { nextCursor: end < ordered.length ? String(end) : "", vectors: page.map((stored) => this.view(stored, body)) };
  }

  private view(stored: StoredVector, options: any): Record<string, unknown> {
    return {
      id: stored.id,
      ...(options.includeMetadata && stored.metadata ? { metadata: stored.metadata } : {}),
      ...(options.includeData && stored.data !== undefined ? { data: stored.data } : {}),
      ...(options.includeVectors ? { vector: stored.vector, sparseVector: stored.sparseVector } : {}),
    };
  }
}

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((x, i) => {
    dot += x * b[i]!;
    na += x * x;
    nb += b[i]! * b[i]!;
  });
  return dot / Math.sqrt(na * nb);
}

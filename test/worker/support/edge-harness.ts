/// <reference types="@cloudflare/vitest-pool-workers/types" />
/**
 * Builds the edge app for worker tests from the REAL parts: the bundled model (model-loader.ts → bundled-model.ts, the
 * artifact `npm run bundle` selected), the SQLite IndexShard Durable Object and KV. Only the secrets and the clock (for
 * the webhook window) are test-controlled, and the embedder is wrapped to count model calls.
 *
 * Every harness gets its own index (shard-name prefix), so tests never see each other's documents whatever the pool's
 * storage isolation. The index has 3 shards unless a test asks otherwise, so every API test also exercises the fan-out.
 */
import { env } from "cloudflare:workers";
import { createApp } from "../../../workers/edge/src/app.js";
import type { AppDeps, EdgeModel, EmbedOptions, EmbedResult, Embedder } from "../../../workers/edge/src/contracts.js";
import { loadEdgeModel } from "../../../workers/edge/src/model-loader.js";
import { ShardedIndex, shardNames } from "../../../workers/edge/src/sharded-index.js";
import { edgeDeps, modelDeployments, shardClient } from "../../../workers/edge/src/wiring.js";

export const DEFAULT_TEST_SHARDS = 3;

export const API_KEY = "test-api-key-0123456789";
export const WEBHOOK_SECRET = "test-webhook-secret-abcdef";

/** Wraps an embedder to count model calls (a cache hit or an unchanged document must not make one). */
export class CountingEmbedder implements Embedder {
  calls = 0;
  /** Routing runs no model, so it is passed through uncounted (and only when the wrapped embedder can route). */
  readonly route?: Embedder["route"];
  constructor(private readonly inner: Embedder) {
    if (inner.route) this.route = (texts, options) => inner.route!(texts, options);
  }
  embed(texts: readonly string[], options?: EmbedOptions): Promise<EmbedResult> {
    this.calls++;
    return this.inner.embed(texts, options);
  }
}

export interface Harness {
  app: ReturnType<typeof createApp>;
  deps: AppDeps;
  embedder: CountingEmbedder;
  model: EdgeModel;
  /** The Durable Object names holding this harness's index. */
  shardNames: string[];
  /** Moves the app's clock (webhook replay window). */
  setNow(ms: number): void;
  /** A request to the app; `json` becomes the body, the API key is sent unless `apiKey: null`. */
  request(path: string, init?: RequestInit & { json?: unknown; apiKey?: string | null }): Promise<Response>;
}

/**
 * An app on the real bindings. `model` replaces the bundled model; `shards` sets the index's shard count;
 * `overrides` replace any dependency.
 */
export async function harness(overrides: Partial<AppDeps> & { model?: EdgeModel; shards?: number; liveModels?: boolean } = {}): Promise<Harness> {
  const { model: chosen, shards = DEFAULT_TEST_SHARDS, liveModels = false, ...depOverrides } = overrides;
  const model = chosen ?? (await loadEdgeModel(env));
  const embedder = new CountingEmbedder(model.embedder);
  const counted: EdgeModel = { ...model, embedder };
  let now = Date.now();
  const indexName = `test-${crypto.randomUUID()}`;
  const names = shardNames(indexName, shards);
  const deps: AppDeps = {
    ...edgeDeps(env),
    loadModel: async () => counted,
    index: new ShardedIndex(names, (name) => shardClient(env, name)),
    indexName,
    // Live model updates over the real ModelRollout object, KV pointer and R2 bucket, for this harness's own index;
    // off by default, so the app serves `loadModel` over `index` (the worker's own route is for its default index).
    models: liveModels ? modelDeployments(env, { name: indexName, shards }) : undefined,
    secrets: { apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET },
    now: () => now,
    ...depOverrides,
  };
  const app = createApp(deps);
  return {
    app,
    deps,
    embedder,
    model: counted,
    shardNames: names,
    setNow: (ms) => {
      now = ms;
    },
    async request(path, init = {}) {
      const { json, apiKey, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (json !== undefined) headers.set("content-type", "application/json");
      if (apiKey !== null) headers.set("authorization", `Bearer ${apiKey ?? API_KEY}`);
      return app.request(path, { ...rest, headers, body: json !== undefined ? JSON.stringify(json) : rest.body }, env);
    },
  };
}

export async function json<T = Record<string, unknown>>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

/**
 * Runs the origin: listens at once (so /health answers and /ready says 503 while the model loads), loads the model,
 * micro-batches /v1/embed through it, and shuts down gracefully — /ready and new embeds answer 503, every accepted
 * request is still answered, then the server closes.
 *
 * @module
 * @example
 *   const origin = await startOrigin({ secret, loadModel: () => loadOriginModel({ dir, provider: "auto" }) });
 *   await origin.loaded;
 *   // … POST `${origin.url}/v1/embed` …
 *   await origin.shutdown();
 */
import { serve } from "@hono/node-server";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createOriginApp, parseBatchKey, type EmbeddedRow, type OriginStatus } from "./app.js";
import { MicroBatcher } from "./batcher.js";
import type { OriginModel } from "./origin-model.js";

export interface BatchSettings {
  /** Most texts per model call. */
  maxBatch: number;
  /** Longest a text waits for others to batch with. */
  maxWaitMs: number;
  /** Most texts waiting; beyond it requests get 429. */
  maxQueue: number;
}

export const DEFAULT_BATCH_SETTINGS: BatchSettings = { maxBatch: 32, maxWaitMs: 5, maxQueue: 1024 };

export interface OriginServerOptions extends Partial<BatchSettings> {
  /** The bearer secret every /v1/embed request must carry. */
  secret: string;
  /** Default 127.0.0.1: the origin is meant to sit behind the edge, not face the internet by accident. */
  host?: string;
  /** 0 (the default) picks a free port; `url` says which. */
  port?: number;
  /** Loads the model; the server answers /health (and 503 on /ready) while it runs. */
  loadModel(): Promise<OriginModel>;
  /** How long shutdown waits for open connections after the last answer before cutting them. Default 10 s. */
  closeTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface OriginServer {
  url: string;
  /** Resolves with the model once loaded; rejects when loading failed (the server keeps answering 503). */
  loaded: Promise<OriginModel>;
  status(): OriginStatus;
  /** Drains and closes; idempotent. Resolves once the server is closed and the model released. */
  shutdown(): Promise<void>;
}

export async function startOrigin(options: OriginServerOptions): Promise<OriginServer> {
  if (!options.secret) throw new Error("the origin needs a shared secret (--secret or ORIGIN_SECRET)");
  const settings: BatchSettings = {
    maxBatch: options.maxBatch ?? DEFAULT_BATCH_SETTINGS.maxBatch,
    maxWaitMs: options.maxWaitMs ?? DEFAULT_BATCH_SETTINGS.maxWaitMs,
    maxQueue: options.maxQueue ?? DEFAULT_BATCH_SETTINGS.maxQueue,
  };
  const log = options.log ?? ((message: string) => console.log(message));
  const status: OriginStatus = { phase: "loading", model: null };

  const batcher = new MicroBatcher<EmbeddedRow>({
    ...settings,
    run: async (key, texts) => {
      // The batcher runs only after the route checked the phase, and draining keeps the model: it is there.
      const { embeddings, depth, tokenVectors, sparse } = await status.model!.embed(texts, parseBatchKey(key));
      return embeddings.map((embedding, i) => ({
        embedding,
        depth,
        ...(tokenVectors ? { tokenVectors: tokenVectors[i]! } : {}),
        ...(sparse ? { sparse: sparse[i]! } : {}),
      }));
    },
  });
  const app = createOriginApp({ secret: options.secret, batcher, status: () => status, settings });

  const host = options.host ?? "127.0.0.1";
  const { server, port } = await listen(app.fetch, host, options.port ?? 0);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const loaded = options.loadModel().then(
    (model) => {
      status.model = model;
      if (status.phase === "loading") status.phase = "ready";
      return model;
    },
    (error: unknown) => {
      status.loadError = error instanceof Error ? error.message : String(error);
      if (status.phase === "loading") status.phase = "failed";
      throw error;
    },
  );
  // Callers that never look at `loaded` must not see an unhandled rejection; /ready and /health report the failure.
  loaded.catch(() => undefined);

  let shuttingDown: Promise<void> | null = null;
  const shutdown = () =>
    (shuttingDown ??= (async () => {
      status.phase = "draining";
      log("origin: draining — /ready and new embeds answer 503; finishing accepted requests");
      await batcher.drain();
      await closeServer(server, options.closeTimeoutMs ?? 10_000);
      const model = await loaded.catch(() => null);
      await model?.release();
      log(`origin: stopped after ${batcher.stats().batchesRun} batches`);
    })());

  return { url, loaded, status: () => status, shutdown };
}

function listen(fetch: (request: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, (info: AddressInfo) => {
      server.off("error", reject);
      resolve({ server: server as Server, port: info.port });
    });
    server.once("error", reject);
  });
}

/**
 * Stops listening and resolves once every connection is closed: idle keep-alive connections at once, busy ones after
 * their answer (they carry `Connection: close` while draining), any left after `timeoutMs` cut.
 */
function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * Waiting for the indexing queue to drain, seen from outside: webhooks are answered 202 before indexing, so a client
 * that needs the documents searchable polls `/v1/health` until the index holds the number it expects — or until the
 * count stops moving, which is what a corpus with already-indexed or duplicate ids looks like.
 *
 * @example
 *   const count = await waitForDocuments(url, 2012, { onProgress: (n) => bar.update(n) });
 */

export interface WaitOptions {
  /** Called with every new count. */
  onProgress?(documents: number): void;
  /** Done when the count has not changed for this long (default 15 s: longer than the queue's batch timeout and a retry). */
  stallMs?: number;
  /** Give up (throw) after this long (default 10 minutes). */
  timeoutMs?: number;
  pollMs?: number;
}

export async function indexedDocuments(url: string): Promise<number> {
  const response = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`GET ${url}/v1/health answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  const body = (await response.json()) as { index?: { documents?: number } };
  if (typeof body.index?.documents !== "number") throw new Error(`GET ${url}/v1/health did not report index.documents`);
  return body.index.documents;
}

/** Polls until at least `target` documents are indexed or the count stalls; resolves with the last count. */
export async function waitForDocuments(url: string, target: number, options: WaitOptions = {}): Promise<{ documents: number; reached: boolean }> {
  const { stallMs = 15_000, timeoutMs = 600_000, pollMs = 500 } = options;
  const started = Date.now();
  let last = -1;
  let changedAt = Date.now();
  for (;;) {
    let documents: number;
    try {
      documents = await indexedDocuments(url);
    } catch (error) {
      // Under wrangler dev the consumer's embedding holds the one isolate, so health can time out: busy, not stalled.
      if (Date.now() - started >= timeoutMs) throw error;
      changedAt = Date.now();
      continue;
    }
    if (documents !== last) {
      last = documents;
      changedAt = Date.now();
      options.onProgress?.(documents);
    }
    if (documents >= target) return { documents, reached: true };
    if (Date.now() - changedAt >= stallMs) return { documents, reached: false };
    if (Date.now() - started >= timeoutMs) throw new Error(`the index held ${documents} of ${target} documents after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

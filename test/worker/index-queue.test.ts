/**
 * The indexing queue inside workerd, over the real IndexShard and IndexLedger Durable Objects and KV: the producer's
 * message splitting within Queues' limits; the consumer's writes, per-message acks, retries with exponential backoff,
 * dead letters and deletes that leave no trace; the ordering guarantee; and the issue's idempotency test — the same
 * batch delivered many times at once, an origin that fails part of the time, a local model that fails part of the
 * time (so messages are retried), deletes and newer versions interleaved — after which every shard holds exactly the
 * expected documents, one copy each.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { EdgeModel } from "../../workers/edge/src/contracts.js";
import type { OriginEmbedApi } from "../../workers/edge/src/document-embedder.js";
import { backoffSeconds } from "../../workers/edge/src/index-consumer.js";
import { QUEUE_LIMITS, jsonBytes, webhookMessages, type IndexMessage } from "../../workers/edge/src/index-queue.js";
import { contentHash } from "../../workers/edge/src/indexer.js";
import { OriginUnavailableError } from "../../workers/edge/src/origin-client.js";
import type { DocumentInput } from "../../workers/edge/src/schemas.js";
import { shardOf } from "../../workers/edge/src/sharded-index.js";
import { DEFAULT_SHARD, shardClient } from "../../workers/edge/src/wiring.js";
import { signWebhook } from "../../src/webhook/signature.js";
import { WEBHOOK_SECRET, harness, json, type Harness } from "./support/edge-harness.js";
import { RecordingQueue, consumerFor, deliver, deliverToWorker } from "./support/queue-harness.js";

const TOPICS = ["glaciers", "compost", "orbits", "bicycles", "sourdough", "tides", "volcanoes", "beekeeping"];

function corpus(count: number, revision = 0, prefix = "doc"): DocumentInput[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${prefix}-${i}`,
    title: `${TOPICS[i % TOPICS.length]} note ${i}`,
    text: `Revision ${revision} of a short note about ${TOPICS[i % TOPICS.length]} number ${i}.`,
  }));
}

function upsert(documents: DocumentInput[], version: number, key = `k${version}`): IndexMessage {
  return { kind: "upsert", key, version, documents };
}

/** Every shard's stats and which shards hold each id: the ground truth, read from the Durable Objects themselves. */
async function shardContents(h: Harness, ids: readonly string[]) {
  const shards = h.shardNames.map((name) => shardClient(env, name));
  const stats = await Promise.all(shards.map((s) => s.stats()));
  const holders = new Map<string, { shard: number; contentHash: string }[]>();
  for (const [shard, client] of shards.entries()) {
    for (const id of ids) {
      const stored = await client.get(id);
      if (stored) holders.set(id, [...(holders.get(id) ?? []), { shard, contentHash: stored.contentHash }]);
    }
  }
  return { documents: stats.reduce((n, s) => n + s.documents, 0), postings: stats.reduce((n, s) => n + s.postings, 0), holders };
}

describe("indexing queue: producer", () => {
  it("splits a large webhook into messages within the queue's limits and sendBatch calls within its batch limits", async () => {
    const queue = new RecordingQueue();
    const h = await harness({ indexQueue: queue });
    // 200 documents of ~30 KB: ~6 MB in all, 3 to a message.
    const documents = Array.from({ length: 200 }, (_, i) => ({ id: `big-${i}`, title: `t${i}`, text: `${"é".repeat(15_000)} ${i}` }));
    const body = JSON.stringify({ event: "upsert", documents });
    const response = await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, headers: await signWebhook(WEBHOOK_SECRET, body), body });
    expect(response.status).toBe(202);
    expect(await json(response)).toEqual({ event: "upsert", queued: 200, ids: documents.map((d) => d.id) });

    const messages = queue.messages;
    expect(messages.length).toBeGreaterThan(1);
    for (const message of messages) expect(jsonBytes(message)).toBeLessThanOrEqual(QUEUE_LIMITS.messageBytes);
    for (const batch of queue.batches) {
      expect(batch.length).toBeLessThanOrEqual(QUEUE_LIMITS.batchMessages);
      expect(batch.reduce((n, m) => n + jsonBytes(m.body), 0)).toBeLessThanOrEqual(QUEUE_LIMITS.batchBytes);
      for (const m of batch) expect(m.contentType).toBe("json");
    }
    // Every document exactly once, in order, all with the webhook's one version and distinct keys.
    expect(messages.flatMap((m) => (m.kind === "upsert" ? m.documents.map((d) => d.id) : []))).toEqual(documents.map((d) => d.id));
    expect(new Set(messages.map((m) => m.version)).size).toBe(1);
    expect(new Set(messages.map((m) => m.key)).size).toBe(messages.length);
  });

  it("refuses (413) a document too large for one message, naming it, and queues nothing", async () => {
    const queue = new RecordingQueue();
    const h = await harness({ indexQueue: queue });
    const documents = [...corpus(2), { id: "huge", text: "字".repeat(60_000) }];
    const body = JSON.stringify({ event: "upsert", documents });
    const response = await h.request("/v1/webhooks/index", { method: "POST", apiKey: null, headers: await signWebhook(WEBHOOK_SECRET, body), body });
    expect(response.status).toBe(413);
    const error = (await json<{ error: { code: string; message: string; param: string } }>(response)).error;
    expect(error).toMatchObject({ code: "payload_too_large", param: "documents.2" });
    expect(error.message).toMatch(/document "huge" \(documents\.2\) takes \d+ bytes .* POST \/v1\/documents\. Nothing was queued\./);
    expect(queue.batches).toHaveLength(0);
  });

  it("splits deletes by size too", () => {
    // 256 ids of 240 three-byte characters: ~185 KB, more than one message holds.
    const ids = Array.from({ length: 256 }, (_, i) => `${"字".repeat(240)}-${i}`);
    const messages = webhookMessages({ event: "delete", ids }, 7, "w");
    expect(messages).toHaveLength(2);
    for (const message of messages) expect(jsonBytes(message)).toBeLessThanOrEqual(QUEUE_LIMITS.messageBytes);
    expect(messages.flatMap((m) => (m.kind === "delete" ? m.ids : []))).toEqual(ids);
    expect(messages.map((m) => m.key)).toEqual(messages.map((_, i) => `w/${i + 1}`));
  });
});

describe("indexing queue: consumer", () => {
  it("writes a message's documents, acknowledges it, and a redelivery embeds nothing", async () => {
    const h = await harness();
    const consumer = consumerFor(h);
    const first = await deliver(consumer, [upsert(corpus(5), 10)]);
    expect(first.acked).toEqual(first.ids);
    expect(first.retried).toEqual([]);
    expect(first.outcomes[0]).toMatchObject({ stale: [], embeddedBy: { origin: 0, local: 5 } });
    expect(first.outcomes[0]!.applied.sort()).toEqual(corpus(5).map((d) => d.id));
    expect(await json(await h.request("/v1/health"))).toMatchObject({ index: { documents: 5 } });

    const calls = h.embedder.calls;
    const again = await deliver(consumer, [upsert(corpus(5), 10)], 2);
    expect(again.acked).toEqual(again.ids);
    expect(again.outcomes[0]!.applied).toEqual([]);
    expect(again.outcomes[0]!.unchanged.sort()).toEqual(corpus(5).map((d) => d.id));
    expect(h.embedder.calls).toBe(calls);
  });

  it("embeds on the origin when it answers, with the edge model when it fails, and never with a different model", async () => {
    const h = await harness();
    const calls: string[] = [];
    const answers: ("ok" | "fail" | "other-model")[] = ["ok", "fail", "other-model"];
    const origin: OriginEmbedApi = {
      async embed(texts, options) {
        const answer = answers[calls.length % answers.length]!;
        calls.push(answer);
        if (answer === "fail") throw new OriginUnavailableError("http_503", "the origin answered 503");
        // A real origin answers token vectors and sparse terms from the same pass when asked (the bundled model has
        // both heads).
        const { embeddings, tokenVectors, sparse } = await h.model.embedder.embed(texts, {
          dims: options.dims,
          depth: 6,
          tokenVectors: options.tokenVectors ?? false,
          ...(options.sparse ? { sparse: options.sparse } : {}),
        });
        const model = answer === "ok" ? h.model.info : { ...h.model.info, version: "9.9.9" };
        const info = { name: model.name, version: model.version, variant: "fp32" };
        return { embeddings, ...(tokenVectors ? { tokenVectors } : {}), ...(sparse ? { sparse } : {}), dims: options.dims, depth: 6, model: info, provider: "cpu" };
      },
    };
    const consumer = consumerFor(h, { origin });
    const delivery = await deliver(consumer, [upsert(corpus(3, 0, "a"), 1), upsert(corpus(3, 0, "b"), 2), upsert(corpus(3, 0, "c"), 3)]);
    expect(delivery.acked).toHaveLength(3);
    expect(delivery.outcomes.map((o) => o.embeddedBy)).toEqual([
      { origin: 3, local: 0 },
      { origin: 0, local: 3 },
      { origin: 0, local: 3 },
    ]);
    expect(await json(await h.request("/v1/health"))).toMatchObject({ index: { documents: 9 } });
  });

  it("retries a failing message with exponential backoff, records why, and acknowledges the others of its batch", async () => {
    const base = await harness();
    let failing = true;
    const model: EdgeModel = {
      ...base.model,
      embedder: {
        embed: (texts, options) => (failing && texts.some((t) => t.includes("poison")) ? Promise.reject(new Error("injected embedding failure")) : base.model.embedder.embed(texts, options)),
      },
    };
    const h = await harness({ model });
    const consumer = consumerFor(h);
    const poisoned = { ...upsert([{ id: "poison", title: "", text: "poison pill" }], 2), key: `poison-${crypto.randomUUID()}` };
    const delivery = await deliver(consumer, [upsert(corpus(2), 1), poisoned], [1, 4]);
    expect(delivery.acked).toEqual([delivery.ids[0]]);
    expect(delivery.retried).toEqual([{ id: delivery.ids[1], delaySeconds: 16 }]);
    expect([1, 2, 3, 4, 5, 8, 9, 20].map(backoffSeconds)).toEqual([2, 4, 8, 16, 32, 256, 300, 300]);

    // Dead-lettered after max_retries: the dead-letter consumer files it with the last recorded reason.
    const dead = await deliverToWorker("taesr-index-dlq", [poisoned]);
    expect(dead.acked).toEqual(dead.ids);
    const listed = await json<{ deadLetters: { key: string; kind: string; ids: string[]; error: string; attempts: number }[] }>(
      await h.request("/v1/admin/dead-letters?limit=1000"),
    );
    expect(listed.deadLetters.find((d) => d.key === poisoned.key)).toMatchObject({
      kind: "upsert",
      ids: ["poison"],
      attempts: 4,
      error: "Error: injected embedding failure",
    });

    // Once the cause is gone, the retry succeeds.
    failing = false;
    const retry = await deliver(consumer, [poisoned], 5);
    expect(retry.acked).toEqual(retry.ids);
    expect((await h.deps.index.get("poison"))?.text).toBe("poison pill");
  });

  it("files a malformed message as a dead letter at once instead of retrying it", async () => {
    const h = await harness();
    const key = `bad-${crypto.randomUUID()}`;
    const delivery = await deliver(consumerFor(h), [{ kind: "reindex", key, version: 1 }]);
    expect(delivery.acked).toEqual(delivery.ids);
    const listed = await json<{ deadLetters: { key: string; kind: string; error: string }[] }>(await h.request("/v1/admin/dead-letters"));
    expect(listed.deadLetters.find((d) => d.key === key)).toMatchObject({ kind: "malformed", error: expect.stringMatching(/^not an index message/) });
    expect((await h.request("/v1/admin/dead-letters", { apiKey: null })).status).toBe(401);
    expect((await h.request("/v1/admin/dead-letters?limit=0")).status).toBe(400);
  });

  it("a delete removes every trace: stored fields, vector, postings, and search results", async () => {
    const h = await harness();
    const consumer = consumerFor(h);
    const documents = corpus(6);
    await deliver(consumer, [upsert(documents, 1)]);
    const before = await shardContents(h, documents.map((d) => d.id));
    expect(before.documents).toBe(6);
    expect(before.postings).toBeGreaterThan(0);

    const removed = await deliver(consumer, [{ kind: "delete", key: "del", version: 2, ids: documents.map((d) => d.id) }]);
    expect(removed.acked).toEqual(removed.ids);
    const after = await shardContents(h, documents.map((d) => d.id));
    expect(after).toEqual({ documents: 0, postings: 0, holders: new Map() });
    for (const mode of ["lexical", "dense", "hybrid"]) {
      const page = await json<{ results: unknown[] }>(await h.request("/v1/search", { method: "POST", json: { query: "glaciers compost orbits", mode } }));
      expect(page.results).toEqual([]);
    }
  });

  it("orders writes by version whatever order the queue delivers them in", async () => {
    const h = await harness();
    const consumer = consumerFor(h);
    const [a] = corpus(1, 1, "ord");
    const [aNew] = corpus(1, 2, "ord");
    // The delete (v20) arrives before the upsert it follows (v10): the late upsert must not resurrect the document.
    await deliver(consumer, [{ kind: "delete", key: "d", version: 20, ids: [a!.id] }]);
    const late = await deliver(consumer, [upsert([a!], 10)]);
    expect(late.acked).toEqual(late.ids);
    expect(late.outcomes[0]!.stale).toEqual([a!.id]);
    expect(await h.deps.index.get(a!.id)).toBeNull();
    // A newer upsert applies; an older revision redelivered after it does not overwrite it.
    await deliver(consumer, [upsert([aNew!], 30)]);
    await deliver(consumer, [upsert([a!], 25)]);
    expect((await h.deps.index.get(a!.id))?.contentHash).toBe(await contentHash(aNew!));
    // An upsert that changes nothing still orders after older deletes: a delete v35 arriving after an identical upsert v40 loses.
    await deliver(consumer, [upsert([aNew!], 40)]);
    await deliver(consumer, [{ kind: "delete", key: "d2", version: 35, ids: [a!.id] }]);
    expect((await h.deps.index.get(a!.id))?.contentHash).toBe(await contentHash(aNew!));
    // Within one batch, messages apply oldest first.
    const batch = await deliver(consumer, [{ kind: "delete", key: "d3", version: 60, ids: [a!.id] }, upsert([a!], 50)]);
    expect(batch.outcomes.map((o) => o.kind)).toEqual(["upsert", "delete"]);
    expect(await h.deps.index.get(a!.id)).toBeNull();
  });

  it("the worker's queue() handler indexes into the configured index", async () => {
    const id = `entry-${crypto.randomUUID()}`;
    const body: IndexMessage = { kind: "upsert", key: id, version: Date.now(), documents: [{ id, title: "", text: "A document delivered to the worker entry." }] };
    const result = await deliverToWorker("taesr-index", [body]);
    expect(result.acked).toEqual(result.ids);
    const stored = await shardClient(env, `${env.INDEX_SHARD || DEFAULT_SHARD}/${shardOfEntry(id)}-of-${Number(env.INDEX_SHARDS || 1)}`).get(id);
    expect(stored?.text).toBe("A document delivered to the worker entry.");
  });
});

function shardOfEntry(id: string): number {
  return shardOf(id, Number(env.INDEX_SHARDS || 1)) + 1;
}

describe("indexing queue: nothing lost, nothing duplicated", () => {
  it("delivers the same batch 8 times at once with a flaky origin and a flaky model, deletes and newer versions interleaved", async () => {
    const base = await harness();
    // The local model fails on every third call: those messages are retried, as the queue would.
    let localCalls = 0;
    const model: EdgeModel = {
      ...base.model,
      embedder: {
        embed: (texts, options) => (++localCalls % 3 === 0 ? Promise.reject(new Error("injected local failure")) : base.model.embedder.embed(texts, options)),
      },
    };
    const h = await harness({ model });
    // The origin fails deterministically on every other call (the edge model then embeds that batch).
    let originCalls = 0;
    const origin: OriginEmbedApi = {
      async embed(texts, options) {
        if (++originCalls % 2 === 0) throw new OriginUnavailableError("timeout", "the origin did not answer within 2000 ms");
        const { embeddings, tokenVectors, sparse } = await base.model.embedder.embed(texts, {
          dims: options.dims,
          depth: 6,
          tokenVectors: options.tokenVectors ?? false,
          ...(options.sparse ? { sparse: options.sparse } : {}),
        });
        const { name, version } = base.model.info;
        return {
          embeddings,
          ...(tokenVectors ? { tokenVectors } : {}),
          ...(sparse ? { sparse } : {}),
          dims: options.dims,
          depth: 6,
          model: { name, version, variant: "fp32" },
          provider: "cpu",
        };
      },
    };
    const consumer = consumerFor(h, { origin });

    // v100: 40 documents in 4 messages. v200: delete 10 of them (and 2 never indexed). v300: new revisions of 8 others.
    // v150: an older revision of 5 documents that v300 also rewrites, and of 3 that v200 deletes.
    const v1 = corpus(40, 1);
    const messages: IndexMessage[] = [0, 1, 2, 3].map((part) => upsert(v1.slice(part * 10, part * 10 + 10), 100, `v100/${part}`));
    const deletedIds = [...v1.slice(0, 10).map((d) => d.id), "doc-never-1", "doc-never-2"];
    messages.push({ kind: "delete", key: "v200", version: 200, ids: deletedIds });
    const v3 = corpus(40, 3).slice(20, 28);
    messages.push(upsert(v3, 300, "v300"));
    messages.push(upsert([...corpus(40, 2).slice(20, 25), ...corpus(40, 2).slice(0, 3)], 150, "v150"));

    // Eight deliveries of the whole set at once, each in its own order; whatever is retried is delivered again.
    const shuffled = (seed: number) => [...messages].sort((a, b) => ((a.key.charCodeAt(a.key.length - 1) * seed) % 7) - ((b.key.charCodeAt(b.key.length - 1) * seed) % 7));
    let pending: IndexMessage[][] = Array.from({ length: 8 }, (_, i) => shuffled(i + 1));
    let rounds = 0;
    let retries = 0;
    while (pending.length > 0) {
      expect(++rounds, "messages still failing after 12 rounds of redelivery").toBeLessThanOrEqual(12);
      const deliveries = await Promise.all(pending.map((bodies) => deliver(consumer, bodies, rounds)));
      pending = deliveries
        .map((d, i) => d.retried.map((r) => pending[i]![d.ids.indexOf(r.id)]!))
        .filter((bodies) => bodies.length > 0);
      retries += pending.flat().length;
    }
    expect(retries, "the injected failures must actually cause retries").toBeGreaterThan(0);
    expect(originCalls, "the origin must have been asked").toBeGreaterThan(0);

    // Expected: the last version of every id; deleted ids nowhere.
    const expected = new Map<string, string>();
    for (const d of v1) expected.set(d.id, await contentHash(d));
    for (const id of deletedIds) expected.delete(id);
    for (const d of v3) expected.set(d.id, await contentHash(d));
    const allIds = [...v1.map((d) => d.id), "doc-never-1", "doc-never-2"];
    const { documents, holders } = await shardContents(h, allIds);
    expect(documents).toBe(expected.size);
    expect(expected.size).toBe(30);
    for (const id of allIds) {
      const held = holders.get(id) ?? [];
      if (!expected.has(id)) {
        expect(held, `${id} was deleted`).toEqual([]);
        continue;
      }
      expect(held, `${id}: exactly one copy`).toHaveLength(1);
      expect(held[0]!.contentHash, `${id}: the newest version`).toBe(expected.get(id));
    }
    expect(await json(await h.request("/v1/health"))).toMatchObject({ index: { documents: 30 } });
  });
});

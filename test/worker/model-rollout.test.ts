/**
 * Live model updates inside workerd, over the real parts: artifacts uploaded through the admin API into R2, loaded
 * and sha256-checked by the model loader; the ModelRollout Durable Object and its alarm doing the blue/green
 * re-embedding between two sharded indexes; the KV pointer queries follow; the queue consumer writing to every index
 * of the route. The second model is the committed random-weight fixture (test/fixtures/taesr-random@0.0.0-test).
 *
 * The harness gives every test its own base index, so routes, coordinators and indexes never meet across tests.
 * The vitest config sets ROLLOUT_STEP_INTERVAL_MS to an hour: after the first step (which the alarm may run by
 * itself), the test runs each step with runDurableObjectAlarm and sees every intermediate state.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ArtifactManifest } from "../../src/model/index.js";
import { refOf, type ModelRoute } from "../../workers/edge/src/model-route.js";
import { scanAll, type RolloutState } from "../../workers/edge/src/model-rollout.js";
import { consumerDeps } from "../../workers/edge/src/queue-wiring.js";
import type { DocumentInput } from "../../workers/edge/src/schemas.js";
import { indexDocuments } from "../../workers/edge/src/indexer.js";
import { manifest as bundledManifest } from "../../workers/edge/src/bundled-model.js";
import { harness, json, type Harness } from "./support/edge-harness.js";
import { fixtureBundle, fixtureInt8wBundle, fixtureLateBundle, fixtureModel } from "./support/fixture-model.js";
import { deliver } from "./support/queue-harness.js";

const FIXTURE_REF = refOf(fixtureBundle.manifest);
const LATE_REF = refOf(fixtureLateBundle.manifest);
const BUNDLED_VERSION = bundledManifest.version;

const TOPICS = ["glaciers", "compost", "orbits", "bicycles", "sourdough", "tides", "volcanoes", "beekeeping"];
function corpus(count: number, revision = 0): DocumentInput[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `doc-${i}`,
    title: `${TOPICS[i % TOPICS.length]} note ${i}`,
    text: `Revision ${revision} of a short note about ${TOPICS[i % TOPICS.length]} number ${i}.`,
    metadata: { topic: TOPICS[i % TOPICS.length]!, n: i },
  }));
}

/** The artifact's files as `npm run model:publish` sends them: the manifest, the exact tokenizer bytes, the graphs of
 * the variant the edge runs it in (int8w for the random fixture, which lists it; int8 for the late fixture, which
 * predates it). */
function artifactFiles(bundle: typeof fixtureBundle, manifest: ArtifactManifest = bundle.manifest): [string, Uint8Array][] {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  return [
    ["manifest.json", encode(manifest)],
    // The fixture's tokenizer.json is compact JSON, so re-serialising it reproduces its bytes (and its sha256).
    [manifest.tokenizer, encode(bundle.tokenizerJson)],
    ...Object.entries(bundle.files).map(([path, bytes]): [string, Uint8Array] => [path, bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)]),
  ];
}

async function upload(h: Harness, ref: string, files: [string, Uint8Array][]): Promise<void> {
  for (const [path, bytes] of files) {
    const response = await h.request(`/v1/admin/models/${ref}/files/${path}`, { method: "PUT", body: bytes });
    expect(response.status, await response.clone().text()).toBe(201);
    expect(await json(response)).toMatchObject({ model: ref, path, bytes: bytes.byteLength });
  }
}

function rollout(h: Harness) {
  return env.MODEL_ROLLOUT.get(env.MODEL_ROLLOUT.idFromName(h.deps.indexName));
}

async function state(h: Harness): Promise<RolloutState> {
  return h.deps.models!.state();
}

/** Runs the switch's background steps until it is done (or `until` holds), one alarm at a time. */
async function runSteps(h: Harness, until: (s: RolloutState) => boolean = (s) => s.rollout === null): Promise<RolloutState> {
  for (let i = 0; i < 200; i++) {
    const current = await state(h);
    if (until(current)) return current;
    // False when the alarm is running by itself right now: wait for it to finish.
    if (!(await runDurableObjectAlarm(rollout(h)))) await scheduler.wait(10);
  }
  throw new Error(`the switch did not get there: ${JSON.stringify((await state(h)).rollout)}`);
}

async function searchVersion(h: Harness, query: string): Promise<{ version: string; ids: string[] }> {
  const response = await h.request("/v1/search", { method: "POST", json: { query, topK: 5, mode: "hybrid" } });
  expect(response.status).toBe(200);
  const body = await json<{ model: { version: string }; results: { id: string }[] }>(response);
  return { version: body.model.version, ids: body.results.map((r) => r.id) };
}

async function health(h: Harness): Promise<{ model: { version: string }; route: ModelRoute; index: { documents: number; modelVersions: Record<string, number> } }> {
  return json(await h.request("/v1/health"));
}

describe("model artifacts and activation", () => {
  it("uploads only with the API key, refuses bad names and paths, lists what was uploaded", async () => {
    const h = await harness({ liveModels: true });
    const bytes = new TextEncoder().encode("{}");
    expect((await h.request(`/v1/admin/models/${FIXTURE_REF}/files/manifest.json`, { method: "PUT", body: bytes, apiKey: null })).status).toBe(401);
    expect((await h.request(`/v1/admin/models/${FIXTURE_REF}/files/manifest.json`, { method: "PUT", body: bytes, apiKey: "wrong" })).status).toBe(401);

    const badRef = await h.request("/v1/admin/models/No%20Version/files/manifest.json", { method: "PUT", body: bytes });
    expect(badRef.status).toBe(400);
    expect((await json<{ error: { message: string } }>(badRef)).error.message).toMatch(/name@version/);
    const badPath = await h.request(`/v1/admin/models/${FIXTURE_REF}/files/int8/notes.txt`, { method: "PUT", body: bytes });
    expect(badPath.status).toBe(400);
    expect((await json<{ error: { message: string } }>(badPath)).error.message).toMatch(/neither a \.json nor an \.onnx/);
    const empty = await h.request(`/v1/admin/models/${FIXTURE_REF}/files/manifest.json`, { method: "PUT", body: new Uint8Array(0) });
    expect(empty.status).toBe(400);

    await upload(h, FIXTURE_REF, artifactFiles(fixtureInt8wBundle));
    const listed = await json<{ available: string[]; route: ModelRoute; rollout: null }>(await h.request("/v1/admin/models"));
    expect(listed.available).toContain(FIXTURE_REF);
    expect(listed.rollout).toBeNull();
    expect(listed.route.active).toEqual({ model: `taesr-edge-small@${BUNDLED_VERSION}`, index: h.deps.indexName });
  });

  it("refuses to activate a model that is absent (404), incomplete (404), corrupt (422) or malformed (400), and changes nothing", async () => {
    const h = await harness({ liveModels: true });
    const absent = await h.request("/v1/admin/models/activate", { method: "POST", json: { model: "nobody@1.0.0" } });
    expect(absent.status).toBe(404);
    expect(await json(absent)).toMatchObject({ error: { code: "model_not_found" } });

    const malformed = await h.request("/v1/admin/models/activate", { method: "POST", json: { model: "latest" } });
    expect(malformed.status).toBe(400);

    // The same fixture under another version, first without its step graph, then with a corrupted one.
    const manifest = { ...fixtureInt8wBundle.manifest, version: "0.0.0-corrupt" };
    const ref = refOf(manifest);
    const files = artifactFiles(fixtureInt8wBundle, manifest);
    await upload(h, ref, files.filter(([path]) => path !== "int8w/step.onnx"));
    const incomplete = await h.request("/v1/admin/models/activate", { method: "POST", json: { model: ref } });
    expect(incomplete.status).toBe(404);
    expect((await json<{ error: { message: string } }>(incomplete)).error.message).toMatch(/int8w\/step\.onnx not uploaded/);

    const step = files.find(([path]) => path === "int8w/step.onnx")![1].slice();
    step[step.length - 1] = step[step.length - 1]! ^ 0xff;
    await upload(h, ref, [["int8w/step.onnx", step]]);
    const corrupt = await h.request("/v1/admin/models/activate", { method: "POST", json: { model: ref } });
    expect(corrupt.status).toBe(422);
    expect(await json(corrupt)).toMatchObject({ error: { code: "invalid_model" } });
    expect((await json<{ error: { message: string } }>(await h.request("/v1/admin/models/activate", { method: "POST", json: { model: ref } }))).error.message).toMatch(/sha256/);

    const after = await state(h);
    expect(after.rollout).toBeNull();
    expect(after.route.revision).toBe(0);
    expect((await h.request("/v1/admin/models/rollback", { method: "POST" })).status).toBe(409);
  });

  it("answers 503 naming what is missing when live model updates are not configured", async () => {
    const h = await harness();
    const response = await h.request("/v1/admin/models");
    expect(response.status).toBe(503);
    expect(await json(response)).toMatchObject({ error: { code: "not_configured" } });
  });
});

describe("blue/green model switch", () => {
  it("re-embeds the index in the background, serves the old model until the copy is exact, switches, rolls back in one call", async () => {
    const h = await harness({ liveModels: true });
    const models = h.deps.models!;
    const documents = corpus(40);
    expect((await h.request("/v1/documents", { method: "POST", json: { documents } })).status).toBe(200);
    await upload(h, FIXTURE_REF, artifactFiles(fixtureInt8wBundle));

    const activated = await h.request("/v1/admin/models/activate", { method: "POST", json: { model: FIXTURE_REF } });
    expect(activated.status).toBe(202);
    const started = await json<RolloutState>(activated);
    const blue = { model: `taesr-edge-small@${BUNDLED_VERSION}`, index: h.deps.indexName };
    const green = { model: FIXTURE_REF, index: `${h.deps.indexName}@${FIXTURE_REF}` };
    expect(started.route).toMatchObject({ active: blue, next: green });
    expect(started.rollout).toMatchObject({ phase: "copying", total: 40, copied: 0 });
    // Activating the same model again changes nothing; another model meanwhile is a conflict.
    expect((await h.request("/v1/admin/models/activate", { method: "POST", json: { model: FIXTURE_REF } })).status).toBe(202);
    await upload(h, LATE_REF, artifactFiles(fixtureLateBundle));
    const conflict = await h.request("/v1/admin/models/activate", { method: "POST", json: { model: LATE_REF } });
    expect(conflict.status).toBe(409);
    expect(await json(conflict)).toMatchObject({ error: { code: "conflict" } });

    // Until the switch completes, queries use the old model over the old index.
    expect((await searchVersion(h, "glaciers note")).version).toBe(BUNDLED_VERSION);
    expect((await health(h)).route.active).toEqual(blue);

    // Writes during the switch reach both indexes: a change, a new document and a delete.
    const changed = { ...documents[3]!, text: "Revision 1: rewritten while the model switch was copying." };
    const added = { id: "added-during-copy", title: "tides note", text: "A note added in the middle of the switch." };
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: [changed, added] } })).status).toBe(200);
    expect((await h.request("/v1/documents/doc-5", { method: "DELETE" })).status).toBe(200);

    await runSteps(h, (s) => s.rollout?.phase === "verifying");
    expect((await state(h)).route.active).toEqual(blue);

    // Make green diverge as a lost race would: a copy deleted behind the switch's back, a stray document added.
    const greenIndex = models.index(green.index);
    await greenIndex.delete(["doc-11"]);
    await indexDocuments(await fixtureModel(), greenIndex, [{ id: "stray", title: "", text: "deleted from blue after it was copied" }]);

    const repairing = await runSteps(h, (s) => (s.rollout?.passes ?? 0) >= 1);
    expect(repairing.rollout).toMatchObject({ phase: "verifying", passes: 1, repaired: 2 });
    expect(repairing.route.active).toEqual(blue);
    const done = await runSteps(h);
    expect(done.route).toMatchObject({ active: green, previous: blue });
    expect(done.route.next).toBeUndefined();
    expect(done.history.map((e) => e.event)).toEqual(["activated", "switched"]);

    // Green holds exactly blue's documents, each with blue's content hash, all embedded by the new model.
    const [blueDocs, greenDocs] = await Promise.all([scanAll(models.index(blue.index)), scanAll(greenIndex)]);
    const expected = [...documents.map((d) => d.id).filter((id) => id !== "doc-5"), "added-during-copy"].sort();
    expect([...blueDocs.keys()].sort()).toEqual(expected);
    expect([...greenDocs.keys()].sort()).toEqual(expected);
    for (const [id, doc] of greenDocs) {
      expect(doc.modelVersion).toBe(fixtureBundle.manifest.version);
      expect(doc.contentHash).toBe(blueDocs.get(id)!.contentHash);
    }
    const copied = await greenIndex.documents(["doc-3", "doc-11"]);
    expect(copied.find((d) => d.id === "doc-3")!.text).toBe(changed.text);
    expect(JSON.parse(copied.find((d) => d.id === "doc-11")!.metadataJson!)).toEqual({ topic: TOPICS[11 % TOPICS.length], n: 11 });

    // Now queries use the new model over its index.
    const served = await searchVersion(h, "sourdough note");
    expect(served.version).toBe(fixtureBundle.manifest.version);
    const healthNow = await health(h);
    expect(healthNow.model.version).toBe(fixtureBundle.manifest.version);
    expect(healthNow.index).toMatchObject({ documents: expected.length, modelVersions: { [fixtureBundle.manifest.version]: expected.length } });

    // After the switch the previous index is still written, so a rollback loses nothing.
    const later = { ...documents[9]!, text: "Revision 2: written after the switch." };
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: [later] } })).status).toBe(200);
    const rolledBack = await h.request("/v1/admin/models/rollback", { method: "POST" });
    expect(rolledBack.status).toBe(200);
    expect((await json<RolloutState>(rolledBack)).route).toMatchObject({ active: blue, previous: green });
    expect((await searchVersion(h, "bicycles note")).version).toBe(BUNDLED_VERSION);
    expect(await json(await h.request("/v1/documents/doc-9"))).toMatchObject({ text: later.text, modelVersion: BUNDLED_VERSION });

    // Retiring the previous model ends rollback.
    expect((await h.request("/v1/admin/models/retire", { method: "POST" })).status).toBe(200);
    expect((await state(h)).route.previous).toBeUndefined();
    const nothing = await h.request("/v1/admin/models/rollback", { method: "POST" });
    expect(nothing.status).toBe(409);
  });

  it("a rollback during the switch abandons it: the old model never stopped serving", async () => {
    const h = await harness({ liveModels: true });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: corpus(5) } })).status).toBe(200);
    await upload(h, FIXTURE_REF, artifactFiles(fixtureInt8wBundle));
    expect((await h.request("/v1/admin/models/activate", { method: "POST", json: { model: FIXTURE_REF } })).status).toBe(202);
    const cancelled = await json<RolloutState>(await h.request("/v1/admin/models/rollback", { method: "POST" }));
    expect(cancelled.rollout).toBeNull();
    expect(cancelled.route.next).toBeUndefined();
    expect(cancelled.route.active.model).toBe(`taesr-edge-small@${BUNDLED_VERSION}`);
    expect(cancelled.history.map((e) => e.event)).toEqual(["activated", "cancelled"]);
    // A step left over from the abandoned switch does nothing.
    await runDurableObjectAlarm(rollout(h));
    expect((await state(h)).route).toEqual(cancelled.route);
    expect((await searchVersion(h, "compost note")).version).toBe(BUNDLED_VERSION);
  });

  it("the queue consumer writes every index of the route during a switch", async () => {
    const h = await harness({ liveModels: true });
    expect((await h.request("/v1/documents", { method: "POST", json: { documents: corpus(3) } })).status).toBe(200);
    await upload(h, FIXTURE_REF, artifactFiles(fixtureInt8wBundle));
    expect((await h.request("/v1/admin/models/activate", { method: "POST", json: { model: FIXTURE_REF } })).status).toBe(202);
    // The first copy step runs by itself: let it finish, so what green holds below is the consumer's doing. (A copy
    // racing a delete is what the verify passes repair; the "diverged copy" test covers that.)
    // Only waits: running an alarm here could run the next step too (verify, then the flip) and end the switch.
    for (let i = 0; i < 500 && ((await state(h)).rollout?.copied ?? 0) < 3; i++) await scheduler.wait(10);
    expect((await state(h)).rollout).toMatchObject({ copied: 3 });

    const consumer = { ...(await consumerDeps(env, { name: h.deps.indexName, shards: h.shardNames.length })), log: () => {} };
    expect(consumer.replicas).toHaveLength(1);
    const queued = { id: "queued-1", title: "orbits note", text: "Arrived through the queue during the switch." };
    const delivery = await deliver(consumer, [
      { kind: "upsert", key: "k1", version: 1, documents: [queued] },
      { kind: "delete", key: "k2", version: 2, ids: ["doc-1"] },
    ]);
    expect(delivery.acked).toHaveLength(2);

    const models = h.deps.models!;
    const route = await models.writeRoute();
    const [blue, green] = await Promise.all([models.index(route.active.index).get("queued-1"), models.index(route.next!.index).get("queued-1")]);
    expect(blue).toMatchObject({ modelVersion: BUNDLED_VERSION, text: queued.text });
    expect(green).toMatchObject({ modelVersion: fixtureBundle.manifest.version, text: queued.text });
    expect(await models.index(route.active.index).get("doc-1")).toBeNull();
    expect(await models.index(route.next!.index).get("doc-1")).toBeNull();
  });
});

/**
 * Blue/green model switches: the state machine the `ModelRollout` Durable Object (model-rollout-object.ts) runs, one
 * per base index. Platform-neutral — storage, indexes, models and the KV pointer are injected — so every transition
 * is testable over the real parts.
 *
 *   activate(B)   B becomes `next`, with its own empty (or partly filled) index; writes now reach both indexes.
 *   step()        copying:   a page of the active index is re-embedded by B into B's index (pages in id order).
 *                 verifying: the two indexes are compared by (id, content hash); B's copies of what changed meanwhile
 *                            are repaired (re-copied, or deleted) and the comparison runs again, until one pass finds
 *                            them identical — only then does B become `active` (and the old model `previous`).
 *   rollback()    during a switch: abandons it (the active model never stopped serving); after one: swaps `active`
 *                 and `previous` back. One call, no re-embedding: `previous` received every write meanwhile.
 *   retire()      stops writing to `previous` (its index is left as it was).
 *
 * Why verify instead of trusting the copy: writes keep arriving during the copy, and a page read from the old index
 * can be overtaken by a newer write before its copy lands (or a delete can follow the read). Writes reach both indexes,
 * so a difference left after the copy is exactly such a race; repairing from the active index — the one every write
 * reaches first and that queries use — and comparing again until nothing differs leaves nothing lost or resurrected.
 *
 * Every transition publishes the route to KV before it is saved: a crash between the two re-runs an idempotent step.
 *
 * @module
 */
import type { EdgeModel } from "./contracts.js";
import { copyDocuments } from "./indexer.js";
import { indexNameFor, type Deployment, type ModelRoute } from "./model-route.js";
import type { ScannedDocument, SearchIndex } from "./search-index.js";

/** Documents re-embedded per copy step: a few seconds of CPU at most, so a step never nears a Durable Object's limits. */
export const COPY_PAGE = 32;
/** Ids per page when comparing two indexes (no text or vectors travel). */
export const COMPARE_PAGE = 1_000;
/** Documents repaired per verification step; the rest wait for the next pass. */
export const REPAIR_BATCH = 128;
/** Switches kept in the history. */
const HISTORY = 20;

export interface RolloutProgress {
  /** Model and index being switched from (the active one) and to. */
  from: Deployment;
  to: Deployment;
  phase: "copying" | "verifying";
  /** The copy's position in the active index (SearchIndex.scan cursor); null before the first page. */
  cursor: string | null;
  /** Documents read from the active index so far, and how many it held when the switch began. */
  copied: number;
  total: number;
  /** Comparison passes run, and documents repaired by them. */
  passes: number;
  repaired: number;
  startedAt: number;
  /** The last step's failure; steps are retried. */
  lastError?: { message: string; at: number };
}

export interface RolloutEvent {
  event: "activated" | "switched" | "cancelled" | "rolled_back" | "retired";
  model: string;
  at: number;
}

export interface RolloutState {
  route: ModelRoute;
  rollout: RolloutProgress | null;
  history: RolloutEvent[];
}

/** Why a request cannot be honoured now (the admin API answers 409). */
export class RolloutConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RolloutConflictError";
  }
}

export interface RolloutDeps {
  /** The base index: the route's first model serves from it, later ones from `indexNameFor(base, model)`. */
  base: string;
  /** The route before any switch (the bundled model over the base index). */
  initialRoute(): Promise<ModelRoute>;
  load(): Promise<RolloutState | undefined>;
  save(state: RolloutState): Promise<void>;
  /** Publishes the route where queries read it (KV). */
  publish(route: ModelRoute): Promise<void>;
  index(name: string): SearchIndex;
  model(ref: string): Promise<EdgeModel>;
  now(): number;
}

export type StepResult = "idle" | "more";

export class RolloutCoordinator {
  constructor(private readonly deps: RolloutDeps) {}

  async state(): Promise<RolloutState> {
    return (await this.deps.load()) ?? { route: await this.deps.initialRoute(), rollout: null, history: [] };
  }

  /**
   * Starts switching to `ref` (whose model the caller has already loaded successfully). Activating the active model
   * changes nothing; activating the one a switch is already heading to neither; activating `previous` is a rollback.
   */
  async activate(ref: string): Promise<RolloutState> {
    const state = await this.state();
    const { route } = state;
    if (route.active.model === ref) return state;
    if (state.rollout) {
      if (state.rollout.to.model === ref) return state;
      throw new RolloutConflictError(`a switch to ${state.rollout.to.model} is in progress: roll it back before activating ${ref}`);
    }
    if (route.previous?.model === ref) return this.rollback();
    const to: Deployment = { model: ref, index: indexNameFor(this.deps.base, ref) };
    const total = (await this.deps.index(route.active.index).stats()).documents;
    const now = this.deps.now();
    // A new switch drops `previous`: it would otherwise need writes too, and rolling back goes to the active model.
    const next: RolloutState = {
      route: { active: route.active, next: to, revision: route.revision + 1, updatedAt: now },
      rollout: { from: route.active, to, phase: "copying", cursor: null, copied: 0, total, passes: 0, repaired: 0, startedAt: now },
      history: withEvent(state.history, { event: "activated", model: ref, at: now }),
    };
    return this.commit(next);
  }

  /** Abandons a switch in progress, or else swaps back to the previous model. */
  async rollback(): Promise<RolloutState> {
    const state = await this.state();
    const { route } = state;
    const now = this.deps.now();
    if (state.rollout) {
      const { next: _abandoned, ...rest } = route;
      return this.commit({
        route: { ...rest, revision: route.revision + 1, updatedAt: now },
        rollout: null,
        history: withEvent(state.history, { event: "cancelled", model: state.rollout.to.model, at: now }),
      });
    }
    if (!route.previous) throw new RolloutConflictError(`nothing to roll back to: ${route.active.model} is the only model this index has served since the last retire`);
    return this.commit({
      route: { active: route.previous, previous: route.active, revision: route.revision + 1, updatedAt: now },
      rollout: null,
      history: withEvent(state.history, { event: "rolled_back", model: route.previous.model, at: now }),
    });
  }

  /** Stops keeping the previous model's index current: rollback is no longer possible. */
  async retire(): Promise<RolloutState> {
    const state = await this.state();
    const { route } = state;
    if (!route.previous) throw new RolloutConflictError("there is no previous model to retire");
    const now = this.deps.now();
    const { previous, ...rest } = route;
    return this.commit({
      route: { ...rest, revision: route.revision + 1, updatedAt: now },
      rollout: state.rollout,
      history: withEvent(state.history, { event: "retired", model: previous.model, at: now }),
    });
  }

  /** One unit of background work; "more" while the switch goes on. A failure is recorded and rethrown (retried). */
  async step(): Promise<StepResult> {
    const state = await this.state();
    const progress = state.rollout;
    if (!progress) return "idle";
    try {
      const next = progress.phase === "copying" ? await this.copyPage(state, progress) : await this.verify(state, progress);
      await this.commit(next);
      return next.rollout ? "more" : "idle";
    } catch (error) {
      await this.deps.save({ ...state, rollout: { ...progress, lastError: { message: (error as Error).message, at: this.deps.now() } } });
      throw error;
    }
  }

  private async copyPage(state: RolloutState, progress: RolloutProgress): Promise<RolloutState> {
    const from = this.deps.index(progress.from.index);
    const page = await from.scan(progress.cursor, COPY_PAGE);
    if (page.documents.length > 0) {
      const [model, stored] = await Promise.all([this.deps.model(progress.to.model), from.documents(page.documents.map((d) => d.id))]);
      await copyDocuments(model, this.deps.index(progress.to.index), stored);
    }
    const { lastError: _cleared, ...rest } = progress;
    const copied = progress.copied + page.documents.length;
    return { ...state, rollout: page.cursor === null ? { ...rest, copied, cursor: null, phase: "verifying" } : { ...rest, copied, cursor: page.cursor } };
  }

  private async verify(state: RolloutState, progress: RolloutProgress): Promise<RolloutState> {
    const model = await this.deps.model(progress.to.model);
    const from = this.deps.index(progress.from.index);
    const to = this.deps.index(progress.to.index);
    const source = await scanAll(from);
    const target = await scanAll(to);
    const version = model.info.version;
    const stale = [...source.values()].filter((s) => {
      const copy = target.get(s.id);
      return !copy || copy.contentHash !== s.contentHash || copy.modelVersion !== version;
    });
    const extra = [...target.keys()].filter((id) => !source.has(id));
    const { lastError: _cleared, ...rest } = progress;
    if (stale.length === 0 && extra.length === 0) return this.switched(state, rest);

    const repair = stale.slice(0, REPAIR_BATCH).map((s) => s.id);
    if (repair.length > 0) await copyDocuments(model, to, await from.documents(repair));
    const removed = extra.slice(0, REPAIR_BATCH);
    if (removed.length > 0) await to.delete(removed);
    return { ...state, rollout: { ...rest, passes: progress.passes + 1, repaired: progress.repaired + repair.length + removed.length } };
  }

  private switched(state: RolloutState, progress: RolloutProgress): RolloutState {
    const now = this.deps.now();
    return {
      route: { active: progress.to, previous: progress.from, revision: state.route.revision + 1, updatedAt: now },
      rollout: null,
      history: withEvent(state.history, { event: "switched", model: progress.to.model, at: now }),
    };
  }

  private async commit(state: RolloutState): Promise<RolloutState> {
    await this.deps.publish(state.route);
    await this.deps.save(state);
    return state;
  }
}

function withEvent(history: readonly RolloutEvent[], event: RolloutEvent): RolloutEvent[] {
  return [...history, event].slice(-HISTORY);
}

/** Every document of an index by id, read in scan pages (ids and hashes only). */
export async function scanAll(index: SearchIndex): Promise<Map<string, ScannedDocument>> {
  const all = new Map<string, ScannedDocument>();
  let cursor: string | null = null;
  do {
    const page: { documents: ScannedDocument[]; cursor: string | null } = await index.scan(cursor, COMPARE_PAGE);
    for (const document of page.documents) all.set(document.id, document);
    cursor = page.cursor;
  } while (cursor !== null);
  return all;
}

/**
 * `ModelRollout`: the Durable Object that owns one base index's model route (model-rollout.ts has the state machine).
 * It is the route's authoritative copy — writes read it here, strongly consistent — and it publishes each change to
 * the KV pointer queries read. The background re-embedding runs in its alarm, one bounded step per alarm, so it
 * survives restarts and deploys and never holds a request open.
 *
 * Every call and every step runs one at a time: a rollback arriving mid-step waits for that step, so it can never be
 * overwritten by the step's stale view of the state.
 *
 * @module
 */
import { DurableObject } from "cloudflare:workers";
import type { Env } from "./env.js";
import { loadModelByRef } from "./model-loader.js";
import { routeKey, type ModelRoute } from "./model-route.js";
import { RolloutConflictError, RolloutCoordinator, type RolloutState } from "./model-rollout.js";
import type { RolloutAnswer, RolloutApi } from "./rollout-api.js";
import { initialRouteFor, rolloutStepIntervalMs, searchIndexFor } from "./wiring.js";
import type { IndexTarget } from "./write-ledger.js";

/** How long a failed step waits before its retry. */
const RETRY_AFTER_FAILURE_MS = 30_000;
const STATE_KEY = "state";
const TARGET_KEY = "target";

/**
 * One object per base index (named after it). The index's name and shard count arrive with every call and are kept,
 * because the alarm that runs the background steps gets no arguments.
 */
export class ModelRollout extends DurableObject<Env> implements RolloutApi {
  private tail: Promise<unknown> = Promise.resolve();

  private async coordinator(given?: IndexTarget): Promise<RolloutCoordinator> {
    const stored = await this.ctx.storage.get<IndexTarget>(TARGET_KEY);
    // The worker's configuration is the truth: a changed INDEX_SHARDS already means new, empty indexes (shard names
    // encode the count), and the background steps must work on the same shards the writes reach.
    if (given && (stored?.name !== given.name || stored.shards !== given.shards)) await this.ctx.storage.put(TARGET_KEY, given);
    const target = given ?? stored;
    if (!target) throw new Error("no index has used this model route yet");
    const { env, ctx } = this;
    return new RolloutCoordinator({
      base: target.name,
      initialRoute: () => initialRouteFor(target.name),
      load: () => ctx.storage.get<RolloutState>(STATE_KEY),
      save: (state) => ctx.storage.put(STATE_KEY, state),
      publish: (route: ModelRoute) => env.MODEL_ROUTES.put(routeKey(target.name), JSON.stringify(route)),
      index: (name) => searchIndexFor(env, name, target.shards),
      model: (ref) => loadModelByRef(env, ref),
      now: () => Date.now(),
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  // Not serialised: a step saves its state in one write at its end, so a read never sees half a step — and writes,
  // which read the route, need not wait for a step.
  async state(target: IndexTarget): Promise<RolloutState> {
    return (await this.coordinator(target)).state();
  }

  async route(target: IndexTarget): Promise<ModelRoute> {
    return (await this.state(target)).route;
  }

  activate(target: IndexTarget, ref: string): Promise<RolloutAnswer> {
    return this.transition(target, async (coordinator) => {
      const state = await coordinator.activate(ref);
      if (state.rollout) await this.ctx.storage.setAlarm(Date.now());
      return state;
    });
  }

  rollback(target: IndexTarget): Promise<RolloutAnswer> {
    return this.transition(target, (coordinator) => coordinator.rollback());
  }

  retire(target: IndexTarget): Promise<RolloutAnswer> {
    return this.transition(target, (coordinator) => coordinator.retire());
  }

  private transition(target: IndexTarget, change: (coordinator: RolloutCoordinator) => Promise<RolloutState>): Promise<RolloutAnswer> {
    return this.serially(async () => {
      try {
        return { state: await change(await this.coordinator(target)) };
      } catch (error) {
        if (error instanceof RolloutConflictError) return { conflict: error.message };
        throw error;
      }
    });
  }

  /** One step of the switch; schedules the next while there is more. */
  override async alarm(): Promise<void> {
    await this.serially(async () => {
      try {
        const result = await (await this.coordinator()).step();
        if (result === "more") await this.ctx.storage.setAlarm(Date.now() + rolloutStepIntervalMs(this.env));
      } catch (error) {
        console.error(`model switch step failed (retrying in ${RETRY_AFTER_FAILURE_MS / 1000} s): ${(error as Error).message}`);
        await this.ctx.storage.setAlarm(Date.now() + Math.max(RETRY_AFTER_FAILURE_MS, rolloutStepIntervalMs(this.env)));
      }
    });
  }
}

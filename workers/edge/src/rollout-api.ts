/**
 * The `ModelRollout` Durable Object's RPC contract and the seam the app uses for live model updates, apart from the
 * class so the app and tests depend on them without importing `cloudflare:workers`.
 *
 * @module
 */
import type { EdgeModel } from "./contracts.js";
import type { ModelRoute } from "./model-route.js";
import type { RolloutState } from "./model-rollout.js";
import type { StoredArtifactFile } from "./model-store.js";
import type { SearchIndex } from "./search-index.js";
import type { IndexTarget } from "./write-ledger.js";

/**
 * A transition's answer: the new state, or why it cannot happen now (answered 409). A conflict is a value, not an
 * exception, because an error crossing RPC keeps its message but not its class.
 */
export type RolloutAnswer = { state: RolloutState } | { conflict: string };

/** The Durable Object's methods; each names the base index it is about. */
export interface RolloutApi {
  state(target: IndexTarget): Promise<RolloutState>;
  route(target: IndexTarget): Promise<ModelRoute>;
  activate(target: IndexTarget, ref: string): Promise<RolloutAnswer>;
  rollback(target: IndexTarget): Promise<RolloutAnswer>;
  retire(target: IndexTarget): Promise<RolloutAnswer>;
}

/** Everything live model updates need from the platform, bound to one base index. */
export interface ModelDeployments {
  /** The route queries follow: the published KV pointer, cached briefly per isolate. */
  servingRoute(): Promise<ModelRoute>;
  /** The route writes follow, from the coordinator itself (strongly consistent): no deployment misses a write. */
  writeRoute(): Promise<ModelRoute>;
  /** The model `ref` names (bundled, or from the artifact store). */
  model(ref: string): Promise<EdgeModel>;
  /** The index of that name, on this worker's backend. */
  index(name: string): SearchIndex;
  /** The coordinator's state and transitions (admin API). */
  state(): Promise<RolloutState>;
  activate(ref: string): Promise<RolloutState>;
  rollback(): Promise<RolloutState>;
  retire(): Promise<RolloutState>;
  /** The artifact store (R2): upload one file of a model, list the models uploaded. */
  putFile(ref: string, path: string, body: ArrayBuffer): Promise<StoredArtifactFile>;
  listModels(): Promise<string[]>;
}

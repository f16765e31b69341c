/**
 * Which model serves, and over which index: the route of live model updates (blue/green). A model version's vectors
 * live only in its own index, so a route names model and index together — a query always meets documents embedded by
 * its own model, whichever route an isolate happens to hold.
 *
 *   active    serves queries; receives every write.
 *   next      the model being switched to: its index is filled in the background (model-rollout.ts) and receives
 *             every write meanwhile; it becomes `active` once it holds exactly what `active` holds.
 *   previous  the model switched away from: still receives every write, so rolling back is an instant, lossless flip.
 *
 * The route is published to KV (the pointer queries read, cached briefly per isolate) by the `ModelRollout` Durable
 * Object, which holds the authoritative copy that writes read. Platform-neutral: KV is reached through a narrow seam.
 *
 * @module
 */
import { z } from "zod";

/** `name@version`, as in artifact directories (model-artifacts/taesr-edge-small@0.2.0). */
export const MODEL_REF_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}@[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

export const modelRef = z.string().regex(MODEL_REF_PATTERN, 'a model is named "name@version", e.g. "taesr-edge-small@0.3.0"');

export const deployment = z.object({
  /** The model, `name@version`. */
  model: modelRef,
  /** The index its vectors live in (the shard-name prefix, or the Upstash namespace suffix). */
  index: z.string().min(1),
});
export type Deployment = z.infer<typeof deployment>;

export const modelRoute = z.object({
  active: deployment,
  next: deployment.optional(),
  previous: deployment.optional(),
  /** Increases with every change, so a reader can tell two routes apart. */
  revision: z.number().int().nonnegative(),
  updatedAt: z.number(),
});
export type ModelRoute = z.infer<typeof modelRoute>;

export function refOf(model: { name: string; version: string }): string {
  return `${model.name}@${model.version}`;
}

/**
 * The index a model gets when it is switched to: the base index's name plus the model. The route's first model keeps
 * the base name itself, so an index built before live updates existed stays where it is.
 */
export function indexNameFor(base: string, ref: string): string {
  return `${base}@${ref}`;
}

/** The route before any switch: the bundled model over the base index. */
export function initialRoute(base: string, bundledRef: string): ModelRoute {
  return { active: { model: bundledRef, index: base }, revision: 0, updatedAt: 0 };
}

/** Every deployment a write must reach, active first, each index once. */
export function writeDeployments(route: ModelRoute): Deployment[] {
  const all = [route.active, route.next, route.previous].filter((d): d is Deployment => d !== undefined);
  return all.filter((d, i) => all.findIndex((other) => other.index === d.index) === i);
}

/** The KV key of a base index's route. */
export function routeKey(base: string): string {
  return `model-route:${base}`;
}

/** The part of a KV namespace the pointer needs. */
export interface RouteKv {
  get(key: string, type: "text"): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
}

/**
 * Reads the published route for queries, caching it per isolate for `ttlMs`: a query then costs no KV read, and an
 * isolate follows a switch within `ttlMs` (KV's own propagation adds up to a minute across locations). A stale route
 * is harmless by construction: its model still matches its index, and that index is kept current until retired.
 */
export class RouteReader {
  private cached: { route: ModelRoute; at: number } | undefined;
  private reading: Promise<ModelRoute> | undefined;

  constructor(
    private readonly kv: RouteKv,
    private readonly base: string,
    private readonly fallback: () => Promise<ModelRoute>,
    private readonly ttlMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async route(): Promise<ModelRoute> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.route;
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<ModelRoute> {
    const text = await this.kv.get(routeKey(this.base), "text");
    const parsed = text === null ? undefined : modelRoute.safeParse(JSON.parse(text));
    if (parsed && !parsed.success) throw new Error(`the published model route of "${this.base}" is malformed: ${parsed.error.issues[0]?.message}`);
    const route = parsed?.data ?? (await this.fallback());
    this.cached = { route, at: this.now() };
    return route;
  }
}

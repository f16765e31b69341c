/**
 * Depth routers: the documented rule router (spec.ts {@link RouterRule}), which chooses a recursion depth from the
 * length of the encoded input, and — when an artifact's manifest carries one — the trained FastREM router
 * (src/model/fastrem.ts, `router.kind: "fastrem"`). {@link createInputRouter} picks by the manifest's `kind`, so an
 * artifact without a trained router routes exactly as before.
 *
 * Rule, with n = number of word-piece ids the tokenizer returns for the text (the TAESR tokenizer adds no special
 * tokens, so every id counts; inputs are counted after truncation to the model's maxLength):
 *   n ≤ easyMaxTokens                     → "easy"   → architecture.depths.easy   (1 step in TAESR)
 *   easyMaxTokens < n ≤ mediumMaxTokens   → "medium" → architecture.depths.medium (3 steps)
 *   n > mediumMaxTokens                   → "hard"   → architecture.depths.hard   (6 steps)
 * Why length: short queries are mostly keyword lookups that one step already embeds well; long, compositional inputs
 * are where extra recursion steps measurably help. It costs nothing (no forward pass), which is the router's point.
 *
 * @module
 */
import { FastRemRouter, type FastRemVocab } from "./fastrem.js";
import type { RouterRule, RouterSpec, TaesrArchitecture } from "./spec.js";

export type Route = "easy" | "medium" | "hard";

/** Ordered from cheapest to deepest, so "the hardest of a batch" is a max over this order. */
export const ROUTES: readonly Route[] = ["easy", "medium", "hard"];

/** The route for an input of `tokenCount` word-piece ids (see the module doc for the rule). */
export function routeByTokenCount(tokenCount: number, rule: RouterRule): Route {
  if (!Number.isInteger(tokenCount) || tokenCount < 0) {
    throw new RangeError(`tokenCount must be a non-negative integer, got ${tokenCount}`);
  }
  if (tokenCount <= rule.easyMaxTokens) return "easy";
  if (tokenCount <= rule.mediumMaxTokens) return "medium";
  return "hard";
}

/** Recursion steps for a route, from the architecture's `depths`. */
export function depthForRoute(route: Route, depths: TaesrArchitecture["depths"]): number {
  return depths[route];
}

/** The deeper of two routes (a batch runs at the depth of its hardest input). */
export function hardestRoute(a: Route, b: Route): Route {
  return ROUTES.indexOf(a) >= ROUTES.indexOf(b) ? a : b;
}

/**
 * The length rule of a router spec: the rule itself, or the rule a FastREM router replaced (kept in its `rule`). For
 * consumers that only know token-count routing (the pure-TypeScript TAESRModel's config, `--router rule` in the eval).
 */
export function lengthRuleOf(spec: RouterSpec): RouterRule {
  return spec.kind === "rule" ? spec : spec.rule;
}

/** The rankings a search can embed a query for (lexical-only searches embed nothing). */
export type EmbeddingRanking = "dense" | "hybrid";

/**
 * Whether `spec`'s routes were learned for `ranking`. A FastREM router is labelled on one ranking (fastrem.ts
 * `labelledBy.retrieval`: absent = dense): the smallest depth that ranks as well as the deepest *there*. Depth moves a
 * hybrid ranking far less than a dense one (the fusion also listens to BM25), so hybrid labels say nothing about a
 * dense-only search, while dense labels are the stricter question and hold for both. The length rule was never
 * labelled; it serves every ranking.
 */
export function routerServes(spec: RouterSpec, ranking: EmbeddingRanking): boolean {
  if (spec.kind !== "fastrem") return true;
  return (spec.labelledBy.retrieval?.mode ?? "dense") === "dense" || ranking === "hybrid";
}

/** What depth "auto" consults per input: the route for the word-piece ids the model will read. */
export interface InputRouter {
  readonly kind: RouterSpec["kind"];
  route(ids: readonly number[]): Route;
}

/**
 * The router a manifest's `router` describes. The rule needs only the token count; FastREM needs the vocabulary's
 * per-id tables (fastrem.ts `fastRemVocab`, built from the artifact's tokenizer), passed as a value or a thunk so that
 * artifacts with the rule never build them.
 * @throws Error when the spec is FastREM and no vocabulary is given, or the spec is invalid.
 */
export function createInputRouter(spec: RouterSpec, vocab?: FastRemVocab | (() => FastRemVocab)): InputRouter {
  if (spec.kind === "rule") return { kind: "rule", route: (ids) => routeByTokenCount(ids.length, spec) };
  if (spec.kind === "fastrem") {
    if (vocab === undefined) {
      throw new Error('the manifest\'s router is "fastrem", which reads token strings: give the router the tokenizer\'s vocabulary');
    }
    const router = new FastRemRouter(spec, typeof vocab === "function" ? vocab() : vocab);
    return { kind: "fastrem", route: (ids) => router.route(ids) };
  }
  throw new Error(`unknown router kind ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
}

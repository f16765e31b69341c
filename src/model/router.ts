/**
 * The documented rule router (spec.ts {@link RouterRule}): chooses a recursion depth from the length of the encoded
 * input, until a trained router (FastREM) replaces it.
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
import type { RouterRule, TaesrArchitecture } from "./spec.js";

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

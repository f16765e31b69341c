/**
 * Which of a dataset's queries an artifact was trained on. `npm run train -- --adapt` can turn a corpus's train qrels
 * into supervised pairs (manifest `adaptation.trainQrelsUsed`) and hold a share of those queries out by id
 * (`adaptation.heldOutQueries`, training/src/train/export.ts). Anything chosen on that split afterwards — fusion
 * weights, document depth, a depth router — must be chosen on the held-out queries only: on the trained ones the dense
 * side scores far above what a new query gets, and every choice would trust it too much.
 *
 * @module
 */

/** The fewest held-out queries a choice may rest on: below it one query moves a mean by more than the steps chosen between. */
export const MIN_HELD_OUT_QUERIES = 20;

/** What the choices below need from an artifact's manifest (ArtifactManifest satisfies it). */
export interface AdaptationFacts {
  adaptation?: Record<string, unknown>;
  training?: Record<string, unknown>;
}

/**
 * The ids of the train queries an adaptation held out of its supervised pairs (manifest `adaptation.heldOutQueries`,
 * written by training/src/train/export.ts when the run set `holdoutQueries`); undefined for an artifact without them.
 * @throws Error when the record is there but malformed (a hand-edited manifest): tuning on a guessed set would be
 *   worse than refusing.
 */
export function recordedHeldOutQueries(adaptation: Readonly<Record<string, unknown>>): { ids: ReadonlySet<string>; fraction?: number } | undefined {
  const record = adaptation["heldOutQueries"];
  if (record === undefined) return undefined;
  const ids = typeof record === "object" && record !== null ? (record as Record<string, unknown>)["ids"] : undefined;
  if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === "string")) {
    throw new Error(`the manifest's adaptation.heldOutQueries has no "ids" array of query id strings: cannot tell which train queries the adaptation held out`);
  }
  const fraction = (record as Record<string, unknown>)["fraction"];
  return { ids: new Set(ids), ...(typeof fraction === "number" ? { fraction } : {}) };
}

/** The adaptation record of an artifact adapted with this dataset's own train qrels, when `dataset` is that split. */
export function trainedOnTheseQueries(manifest: AdaptationFacts, dataset: { name: string; split: string }): Record<string, unknown> | undefined {
  const adaptation = manifest.adaptation;
  const trained = adaptation !== undefined && adaptation["trainQrelsUsed"] === true && adaptation["corpus"] === dataset.name && dataset.split === "train";
  return trained ? adaptation : undefined;
}

/**
 * The queries a tool may choose a setting on before it evaluates (bench/document-depth.ts, the router trainer in
 * training/src/router): the queries an adaptation held out by id when the artifact was trained on this dataset's train
 * queries, else every query. Refuses an adaptation that used the train queries without recording the held-out ids,
 * rather than choose on queries it trained on. (bench/eval/fusion-tuning.ts fairTuningQueries makes the same choice
 * on lists already ranked, with a fallback for artifacts older than the record.)
 */
export function untrainedQueries<Q extends { id: string }>(
  queries: readonly Q[],
  manifest: AdaptationFacts,
  dataset: { name: string; split: string },
): { queries: readonly Q[]; note?: string } {
  const adaptation = trainedOnTheseQueries(manifest, dataset);
  if (!adaptation) return { queries };
  const recorded = recordedHeldOutQueries(adaptation);
  if (!recorded) {
    throw new Error(`the artifact was trained on ${dataset.name} train queries and records none it held out (adaptation.heldOutQueries): choose on another split`);
  }
  const held = keepHeldOut(queries, (q) => q.id, recorded.ids, dataset.name);
  return { queries: held, note: `${held.length} of ${queries.length} ${dataset.name} train queries: those held out of the adaptation's supervised pairs by query id` };
}

/**
 * The items (queries, or lists ranked for them) whose query the adaptation held out, at least {@link MIN_HELD_OUT_QUERIES}
 * of them. One rule for every tool that chooses on them (untrainedQueries here, bench/eval/fusion-tuning.ts
 * fairTuningQueries), so they refuse alike.
 * @throws Error when fewer are held out.
 */
export function keepHeldOut<T>(items: readonly T[], queryIdOf: (item: T) => string, heldOutIds: ReadonlySet<string>, datasetName: string): T[] {
  const held = items.filter((item) => heldOutIds.has(queryIdOf(item)));
  if (held.length < MIN_HELD_OUT_QUERIES) {
    throw new Error(
      `only ${held.length} of the ${items.length} ${datasetName} train queries are among the ${heldOutIds.size} the adaptation held out by query id (need ${MIN_HELD_OUT_QUERIES}): adapt with a larger holdoutQueries, or choose on another split`,
    );
  }
  return held;
}

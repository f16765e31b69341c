/**
 * Auxiliary labels for the named subspaces of the embedding (src/model/taesr-config.ts: temporal [192,256), procedural
 * [256,320), contextual [320,384)), derived from a text and the pair it came from — no external data, no annotation.
 * train/subspace-loss.ts trains a linear probe on each subspace to predict its label, so each range is pushed to carry
 * one property a reader can name.
 *
 * - temporal (binary): the text contains a time expression — a year in context (in 1998, the 1990s, 1990–2005), a date
 *   (12/03/2004, 2004-03-12, 3 May), a month or weekday, a time of day, a duration (12 weeks, 28 wk, three years), a
 *   relative time word (ago, yesterday, recently, annually) or a temporal connective (before, after, during, since,
 *   until), centuries and decades. Connectives are included on purpose: "after treatment" is temporal order, which is
 *   what a time-aware query ("before 2010", "after surgery") wants matched. Numbers alone never count: "2000 patients"
 *   is a count, so a bare year needs a preposition, a decade suffix or a range.
 * - procedural (binary): the text instructs or describes steps — how-to phrasing, an imperative sentence opening with an
 *   instruction verb followed by an object (install the …, run `…`, click …), second-person modals (you can/should/must
 *   …), "in order to", "to <verb> …, run/use/type …", step/sequence markers (step 2, first … then, numbered list items),
 *   procedure nouns (instructions, tutorial, recipe, procedure, protocol) and "use(d) … to <verb>". A bare verb gloss
 *   ("cause to move", WordNet's verb definitions) is not procedural: the instruction verbs must take a determiner or
 *   pronoun object.
 * - contextual (4-way): the pair's source — debian, wordnet, scifact, adapt (CONTEXT_CLASSES order); biomed pairs
 *   (Gene Ontology definitions, gene descriptions) are glossary text like WordNet's and take its class, so the probe
 *   keeps its four classes (a weight shape in every checkpoint and artifact). It is the only
 *   "where does this text come from" signal every pair has, and query and document share it, so the subspace learns a
 *   property of both sides. The pair kind (title → text, sentence → rest…) was rejected: it differs between the two
 *   sides of one pair and is mostly text length, which the probe would learn instead of context.
 *
 * The regexes are heuristics with known misses; test/subspace-labels.test.ts pins their behaviour on real corpus lines.
 *
 * @module
 */
import type { PairSource } from "./pairs.js";

/** The labels of one text. */
export interface SubspaceLabel {
  temporal: 0 | 1;
  procedural: 0 | 1;
  /** Index of the text's source in PAIR_SOURCES. */
  contextual: number;
}

/** Classes of the contextual label, in label order. */
export const CONTEXT_CLASSES: readonly PairSource[] = ["debian", "wordnet", "scifact", "adapt"];

/** Sources that share another's class (see the module doc). */
const SHARED_CLASS: Partial<Record<PairSource, PairSource>> = { biomed: "wordnet" };

const MONTHS_UNAMBIGUOUS = "January|February|April|June|July|August|September|October|November|December";
const MONTH_ABBREV = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec";
const NUMBER_WORD = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|few|many|a|an|each|every|per|\\d+(?:\\.\\d+)?";
const TIME_UNIT = "seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur(?:y|ies)|millenni(?:um|a)|fortnights?";

/** Each pattern is one kind of time expression; a text is temporal when any matches. */
export const TEMPORAL_PATTERNS: readonly RegExp[] = [
  // A year after a preposition, as a decade, or in a range: "in 1998", "the 1990s", "1990-2005", "since 2001".
  /\b(?:in|since|from|by|until|till|before|after|during|between|circa|c\.|around|early|late|mid-?)\s+(?:1[5-9]\d\d|20\d\d)\b/i,
  /\b(?:1[5-9]\d0|20[0-9]0)'?s\b/,
  /\b(?:1[5-9]\d\d|20\d\d)\s*(?:-|–|to)\s*(?:1[5-9]\d\d|20\d\d)\b/,
  // Dates: 12/03/2004, 2004-03-12, 3 May 2004 / May 3.
  /\b\d{1,2}\/\d{1,2}\/\d{2,4}\b/,
  /\b(?:1[5-9]\d\d|20\d\d)-\d{2}-\d{2}\b/,
  new RegExp(`\\b(?:${MONTHS_UNAMBIGUOUS})\\b`),
  /\b(?:May|March)\s+\d{1,4}\b|\b\d{1,2}\s+(?:May|March)\b|\b(?:in|of|early|late|mid-?)\s+(?:May|March)\b/,
  new RegExp(`\\b(?:${MONTH_ABBREV})\\.?\\s+\\d{1,4}\\b`),
  // Weekdays, parts of the day, seasons, deictic days.
  /\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|weekdays?)\b/i,
  /\b(?:today|tonight|yesterday|tomorrow|midnight|noon|morning|afternoon|evening|night(?:time)?|overnight|daytime|summer|autumn|winter)s?\b/i,
  /\b\d{1,2}:\d{2}\b|\b\d{1,2}\s?(?:a\.m\.|p\.m\.|am|pm)\b/i,
  // Durations and ages: "12 weeks", "three years", "28 wk", "6 mo", "a decade".
  new RegExp(`\\b(?:${NUMBER_WORD})[\\s-]+(?:${TIME_UNIT})\\b`, "i"),
  /\b\d+(?:\.\d+)?\s?(?:ms|mins?|hrs?|h|wk|wks|yrs?|mo)\b/,
  // Time units alone that only ever mean time, and relative/frequency words.
  /\b(?:centur(?:y|ies)|decades?|millenni(?:um|a)|era|epoch|annual(?:ly)?|daily|weekly|monthly|yearly|hourly|nightly)\b/i,
  /\b(?:ago|recently|formerly|previously|nowadays|currently|historically|meanwhile|subsequently|later|earlier|soon|once|anymore|ancient|medieval|prehistoric|modern)\b/i,
  // Temporal connectives: order in time.
  /\b(?:before|after|during|since|until|till|while|when|whenever|afterwards?|beforehand)\b/i,
  /\b(?:time|times|timing|timeline|duration|period|periods|date|dates|dated|age|aged|ages|years?|months?|weeks?|days?|hours?|minutes?)\b/i,
];

/** Verbs that open an instruction ("install the package", "run it"). Object-taking only: see the module comment. */
const INSTRUCTION_VERBS =
  "install|uninstall|configure|run|use|open|close|click|select|choose|add|remove|delete|create|set|enable|disable|download|" +
  "upload|type|enter|press|edit|copy|move|check|ensure|follow|go|update|upgrade|build|compile|start|stop|restart|mount|" +
  "unmount|connect|disconnect|insert|replace|save|load|launch|execute|specify|write|put|place|mix|stir|heat|boil|pour|cut|" +
  "chop|bake|preheat|combine|apply|attach|plug|unplug|turn|wait|make sure|read|see|try|note|visit|call|invoke|pass|edit";
const OBJECT = "(?:the|a|an|your|this|that|these|those|it|them|all|each|every|any|some|one|[`'\"<$./-]|--?\\w)";

/** Each pattern is one mark of an instruction or a procedure; a text is procedural when any matches. */
export const PROCEDURAL_PATTERNS: readonly RegExp[] = [
  /\bhow\s+(?:to|do\s+(?:i|you)|can\s+(?:i|you))\b/i,
  // An imperative sentence: an instruction verb at a sentence start, then an object.
  new RegExp(`(?:^|[.!?:;]\\s+|\\n\\s*)(?:please\\s+|then\\s+|now\\s+|first,?\\s+|next,?\\s+|finally,?\\s+)?(?:${INSTRUCTION_VERBS})\\s+${OBJECT}`, "i"),
  /\byou\s+(?:can|could|should|must|need\s+to|have\s+to|may\s+want\s+to|will\s+need|might\s+want)\b/i,
  /\b(?:in\s+order\s+to)\b/i,
  // "To install it, run …" / "To use this, type …".
  new RegExp(`(?:^|[.!?]\\s+)to\\s+\\w+[^.!?]{0,80},\\s*(?:${INSTRUCTION_VERBS})\\b`, "i"),
  /\bstep\s*(?:\d+|one|two|three|by\s+step)\b|\bsteps\b/i,
  /\bfirst(?:ly)?\b[^.!?]{0,120}\b(?:then|next|second(?:ly)?|after\s+that|finally)\b/i,
  // Numbered list items ("1. Open …", "2) Run …") — at least two of them.
  /(?:^|\s)1[.)]\s+\S[\s\S]*?(?:^|\s)2[.)]\s+\S/,
  /\b(?:instructions?|tutorials?|recipes?|procedures?|protocols?|walkthrough|guide|guidelines|howto|manual|cookbook|wizard)\b/i,
  /\b(?:use|used|using|uses)\s+(?:\w+\s+){0,4}?to\s+(?:install|configure|create|build|run|make|convert|manage|edit|generate|compile|set\s+up|access|control|monitor|measure|test|check|view|read|write|send|find|search|play|record)\b/i,
];

/**
 * The part of `text` a model sees after tokenisation to `tokens` pieces, approximately: its first `tokens` words. A word
 * is at least one piece, so nothing visible is cut; labels derived from it do not count a time expression or an
 * instruction that truncation removed (a 1,000-character abstract is 32 tokens in the tiny config).
 */
export function visibleWords(text: string, tokens: number): string {
  return text.split(/\s+/).slice(0, tokens).join(" ");
}

export function isTemporal(text: string): boolean {
  return TEMPORAL_PATTERNS.some((p) => p.test(text));
}

export function isProcedural(text: string): boolean {
  return PROCEDURAL_PATTERNS.some((p) => p.test(text));
}

/** The contextual class of a source; throws for a name outside PAIR_SOURCES (a new source needs a class). */
export function contextualLabel(source: PairSource): number {
  const index = CONTEXT_CLASSES.indexOf(SHARED_CLASS[source] ?? source);
  if (index < 0) throw new Error(`contextual label: unknown pair source ${JSON.stringify(source)}; expected one of ${CONTEXT_CLASSES.join(", ")}`);
  return index;
}

/** All three labels of one text of a pair from `source`. */
export function subspaceLabel(text: string, source: PairSource): SubspaceLabel {
  return { temporal: isTemporal(text) ? 1 : 0, procedural: isProcedural(text) ? 1 : 0, contextual: contextualLabel(source) };
}

/** The labels of a batch's rows as the loss wants them: float 0/1 targets and int class indices. */
export interface SubspaceLabelRows {
  temporal: Float32Array;
  procedural: Float32Array;
  contextual: Int32Array;
}

export function labelRows(rows: readonly { text: string; source: PairSource }[]): SubspaceLabelRows {
  const out: SubspaceLabelRows = {
    temporal: new Float32Array(rows.length),
    procedural: new Float32Array(rows.length),
    contextual: new Int32Array(rows.length),
  };
  rows.forEach((row, i) => {
    const label = subspaceLabel(row.text, row.source);
    out.temporal[i] = label.temporal;
    out.procedural[i] = label.procedural;
    out.contextual[i] = label.contextual;
  });
  return out;
}

/**
 * Which of a query's lexical terms score: shared by the shards (which score them) and the coordinator (which caches
 * their corpus statistics), so both agree on the set.
 *
 * @module
 */

/** Query terms beyond this many distinct pieces add cost but barely change BM25's ranking. */
export const MAX_QUERY_TERMS = 64;

/** The distinct query terms that score (at most MAX_QUERY_TERMS, first occurrences first) and the query with only those. */
export function scoringTerms(terms: readonly string[]): { distinct: string[]; query: string[] } {
  const head = terms.slice(0, 4 * MAX_QUERY_TERMS);
  const distinct = [...new Set(head)].slice(0, MAX_QUERY_TERMS);
  const kept = new Set(distinct);
  return { distinct, query: head.filter((term) => kept.has(term)) };
}

/** The short queries every embed-latency benchmark times, in Node and inside workerd alike, so the figures compare. */
export const SHORT_QUERIES: readonly string[] = [
  "clean a bicycle chain",
  "why do volcanoes erupt",
  "sourdough starter",
  "vaccine immune memory",
  "rust ownership and borrowing",
  "lighthouse keeper",
  "chess opening principles",
  "tide pool animals",
];

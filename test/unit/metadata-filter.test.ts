/**
 * The metadata filter language's reference semantics (src/retrieval/metadata-filter.ts): every backend must select
 * the same documents, so these cases pin what each operator means — including the edges (missing fields, arrays,
 * mixed types).
 */
import { describe, expect, it } from "vitest";
import { matchesFilter, type MetadataFilter } from "../../src/retrieval/index.js";

const doc = { lang: "en", year: 2021, draft: false, tags: ["tide", "moon"], source: { site: "almanac", page: 4 }, note: null };

describe("matchesFilter", () => {
  const cases: [MetadataFilter, boolean][] = [
    [{}, true],
    [{ lang: "en" }, true],
    [{ lang: "fr" }, false],
    [{ lang: "en", year: 2020 }, false], // every clause must hold
    [{ draft: false }, true],
    [{ note: null }, true],
    [{ missing: null }, false], // null matches a null value, not a missing field
    [{ tags: "moon" }, true], // an array matches when any element does
    [{ tags: { $in: ["sun", "tide"] } }, true],
    [{ tags: { $nin: ["tide"] } }, false],
    [{ "source.site": "almanac" }, true],
    [{ "source.page": { $gt: 3, $lte: 4 } }, true],
    [{ "source.site.deeper": "x" }, false],
    [{ year: { $gte: 2021 } }, true],
    [{ year: { $gt: 2021 } }, false],
    [{ year: { $lt: "2022" } }, false], // comparisons only hold between values of one type
    [{ lang: { $gt: "de" } }, true], // strings compare lexicographically
    [{ year: { $ne: 2020 } }, true],
    [{ missing: { $ne: "x" } }, true], // $ne and $nin hold for a missing field, as in MongoDB
    [{ missing: { $nin: ["x"] } }, true],
    [{ missing: { $in: ["x"] } }, false],
    [{ missing: { $exists: false } }, true],
    [{ lang: { $exists: true, $in: ["en", "de"] } }, true],
    [{ $or: [{ lang: "fr" }, { year: 2021 }] }, true],
    [{ $or: [{ lang: "fr" }, { year: 2020 }] }, false],
    [{ $and: [{ lang: "en" }, { $or: [{ draft: true }, { tags: "tide" }] }] }, true],
    [{ toString: "x" }, false], // inherited properties are not metadata
  ];
  it.each(cases)("%j → %s", (filter, expected) => {
    expect(matchesFilter(doc, filter)).toBe(expected);
  });

  it("treats a document without metadata as having no fields", () => {
    expect(matchesFilter(null, { lang: "en" })).toBe(false);
    expect(matchesFilter(null, { lang: { $exists: false } })).toBe(true);
    expect(matchesFilter(null, {})).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { matchesFilter, type MetadataFilter } from "../../src/retrieval/metadata-filter.js";
import { UnsupportedFilterError, formatNumber, quoteString, toUpstashFilter } from "../../workers/edge/src/upstash-filter.js";
import { evaluateFilter, parseFilter } from "../support/fake-upstash.js";

describe("toUpstashFilter: one exact translation per operator", () => {
  const cases: [string, MetadataFilter, string | boolean][] = [
    ["bare scalar", { lang: "en" }, "(lang = 'en' OR lang CONTAINS 'en')"],
    ["$eq number", { year: { $eq: 2024 } }, "(year = 2024 OR year CONTAINS 2024)"],
    ["$eq boolean", { draft: false }, "(draft = false OR draft CONTAINS false)"],
    ["$ne", { lang: { $ne: "de" } }, "(HAS NOT FIELD lang OR lang != 'de')"],
    ["$in", { lang: { $in: ["en", "fr"] } }, "(lang IN ('en', 'fr') OR lang CONTAINS 'en' OR lang CONTAINS 'fr')"],
    ["$nin", { lang: { $nin: ["en", 3] } }, "(HAS NOT FIELD lang OR lang NOT IN ('en', 3))"],
    ["$gt", { year: { $gt: 2020 } }, "year > 2020"],
    ["$gte", { year: { $gte: 2020 } }, "year >= 2020"],
    ["$lt", { score: { $lt: -0.5 } }, "score < -0.5"],
    ["$lte", { score: { $lte: 1.25 } }, "score <= 1.25"],
    ["range", { year: { $gte: 2000, $lt: 2010 } }, "(year >= 2000 AND year < 2010)"],
    ["$exists true", { author: { $exists: true } }, "HAS FIELD author"],
    ["$exists false", { author: { $exists: false } }, "HAS NOT FIELD author"],
    ["dotted path", { "source.site": "arxiv" }, "(source.site = 'arxiv' OR source.site CONTAINS 'arxiv')"],
    ["implicit AND", { a: 1, b: { $gt: 2 } }, "((a = 1 OR a CONTAINS 1) AND b > 2)"],
    ["$and", { $and: [{ a: { $lt: 1 } }, { b: { $gt: 2 } }] }, "(a < 1 AND b > 2)"],
    ["$or", { $or: [{ a: { $lt: 1 } }, { b: { $exists: false } }] }, "(a < 1 OR HAS NOT FIELD b)"],
    ["nested $or in $and", { $and: [{ $or: [{ a: { $lt: 1 } }, { a: { $gt: 9 } }] }, { b: { $exists: true } }] }, "((a < 1 OR a > 9) AND HAS FIELD b)"],
    ["empty filter", {}, true],
    ["$in [] matches nothing", { a: { $in: [] } }, false],
    ["$nin [] matches everything", { a: { $nin: [] } }, true],
    ["$or [] matches nothing", { $or: [] }, false],
    ["$and [] matches everything", { $and: [] }, true],
    ["false folds through AND", { a: { $gt: 1 }, b: { $in: [] } }, false],
    ["false drops out of OR", { $or: [{ a: { $in: [] } }, { b: { $gt: 1 } }] }, "b > 1"],
    ["empty condition", { a: {} }, true],
  ];
  it.each(cases)("%s", (_name, filter, expected) => {
    expect(toUpstashFilter(filter)).toBe(expected);
  });

  it("writes every path under the prefix where the adapter keeps user metadata", () => {
    expect(toUpstashFilter({ "a.b": { $exists: true }, $or: [{ c: { $gt: 1 } }, { d: { $lt: 0 } }] }, "meta.")).toBe(
      "(HAS FIELD meta.a.b AND (meta.c > 1 OR meta.d < 0))",
    );
  });

  it("has nothing to say without a filter", () => {
    expect(toUpstashFilter(undefined)).toBe(true);
  });
});

describe("toUpstashFilter: literals", () => {
  it("quotes a string in the quote it does not contain, escaping only when it must", () => {
    expect(quoteString("plain")).toBe("'plain'");
    expect(quoteString("O'Brien")).toBe(`"O'Brien"`);
    expect(quoteString('say "hi"')).toBe(`'say "hi"'`);
    expect(quoteString(`both ' and "`)).toBe(`'both \\' and "'`);
    expect(quoteString("back\\slash")).toBe("'back\\\\slash'");
    expect(quoteString("x' OR '1' = '1")).toBe(`"x' OR '1' = '1"`);
    expect(quoteString("")).toBe("''");
  });

  it("reads hostile strings back as themselves (escapes consistent with the grammar the fake parses)", () => {
    const hostile = ["O'Brien", 'say "hi"', `both ' and "`, "back\\slash", "trailing\\", "\\'", `x' OR '1' = '1`, `") OR (a = 1`, "ünïcödé ✓"];
    for (const value of hostile) {
      const filter = toUpstashFilter({ name: { $in: [value] } });
      expect(typeof filter).toBe("string");
      const parsed = parseFilter(filter as string);
      expect(evaluateFilter(parsed, { name: value }), value).toBe(true);
      expect(evaluateFilter(parsed, { name: value + "x" }), value).toBe(false);
    }
  });

  it("writes numbers in plain decimal, never in exponent form", () => {
    expect(formatNumber(42)).toBe("42");
    expect(formatNumber(-2.5)).toBe("-2.5");
    expect(formatNumber(1e21)).toBe("1000000000000000000000");
    expect(formatNumber(1.5e-7)).toBe("0.00000015");
    expect(formatNumber(-1.25e-10)).toBe("-0.000000000125");
    expect(Number(formatNumber(1.5e-7))).toBe(1.5e-7);
    expect(() => formatNumber(Number.NaN)).toThrow(UnsupportedFilterError);
  });
});

describe("toUpstashFilter: refuses what Upstash cannot express", () => {
  const refused: [string, unknown, RegExp][] = [
    ["null value", { a: null }, /no null literal/],
    ["$ne null", { a: { $ne: null } }, /no null literal/],
    ["null in $in", { a: { $in: ["x", null] } }, /no null literal/],
    ["string comparison", { date: { $gte: "2024-01-01" } }, /compares numbers only/],
    ["unknown operator", { a: { $regex: "x" } }, /unknown operator "\$regex"/],
    ["nested object instead of a dotted path", { source: { site: "x" } }, /unknown operator "site".*dotted paths/],
    ["array as a value", { tags: ["a", "b"] }, /use \{ "\$in"/],
    ["unknown combinator", { $not: { a: 1 } }, /\$not: unknown operator/],
    ["bad path", { "a..b": 1 }, /not a metadata path/],
    ["path with brackets", { "tags[0]": "a" }, /not a metadata path/],
    ["$in not an array", { a: { $in: "x" } }, /takes an array/],
    ["$exists not boolean", { a: { $exists: 1 } }, /takes true or false/],
    ["non-finite number", { a: { $gt: Number.POSITIVE_INFINITY } }, /cannot filter on the number Infinity/],
  ];
  it.each(refused)("%s", (_name, filter, message) => {
    expect(() => toUpstashFilter(filter as MetadataFilter)).toThrow(UnsupportedFilterError);
    expect(() => toUpstashFilter(filter as MetadataFilter)).toThrow(message);
  });
});

describe("toUpstashFilter agrees with matchesFilter (evaluated by the fake's reading of Upstash's grammar)", () => {
  const documents: unknown[] = [
    { lang: "en", year: 2024, tags: ["ml", "search"], source: { site: "arxiv", rank: 3 }, draft: false },
    { lang: "fr", year: 2019, tags: ["search"], source: { site: "hal" }, draft: true },
    { lang: "en", year: 2010, tags: [], title: "O'Brien \"quoted\" \\ path" },
    { lang: "de", tags: ["ml"], source: { rank: 10 } },
    { year: 2024 },
    {},
    null,
  ];
  const filters: MetadataFilter[] = [
    { lang: "en" },
    { tags: "ml" },
    { tags: { $in: ["search", "nlp"] } },
    { lang: { $in: ["fr", "de"] } },
    { lang: { $ne: "en" } },
    { lang: { $nin: ["en", "fr"] } },
    { "source.site": { $ne: "arxiv" } },
    { year: { $gte: 2019, $lt: 2024 } },
    { year: { $gt: 2000 }, lang: "en" },
    { "source.rank": { $lte: 3 } },
    { "source.site": { $exists: true } },
    { "source.site": { $exists: false } },
    { draft: true },
    { draft: { $ne: true } },
    { title: `O'Brien "quoted" \\ path` },
    { $or: [{ lang: "de" }, { year: { $lt: 2015 } }] },
    { $and: [{ tags: "ml" }, { $or: [{ lang: "en" }, { "source.rank": { $gt: 5 } }] }] },
    { year: { $in: [2019, 2024] }, tags: { $in: ["search"] } },
  ];
  it.each(filters.map((filter) => [JSON.stringify(filter), filter] as const))("%s", (_name, filter) => {
    const translated = toUpstashFilter(filter, "meta.");
    const selected = documents.map((metadata) =>
      typeof translated === "boolean" ? translated : evaluateFilter(parseFilter(translated), metadata === null ? {} : { meta: metadata }),
    );
    expect(selected).toEqual(documents.map((metadata) => matchesFilter(metadata, filter)));
  });
});

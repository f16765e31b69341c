/**
 * The subspace labelers (src/data/subspace-labels.ts) on real lines of the shared corpora (quoted with their ids), a
 * few constructed edge cases the regexes are designed around, and the label rates over the first records of each
 * corpus (neither label may be all or nothing, or its probe would have nothing to learn).
 */
import { describe, expect, it } from "vitest";
import { debianPairs, scifactPairs, wordnetPairs, type TextPair } from "../src/data/pairs.js";
import { readDebianPackages, readSciFactCorpus, readWordNetSynsets } from "../src/data/corpora.js";
import { contextualLabel, isProcedural, isTemporal, labelRows, subspaceLabel } from "../src/data/subspace-labels.js";

describe("temporal label", () => {
  it.each([
    ["debian 0ad", "In short, it is a historically-based war/economy game that allows players to relive or rewrite the history of Western civilizations, focusing on the years between 500 B.C. and 500 A.D."],
    ["debian cron", "The cron daemon is a background process that runs particular programs at particular times (for example, every minute, day, week, or month), as specified in a crontab."],
    ["debian anacron", "It executes commands at intervals specified in days."],
    ["wordnet noun:15156187 (yesterday)", "the day immediately before today"],
    ["wordnet verb:00372400 (preheat)", "heat beforehand"],
    ["scifact 4983", "In the central white matter the mean apparent diffusion coefficient at 28 wk was high, 1.8 microm2/ms, and decreased toward term to 1.2 microm2/ms."],
    ["scifact 4983 (title)", "Microstructural development of human newborn cerebral white matter assessed in vivo by diffusion tensor magnetic resonance imaging."],
  ])("finds the time expression in %s", (name, text) => {
    // The title is the one negative of the list: "development" and "newborn" are not time expressions.
    expect(isTemporal(text)).toBe(!name.includes("title"));
  });

  it.each([
    ["wordnet noun:00002137", "a general concept formed by extracting common features from specific examples"],
    ["wordnet noun:00001930", "an entity that has physical existence"],
    ["debian alien title", "convert and install rpm and other packages"],
    ["debian adwaita-qt title", "Qt 5 port of GNOME’s Adwaita theme"],
  ])("finds none in %s", (_name, text) => {
    expect(isTemporal(text)).toBe(false);
  });

  it("needs context for a bare year: counts are not dates", () => {
    expect(isTemporal("2000 patients were enrolled")).toBe(false);
    expect(isTemporal("enrolled in 2000")).toBe(true);
    expect(isTemporal("trends of the 1990s")).toBe(true);
    expect(isTemporal("cohort 1990-2005")).toBe(true);
    expect(isTemporal("released on 2004-03-12")).toBe(true);
    expect(isTemporal("you may need it")).toBe(false); // "May" the verb is not the month
    expect(isTemporal("born in May")).toBe(true);
  });
});

describe("procedural label", () => {
  it.each([
    ["debian adwaita-qt", "To use it, start your Qt applications with “-style Adwaita” parameter, or export QT_STYLE_OVERRIDE=Adwaita environment variable."],
    ["wordnet verb:00372400 example", "Preheat the oven!"],
    ["wordnet verb:01569584 example", "install the washer and dryer"],
    ["debian apt-listbugs", "Especially, it is intended to be invoked before each installation/upgrade by APT in order to check whether the installation/upgrade is safe."],
    ["wordnet noun:06788785 terms", "recipe, formula"],
  ])("recognises the instruction in %s", (_name, text) => {
    expect(isProcedural(text)).toBe(true);
  });

  it.each([
    // A verb gloss starts with a bare verb but gives no instruction.
    ["wordnet verb:01569584 (install)", "set up for use"],
    ["wordnet verb:00372400 (preheat)", "heat beforehand"],
    ["debian vim", "Vim is an almost compatible version of the UNIX editor Vi."],
    ["scifact 4983", "Alterations of the architecture of cerebral white matter in the developing human brain can affect cortical development and result in functional disabilities."],
  ])("does not call %s procedural", (_name, text) => {
    expect(isProcedural(text)).toBe(false);
  });

  it("reads how-to phrasing, numbered steps and sequences", () => {
    expect(isProcedural("How to configure a printer")).toBe(true);
    expect(isProcedural("1. Open the lid 2. Insert the cartridge")).toBe(true);
    expect(isProcedural("First, unplug the device, then remove the battery")).toBe(true);
    expect(isProcedural("a tool used to convert images")).toBe(true);
    expect(isProcedural("The 2 proteins differ")).toBe(false);
  });
});

describe("contextual label and batch rows", () => {
  it("is the source's index, shared by a pair's query and document", () => {
    expect([contextualLabel("debian"), contextualLabel("wordnet"), contextualLabel("scifact"), contextualLabel("adapt")]).toEqual([0, 1, 2, 3]);
    expect(contextualLabel("biomed")).toBe(contextualLabel("wordnet"));
    expect(() => contextualLabel("reddit" as never)).toThrow(/unknown pair source "reddit"; expected one of debian, wordnet, scifact, adapt/);
    expect(subspaceLabel("Preheat the oven!", "wordnet")).toEqual({ temporal: 0, procedural: 1, contextual: 1 });
  });

  it("labels rows in order, as typed arrays the loss can take", () => {
    const rows = labelRows([
      { text: "the day immediately before today", source: "wordnet" },
      { text: "Preheat the oven!", source: "wordnet" },
      { text: "Vim is an almost compatible version of the UNIX editor Vi.", source: "debian" },
    ]);
    expect([...rows.temporal]).toEqual([1, 0, 0]);
    expect([...rows.procedural]).toEqual([0, 1, 0]);
    expect([...rows.contextual]).toEqual([1, 1, 0]);
  });
});

describe("label rates on the corpora", () => {
  it("gives each binary label both classes on every corpus's documents", async () => {
    const texts = async <R>(records: AsyncIterable<R>, pairs: (r: R) => Iterable<TextPair>): Promise<string[]> => {
      const out: string[] = [];
      for await (const r of records) for (const p of pairs(r)) out.push(p.doc, p.query);
      return out;
    };
    const corpora = {
      debian: await texts(readDebianPackages({ limit: 1500 }), debianPairs),
      wordnet: await texts(readWordNetSynsets({ limit: 1500 }), wordnetPairs),
      scifact: await texts(readSciFactCorpus({ limit: 300 }), (r) => scifactPairs(r)),
    };
    const rates: Record<string, { temporal: number; procedural: number }> = {};
    for (const [name, list] of Object.entries(corpora)) {
      rates[name] = {
        temporal: list.filter(isTemporal).length / list.length,
        procedural: list.filter(isProcedural).length / list.length,
      };
    }
    // Not degenerate anywhere, and ordered as the corpora are: abstracts are full of time (ages, durations, follow-up),
    // package descriptions are where the instructions are.
    for (const r of Object.values(rates)) expect(r.temporal).toBeGreaterThan(0.02);
    expect(rates["scifact"]!.temporal).toBeGreaterThan(rates["wordnet"]!.temporal);
    expect(rates["debian"]!.procedural).toBeGreaterThan(0.03);
    expect(rates["debian"]!.procedural).toBeGreaterThan(rates["wordnet"]!.procedural);
    for (const r of Object.values(rates)) expect(r.temporal).toBeLessThan(0.8);
  });
});

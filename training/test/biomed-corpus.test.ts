/**
 * The biomed source: Gene Ontology and human-gene SQLite databases (built here with sql.js in the packages' own
 * schema) → corpus records → pairs; the corpus file reader's checks; and the CLI end to end on two small .deb packages
 * made with the real dpkg-deb, as Debian's r-bioc-go.db and r-bioc-org.hs.eg.db lay them out.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import initSqlJs, { type Database } from "sql.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIOMED_PACKAGES, biomedRecords, readGoTerms, type BiomedRecord } from "../src/data/biomed-corpus.js";
import { readBiomedCorpus } from "../src/data/corpora.js";
import { biomedPairs, buildPairs } from "../src/data/pairs.js";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
let SQL: Awaited<ReturnType<typeof initSqlJs>>;
let tmp: string;

function goDatabase(): Database {
  const db = new SQL.Database();
  db.run(`
    CREATE TABLE go_term (_id INTEGER PRIMARY KEY, go_id CHAR(10) NOT NULL UNIQUE, term VARCHAR(255) NOT NULL, ontology VARCHAR(9) NOT NULL, definition TEXT NULL);
    CREATE TABLE go_synonym (_id INTEGER NOT NULL, synonym VARCHAR(255) NOT NULL, secondary CHAR(10) NULL, like_go_id SMALLINT);
    INSERT INTO go_term VALUES (1, 'all', 'all', 'universal', 'The root.');
    INSERT INTO go_term VALUES (2, 'GO:0006915', 'apoptotic process', 'BP', 'A programmed cell death process.');
    INSERT INTO go_term VALUES (3, 'GO:0005634', 'nucleus', 'CC', 'A membrane-bounded organelle holding the genome.');
    INSERT INTO go_term VALUES (4, 'GO:0003677', 'DNA binding', 'MF', 'Binding to DNA.');
    INSERT INTO go_term VALUES (5, 'GO:0000000', 'undefined term', 'BP', NULL);
    INSERT INTO go_synonym VALUES (2, 'apoptosis', NULL, 0);
    INSERT INTO go_synonym VALUES (2, 'GO:0006917', 'GO:0006917', 1);
    INSERT INTO go_synonym VALUES (3, 'cell nucleus', NULL, 0);
  `);
  return db;
}

function genesDatabase(): Database {
  const db = new SQL.Database();
  db.run(`
    CREATE TABLE genes (_id INTEGER PRIMARY KEY, gene_id VARCHAR(10) NOT NULL UNIQUE);
    CREATE TABLE gene_info (_id INTEGER NOT NULL UNIQUE, gene_name VARCHAR(255) NOT NULL, symbol VARCHAR(80) NOT NULL);
    CREATE TABLE alias (_id INTEGER NOT NULL, alias_symbol VARCHAR(80) NOT NULL);
    CREATE TABLE genetype (_id INTEGER NOT NULL, gene_type VARCHAR(20) NOT NULL);
    CREATE TABLE go_bp (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
    CREATE TABLE go_mf (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
    CREATE TABLE go_cc (_id INTEGER NOT NULL, go_id CHAR(10) NOT NULL, evidence CHAR(3) NOT NULL);
    INSERT INTO genes VALUES (1, '7157'), (2, '999001'), (3, '999002'), (4, '348');
    INSERT INTO gene_info VALUES (1, 'tumor protein p53', 'TP53'), (2, 'uncharacterized LOC999001', 'LOC999001'),
      (3, 'a microRNA', 'MIR1'), (4, 'apolipoprotein E', 'APOE');
    INSERT INTO genetype VALUES (1, 'protein-coding'), (2, 'protein-coding'), (3, 'ncRNA'), (4, 'protein-coding');
    INSERT INTO alias VALUES (1, 'P53'), (1, 'TP53'), (1, 'LFS1');
    INSERT INTO go_bp VALUES (1, 'GO:0006915', 'IDA'), (1, 'GO:0006915', 'TAS');
    INSERT INTO go_mf VALUES (1, 'GO:0003677', 'IDA');
    INSERT INTO go_cc VALUES (1, 'GO:0005634', 'IDA');
  `);
  return db;
}

beforeAll(async () => {
  SQL = await initSqlJs();
  tmp = await mkdtemp(path.join(os.tmpdir(), "taesr-biomed-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const EXPECTED: BiomedRecord[] = [
  { id: "GO:0003677", kind: "go-term", title: "DNA binding", text: "Binding to DNA.", synonyms: [] },
  { id: "GO:0005634", kind: "go-term", title: "nucleus", text: "A membrane-bounded organelle holding the genome.", synonyms: ["cell nucleus"] },
  { id: "GO:0006915", kind: "go-term", title: "apoptotic process", text: "A programmed cell death process.", synonyms: ["apoptosis"] },
  { id: "gene:348", kind: "gene", title: "APOE", name: "apolipoprotein E", text: "", synonyms: [] },
  {
    id: "gene:7157",
    kind: "gene",
    title: "TP53",
    name: "tumor protein p53",
    // Each term once (two evidence codes for apoptosis); every term here is below MIN_GENES_PER_TERM, so all are used.
    text: "Involved in: apoptotic process. Function: DNA binding. Located in: nucleus.",
    synonyms: ["LFS1", "P53"],
  },
];

describe("biomed records from the packages' databases", () => {
  it("keeps defined GO terms with their word synonyms, and named protein-coding genes with aliases and annotations", () => {
    const records = biomedRecords(goDatabase(), genesDatabase());
    // Genes come in Entrez id order: 348 before 7157.
    expect(records).toEqual(EXPECTED);
  });

  it("names the tables a wrong database lacks", () => {
    const empty = new SQL.Database();
    expect(() => readGoTerms(empty)).toThrow(/GO\.sqlite: the database has no go_term, go_synonym/);
  });
});

describe("biomed pairs", () => {
  it("turns a GO term into term and synonym pairs, a gene into symbol, alias and name pairs, all in one group", () => {
    const [, nucleus, , apoe, tp53] = EXPECTED as [BiomedRecord, BiomedRecord, BiomedRecord, BiomedRecord, BiomedRecord];
    expect([...biomedPairs(nucleus)]).toEqual([
      { query: "nucleus", doc: "A membrane-bounded organelle holding the genome.", source: "biomed", kind: "term->definition", group: "biomed:GO:0005634" },
      { query: "cell nucleus", doc: "A membrane-bounded organelle holding the genome.", source: "biomed", kind: "synonym->definition", group: "biomed:GO:0005634" },
    ]);
    const doc = "tumor protein p53. Involved in: apoptotic process. Function: DNA binding. Located in: nucleus.";
    const pairs = [...biomedPairs(tp53)];
    expect(pairs.map((p) => [p.kind, p.query, p.doc])).toEqual([
      ["symbol->gene", "TP53", doc],
      // One alias, chosen by a hash of the id: stable across runs.
      ["alias->gene", expect.stringMatching(/^(LFS1|P53)$/), doc],
      ["name->annotations", "tumor protein p53", "Involved in: apoptotic process. Function: DNA binding. Located in: nucleus."],
    ]);
    expect(new Set(pairs.map((p) => p.group))).toEqual(new Set(["biomed:gene:7157"]));
    // No annotations: the name is the document, and there is no name → annotations pair.
    expect([...biomedPairs(apoe)].map((p) => [p.kind, p.doc])).toEqual([["symbol->gene", "apolipoprotein E"]]);
  });

  it("is a pair source of its own: counted by kind, split by record", async () => {
    const set = await buildPairs({ biomed: EXPECTED }, { seed: 1, validationFraction: 0, maxValidationPairs: 10, minDocChars: 10, sources: { biomed: {} } });
    expect(set.stats.bySource["biomed"]?.kinds).toEqual({
      "term->definition": 3,
      "synonym->definition": 2,
      "symbol->gene": 2,
      "alias->gene": 1,
      "name->annotations": 1,
    });
    expect(set.train.every((p) => p.source === "biomed")).toBe(true);
  });
});

describe("the corpus file", () => {
  it("says how to build a missing corpus", async () => {
    const missing = path.join(tmp, "none.jsonl");
    await expect(readBiomedCorpus(missing).next()).rejects.toThrow(/does not exist: build it with `npm run -w training corpus:biomed -- --out .*none\.jsonl`/);
  });

  it("names a record of the wrong kind", async () => {
    const file = path.join(tmp, "bad.jsonl");
    await writeFile(file, JSON.stringify({ id: "x", kind: "protein", title: "t", text: "d", synonyms: [] }) + "\n");
    await expect(readBiomedCorpus(file).next()).rejects.toThrow(/bad\.jsonl record 1: field "kind" must be "go-term" or "gene", got "protein"/);
  });
});

/** A .deb holding `bytes` at `file`, built by the real dpkg-deb. */
async function makeDeb(dir: string, pkg: string, file: string, bytes: Uint8Array): Promise<void> {
  const root = path.join(dir, `${pkg}-root`);
  await mkdir(path.join(root, "DEBIAN"), { recursive: true });
  await writeFile(path.join(root, "DEBIAN", "control"), `Package: ${pkg}\nVersion: 9.9.9-1\nArchitecture: all\nMaintainer: test <test@example.org>\nDescription: test data\n`);
  await mkdir(path.dirname(path.join(root, file)), { recursive: true });
  await writeFile(path.join(root, file), bytes);
  await run("dpkg-deb", ["--root-owner-group", "-b", root, path.join(dir, "debs", `${pkg}_9.9.9-1_all.deb`)]);
}

describe("npm run -w training corpus:biomed", () => {
  it("unpacks the two packages and writes the corpus and its provenance", async () => {
    const dir = path.join(tmp, "cli");
    await mkdir(path.join(dir, "debs"), { recursive: true });
    await makeDeb(dir, BIOMED_PACKAGES.go.package, BIOMED_PACKAGES.go.sqlite, goDatabase().export());
    await makeDeb(dir, BIOMED_PACKAGES.genes.package, BIOMED_PACKAGES.genes.sqlite, genesDatabase().export());
    const out = path.join(dir, "biomed.jsonl");
    const { stdout } = await run("npx", ["tsx", "src/cli/biomed-corpus.ts", "--debs", path.join(dir, "debs"), "--no-download", "--out", out], { cwd: path.resolve(here, "..") });
    expect(stdout).toMatch(/Wrote .*biomed\.jsonl: 3 GO terms, 2 human genes \(r-bioc-go\.db 9\.9\.9-1, r-bioc-org\.hs\.eg\.db 9\.9\.9-1\)/);
    const records: BiomedRecord[] = [];
    for await (const r of readBiomedCorpus(out)) records.push(r);
    expect(records).toEqual(EXPECTED);
    const provenance = JSON.parse(await readFile(path.join(dir, "biomed.provenance.json"), "utf8")) as { packages: { package: string; version: string; sha256: string }[] };
    expect(provenance.packages.map((p) => [p.package, p.version])).toEqual([
      ["r-bioc-go.db", "9.9.9-1"],
      ["r-bioc-org.hs.eg.db", "9.9.9-1"],
    ]);
    expect(provenance.packages.every((p) => /^[0-9a-f]{64}$/.test(p.sha256))).toBe(true);
  });

  it("fails with the apt-get command to run when a package is missing and downloads are off", async () => {
    const empty = path.join(tmp, "empty-debs");
    await mkdir(empty, { recursive: true });
    const failure = await run("npx", ["tsx", "src/cli/biomed-corpus.ts", "--debs", empty, "--no-download", "--out", path.join(tmp, "x.jsonl")], {
      cwd: path.resolve(here, ".."),
    }).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/corpus:biomed: no r-bioc-go\.db_\*\.deb in .*empty-debs \(and --no-download\): fetch it with `apt-get download r-bioc-go\.db`/);
  });
});

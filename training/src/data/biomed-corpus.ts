/**
 * Biomedical term → definition material for the general model, read from two Debian packages of Bioconductor
 * annotation data: `r-bioc-go.db` (the Gene Ontology: 43k terms, 35k of them defined, and their synonyms, CC BY 4.0) and
 * `r-bioc-org.hs.eg.db` (NCBI Entrez Gene for human: symbols, aliases, full names and GO annotations, public domain).
 *
 * Why: the general model's dense side trails BM25 most on SciFact's biomedical claims, whose words (genes, processes,
 * cell parts) the other training sources — Debian descriptions, WordNet glosses — barely hold. WordNet's terms →
 * definition pairs taught the model general English; these are the same construction in the domain's vocabulary. No
 * SciFact text is read: the model stays zero-shot on SciFact. Measured (README → Biomedical pairs): 0.5.0 continued
 * with them for 300 updates scored SciFact train dense-128 0.2795 against 0.2926 — the glossary does not teach claim →
 * abstract matching, so no shipped model uses the source.
 *
 * Layers:
 *  - {@link readGoTerms}, {@link readHumanGenes}: an open SQLite database (sql.js) → typed records.
 *  - {@link biomedRecords}: both databases → the records the `biomed` pair source reads (data/pairs.ts biomedPairs),
 *    as the corpus file `npm run -w training corpus:biomed` writes (cli/biomed-corpus.ts).
 *
 * @module
 * @example
 *   const SQL = await initSqlJs();
 *   const go = new SQL.Database(readFileSync("GO.sqlite"));
 *   for (const term of readGoTerms(go)) console.log(term.term, "→", term.definition);
 */
import type { Database, SqlValue } from "sql.js";
import { hashUnit } from "./random.js";

/** The Debian packages and the SQLite file inside each (paths as dpkg-deb -x lays them out). */
export const BIOMED_PACKAGES = {
  go: { package: "r-bioc-go.db", sqlite: "usr/lib/R/site-library/GO.db/extdata/GO.sqlite" },
  genes: { package: "r-bioc-org.hs.eg.db", sqlite: "usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite" },
} as const;

/** One record of the biomed corpus file: a GO term or a human gene. */
export interface BiomedRecord {
  /** "GO:0006915" or "gene:7157" (Entrez id). */
  id: string;
  kind: "go-term" | "gene";
  /** GO: the term's name; gene: its official symbol. */
  title: string;
  /** Gene: its full name ("tumor protein p53"). */
  name?: string;
  /** GO: the definition; gene: what its GO annotations say it does (see {@link geneAnnotations}), or "" without any. */
  text: string;
  /** GO: synonyms; gene: alias symbols. */
  synonyms: string[];
}

export interface GoTerm {
  goId: string;
  term: string;
  /** BP (biological process), MF (molecular function) or CC (cellular component). */
  ontology: string;
  definition: string;
  synonyms: string[];
}

export interface HumanGene {
  entrezId: string;
  symbol: string;
  name: string;
  aliases: string[];
  /** GO ids annotated to the gene, by ontology (each once, whatever the evidence codes). */
  goIds: { BP: string[]; MF: string[]; CC: string[] };
}

function rows(db: Database, sql: string): SqlValue[][] {
  const result = db.exec(sql);
  return result[0]?.values ?? [];
}

function requireTables(db: Database, what: string, tables: readonly string[]): void {
  const present = new Set(rows(db, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')").map((r) => String(r[0])));
  const missing = tables.filter((t) => !present.has(t));
  if (missing.length > 0) throw new Error(`${what}: the database has no ${missing.join(", ")} (is it the right file?)`);
}

/** Synonyms that are GO ids ("GO:0019952", like_go_id = 1) are alternative ids, not words: left out. */
export function readGoTerms(db: Database): GoTerm[] {
  requireTables(db, "GO.sqlite", ["go_term", "go_synonym"]);
  const synonyms = new Map<number, string[]>();
  for (const [key, synonym] of rows(db, "SELECT _id, synonym FROM go_synonym WHERE like_go_id = 0 ORDER BY _id, synonym")) {
    const list = synonyms.get(Number(key)) ?? [];
    list.push(String(synonym));
    synonyms.set(Number(key), list);
  }
  const terms: GoTerm[] = [];
  for (const [key, goId, term, ontology, definition] of rows(db, "SELECT _id, go_id, term, ontology, definition FROM go_term WHERE definition IS NOT NULL ORDER BY go_id")) {
    if (ontology === "universal") continue; // the root "all"
    terms.push({ goId: String(goId), term: String(term), ontology: String(ontology), definition: String(definition), synonyms: synonyms.get(Number(key)) ?? [] });
  }
  return terms;
}

/** Protein-coding human genes with a real name (not "uncharacterized LOC…"); their aliases and GO annotations. */
export function readHumanGenes(db: Database): HumanGene[] {
  requireTables(db, "org.Hs.eg.sqlite", ["genes", "gene_info", "alias", "genetype", "go_bp", "go_mf", "go_cc"]);
  const genes = new Map<number, HumanGene>();
  const sql =
    "SELECT g._id, g.gene_id, i.symbol, i.gene_name FROM genes g JOIN gene_info i ON i._id = g._id " +
    "JOIN genetype t ON t._id = g._id WHERE t.gene_type = 'protein-coding' ORDER BY CAST(g.gene_id AS INTEGER)";
  for (const [key, entrezId, symbol, name] of rows(db, sql)) {
    const fullName = String(name);
    if (/^uncharacterized\b|^putative uncharacterized\b/i.test(fullName)) continue;
    genes.set(Number(key), { entrezId: String(entrezId), symbol: String(symbol), name: fullName, aliases: [], goIds: { BP: [], MF: [], CC: [] } });
  }
  for (const [key, alias] of rows(db, "SELECT _id, alias_symbol FROM alias ORDER BY _id, alias_symbol")) {
    const gene = genes.get(Number(key));
    if (gene && alias !== gene.symbol) gene.aliases.push(String(alias));
  }
  for (const ontology of ["BP", "MF", "CC"] as const) {
    for (const [key, goId] of rows(db, `SELECT DISTINCT _id, go_id FROM go_${ontology.toLowerCase()} ORDER BY _id, go_id`)) {
      genes.get(Number(key))?.goIds[ontology].push(String(goId));
    }
  }
  return [...genes.values()];
}

/** Most GO terms of one ontology a gene's text lists: a few hundred annotations would drown its name. */
export const MAX_TERMS_PER_ONTOLOGY = 6;

/**
 * Annotated to more genes than this, a term says nothing about a gene ("protein binding", "nucleus", "cytoplasm");
 * to fewer than {@link MIN_GENES_PER_TERM}, it is the gene's idiosyncrasy rather than what an abstract would say of it.
 */
export const MAX_GENES_PER_TERM = 1000;
export const MIN_GENES_PER_TERM = 3;

/**
 * What a gene does, in the words of its GO annotations: the processes, functions and places an abstract about the gene
 * talks about. Up to {@link MAX_TERMS_PER_ONTOLOGY} terms per ontology, drawn by a hash of the gene and term ids (a
 * property of the data) from those annotated to between {@link MIN_GENES_PER_TERM} and {@link MAX_GENES_PER_TERM}
 * genes — from all of them when none is in that range. "" for a gene without annotations.
 */
export function geneAnnotations(gene: HumanGene, termNames: ReadonlyMap<string, string>, genesPerTerm: ReadonlyMap<string, number>): string {
  const parts: string[] = [];
  const labels = { BP: "Involved in", MF: "Function", CC: "Located in" } as const;
  for (const ontology of ["BP", "MF", "CC"] as const) {
    const named = gene.goIds[ontology].filter((id) => termNames.has(id));
    const telling = named.filter((id) => {
      const genes = genesPerTerm.get(id) ?? 0;
      return genes >= MIN_GENES_PER_TERM && genes <= MAX_GENES_PER_TERM;
    });
    const names = (telling.length > 0 ? telling : named)
      .map((id) => ({ id, order: hashUnit(`${gene.entrezId}:${id}`, 17) }))
      .sort((a, b) => a.order - b.order)
      .slice(0, MAX_TERMS_PER_ONTOLOGY)
      .map(({ id }) => termNames.get(id)!);
    if (names.length > 0) parts.push(`${labels[ontology]}: ${names.join("; ")}.`);
  }
  return parts.join(" ");
}

/** Both databases → the corpus records: GO terms first (by id), then genes (by Entrez id). */
export function biomedRecords(go: Database, genes: Database): BiomedRecord[] {
  const terms = readGoTerms(go);
  const termNames = new Map(terms.map((t) => [t.goId, t.term]));
  const humanGenes = readHumanGenes(genes);
  const genesPerTerm = new Map<string, number>();
  for (const gene of humanGenes) {
    for (const id of [...gene.goIds.BP, ...gene.goIds.MF, ...gene.goIds.CC]) genesPerTerm.set(id, (genesPerTerm.get(id) ?? 0) + 1);
  }
  const records: BiomedRecord[] = terms.map((t) => ({ id: t.goId, kind: "go-term", title: t.term, text: t.definition, synonyms: t.synonyms }));
  for (const gene of humanGenes) {
    records.push({
      id: `gene:${gene.entrezId}`,
      kind: "gene",
      title: gene.symbol,
      name: gene.name,
      text: geneAnnotations(gene, termNames, genesPerTerm),
      synonyms: gene.aliases,
    });
  }
  return records;
}

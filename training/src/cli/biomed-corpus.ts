/**
 * Builds the biomed corpus file (data/biomed-corpus.ts) from Debian's Bioconductor annotation packages: downloads
 * `r-bioc-go.db` and `r-bioc-org.hs.eg.db` with `apt-get download` (no root, nothing installed; ~50 MB), unpacks each
 * with `dpkg-deb -x`, reads its SQLite database with sql.js and writes one JSONL record per GO term and per human
 * protein-coding gene, beside a provenance file (package versions and sha256) the export copies into the manifest.
 *
 * A training config's `data.sources.biomed` reads the file (default: training/.cache/biomed/biomed.jsonl, gitignored).
 * Relative paths are resolved against the directory npm was started from (INIT_CWD), as `npm run train` does.
 *
 * @example
 *   npm run -w training corpus:biomed                    # download, unpack, write training/.cache/biomed/biomed.jsonl
 *   npm run -w training corpus:biomed -- --debs ~/debs --no-download   # .deb files already there
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Command } from "commander";
import initSqlJs from "sql.js";
import { BIOMED_PACKAGES, biomedRecords } from "../data/biomed-corpus.js";
import { BIOMED_CACHE_DIR, biomedProvenancePath, defaultBiomedFile, type BiomedProvenance } from "../data/corpora.js";

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  if (result.error) throw new Error(`${command} could not start (${result.error.message}): this step needs Debian's ${command}`);
  if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (exit ${result.status}): ${result.stderr.trim() || result.stdout.trim()}`);
  return result.stdout;
}

/** The newest `<package>_<version>_<arch>.deb` in `dir`, or undefined. */
function findDeb(dir: string, pkg: string): string | undefined {
  const debs = readdirSync(dir)
    .filter((f) => f.startsWith(`${pkg}_`) && f.endsWith(".deb"))
    .sort();
  return debs.length > 0 ? path.join(dir, debs[debs.length - 1]!) : undefined;
}

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("corpus:biomed")
    .description("Write the biomed training corpus (Gene Ontology terms, human genes) from Debian's r-bioc-go.db and r-bioc-org.hs.eg.db.")
    .option("--out <file>", "the corpus file to write", defaultBiomedFile())
    .option("--debs <dir>", "where the .deb files are, or are downloaded to", path.join(BIOMED_CACHE_DIR, "debs"))
    .option("--no-download", "only use the .deb files already in --debs")
    .showHelpAfterError()
    .parse(argv);
  const opts = program.opts<{ out: string; debs: string; download: boolean }>();
  const cwd = process.env["INIT_CWD"] ?? process.cwd();
  const out = path.resolve(cwd, opts.out);
  const debsDir = path.resolve(cwd, opts.debs);
  mkdirSync(debsDir, { recursive: true });

  const SQL = await initSqlJs();
  const provenance: BiomedProvenance = { packages: [], records: { goTerms: 0, genes: 0 }, builtBy: "training/src/cli/biomed-corpus.ts" };
  const databases: Partial<Record<keyof typeof BIOMED_PACKAGES, InstanceType<typeof SQL.Database>>> = {};
  for (const [key, { package: pkg, sqlite }] of Object.entries(BIOMED_PACKAGES) as [keyof typeof BIOMED_PACKAGES, (typeof BIOMED_PACKAGES)[keyof typeof BIOMED_PACKAGES]][]) {
    let deb = findDeb(debsDir, pkg);
    if (!deb) {
      if (!opts.download) throw new Error(`no ${pkg}_*.deb in ${debsDir} (and --no-download): fetch it with \`apt-get download ${pkg}\``);
      console.log(`Downloading ${pkg} into ${debsDir} (apt-get download) …`);
      run("apt-get", ["download", pkg], debsDir);
      deb = findDeb(debsDir, pkg);
      if (!deb) throw new Error(`apt-get download ${pkg} succeeded but left no ${pkg}_*.deb in ${debsDir}`);
    }
    const version = run("dpkg-deb", ["-f", deb, "Version"], debsDir).trim();
    const unpacked = path.join(debsDir, "unpacked", pkg);
    console.log(`Unpacking ${path.basename(deb)} …`);
    mkdirSync(unpacked, { recursive: true });
    run("dpkg-deb", ["-x", deb, unpacked], debsDir);
    const file = path.join(unpacked, ...sqlite.split("/"));
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch {
      throw new Error(`${path.basename(deb)} has no ${sqlite}: a different package layout than this reader knows`);
    }
    databases[key] = new SQL.Database(bytes);
    provenance.packages.push({ package: pkg, version, sha256: createHash("sha256").update(readFileSync(deb)).digest("hex") });
  }

  console.log("Reading the Gene Ontology and the human genes …");
  const records = biomedRecords(databases.go!, databases.genes!);
  for (const db of Object.values(databases)) db.close();
  provenance.records = { goTerms: records.filter((r) => r.kind === "go-term").length, genes: records.filter((r) => r.kind === "gene").length };

  mkdirSync(path.dirname(out), { recursive: true });
  // Written whole, then renamed: a run never reads half a corpus.
  writeFileSync(`${out}.partial`, records.map((r) => JSON.stringify(r)).join("\n") + "\n");
  renameSync(`${out}.partial`, out);
  writeFileSync(biomedProvenancePath(out), JSON.stringify(provenance, null, 2) + "\n");
  console.log(`Wrote ${out}: ${provenance.records.goTerms} GO terms, ${provenance.records.genes} human genes (${provenance.packages.map((p) => `${p.package} ${p.version}`).join(", ")}).`);
}

main(process.argv).catch((err: unknown) => {
  console.error(`corpus:biomed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

/**
 * Adds something learnt after an export (a tuned fusion, a trained router) to an artifact's manifest, in place, and
 * records it with one line in the artifacts directory's CHANGELOG.md (when there is one).
 *
 * The manifest is not among the sha256-listed files, so the edit must leave that list exactly as it was: the artifact's
 * files stay immutable.
 *
 * @module
 */
import { access, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { appendChangelogLine } from "../../../src/model/changelog.js";
import { parseManifest, type ArtifactManifest } from "../../../src/model/index.js";

export interface ManifestEdit {
  manifest: string;
  changelog: string | null;
  line: string;
}

/**
 * `edit` turns the manifest text into the new text; `describe` writes the CHANGELOG line from the manifest as it was.
 * `what` names the change in the error when the file list would move.
 */
export async function editManifest(
  artifactDir: string,
  what: string,
  edit: (text: string) => string,
  describe: (before: ArtifactManifest) => string,
): Promise<ManifestEdit> {
  const manifestPath = path.join(artifactDir, "manifest.json");
  const originalText = await readFile(manifestPath, "utf8");
  const before = parseManifest(originalText);
  const text = edit(originalText);
  const after = parseManifest(text);
  if (JSON.stringify(after.files) !== JSON.stringify(before.files)) throw new Error(`${what} would change the manifest's file list`);
  const line = describe(before);
  const changelogPath = path.join(path.dirname(path.resolve(artifactDir)), "CHANGELOG.md");
  const hasChangelog = await access(changelogPath).then(
    () => true,
    () => false,
  );
  await writeFile(manifestPath, text);
  if (hasChangelog) await writeFile(changelogPath, appendChangelogLine(await readFile(changelogPath, "utf8"), line));
  return { manifest: manifestPath, changelog: hasChangelog ? changelogPath : null, line };
}

/**
 * manifest.json's text with the top-level member `key` set to `value`, changing only those lines: the exporter's own
 * formatting (Python style escapes such as \u2192, numbers such as 1e-08) is kept by appending the member as the last
 * one — or replacing it where an earlier edit put it last — instead of re-serialising the whole file. Whatever the text,
 * the result parses to exactly the original object with `key` set (kept in place when it was there, else last); if the
 * splice cannot promise that, the whole object is written afresh (two-space indent, final newline), which is still the
 * same manifest.
 */
export function manifestTextWithMember(originalText: string, key: string, value: unknown): string {
  const raw = JSON.parse(originalText) as Record<string, unknown>;
  const intended = { ...raw, [key]: value };
  const member = `${JSON.stringify(key)}: ${JSON.stringify(value, null, 2).replaceAll("\n", "\n  ")}`;
  const body = originalText.replace(/\s*}\s*$/, "");
  const lastKey = Object.keys(raw).pop();
  const at = body.lastIndexOf(`,\n  ${JSON.stringify(key)}: `);
  const spliced = !(key in raw) ? `${body},\n  ${member}\n}\n` : lastKey === key && at >= 0 ? `${body.slice(0, at)},\n  ${member}\n}\n` : null;
  const same = (text: string) => {
    try {
      return JSON.stringify(JSON.parse(text)) === JSON.stringify(intended);
    } catch {
      return false;
    }
  };
  return spliced !== null && same(spliced) ? spliced : `${JSON.stringify(intended, null, 2)}\n`;
}

/**
 * manifest.json's text with `retrieval.<key>` set (a tuned default: fusion, late, documentDepth, documentPassages),
 * the other `retrieval` members kept in order; formatting kept as in {@link manifestTextWithMember}.
 */
export function manifestTextWithRetrievalDefault(originalText: string, key: string, value: unknown): string {
  const raw = JSON.parse(originalText) as { retrieval?: unknown };
  const retrieval = typeof raw.retrieval === "object" && raw.retrieval !== null ? (raw.retrieval as Record<string, unknown>) : {};
  return manifestTextWithMember(originalText, "retrieval", { ...retrieval, [key]: value });
}

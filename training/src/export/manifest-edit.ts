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

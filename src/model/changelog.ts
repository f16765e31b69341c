/**
 * Edits of model-artifacts/CHANGELOG.md shared by the tools that record what happened to an artifact after its export
 * (fusion retuned, router trained): plain text in, text out, so the same rule holds wherever it runs.
 *
 * @module
 */

/**
 * The changelog with `line` (a list item) appended at the end: right after an earlier list item, else after a blank
 * line — directly below the table's last row it would be read as one more row.
 */
export function appendChangelogLine(text: string, line: string): string {
  const trimmed = text.replace(/\s+$/, "");
  if (trimmed === "") return `${line}\n`;
  const last = trimmed.split("\n").pop() ?? "";
  return `${trimmed}${last.startsWith("- ") ? "\n" : "\n\n"}${line}\n`;
}

/**
 * How a document becomes the one text that is both embedded and lexically indexed: its title, a newline, its text.
 * The title leads because it is the densest summary and models truncate from the end. The worker's indexer and the
 * offline evaluation both use this, so measured quality is the quality the service delivers.
 *
 * @module
 * @example
 *   documentText({ title: "Glaciers", text: "Ice carves valleys." }) // "Glaciers\nIce carves valleys."
 */
export function documentText(document: { title?: string; text: string }): string {
  return document.title ? `${document.title}\n${document.text}` : document.text;
}

/** Names in slash-separated paths, the same on every host (no node:path: a remote path is not a local one). */

/** The last name of a path (`a/b/` -> `b`, `a/b/.` -> `b`); '' for `/`. */
export function baseName(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return parts[parts.length - 1] ?? '';
}

/** The directory part of a path, as a path (`a/b` -> `a`, `b` -> `.`, `/b` -> `/`). */
export function dirName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const i = trimmed.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : trimmed.slice(0, i);
}

import { unwatchFile, watchFile, type Stats } from 'node:fs';

/**
 * Calls `onChange` when the file at `path` changes, polling its stat every
 * `intervalMs`. Polling rather than inotify because a Kubernetes Secret or
 * ConfigMap volume updates by swapping a symlinked directory: the watched
 * inode never changes, but the stat of the path (followed) does.
 * Returns the function that stops watching.
 */
export function watchFileChanges(
  path: string,
  intervalMs: number,
  onChange: () => void,
): () => void {
  const listener = (current: Stats, previous: Stats): void => {
    if (
      current.mtimeMs !== previous.mtimeMs ||
      current.size !== previous.size ||
      current.ino !== previous.ino
    ) {
      onChange();
    }
  };
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(path, listener);
}

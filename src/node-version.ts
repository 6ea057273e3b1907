/**
 * The oldest Node.js major the proxy runs on. Node 20 is end of life, makes
 * express 2-3x slower and does not know the V8 flag v8-flags.ts sets (it
 * prints "unrecognized flag" before anything else), so an older Node is
 * refused with a message that says what to run instead.
 */
export const REQUIRED_NODE_MAJOR = 22;

/** Why `version` (process.versions.node) cannot run the proxy, or undefined when it can. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(version.split('.')[0]);
  if (Number.isInteger(major) && major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `triton-proxy needs Node.js >= ${REQUIRED_NODE_MAJOR} (this is ${version}). ` +
    `In a clone of the repository, use the Node 24 it provisions: ` +
    `export PATH="$(scripts/ensure-node.sh):$PATH"`
  );
}

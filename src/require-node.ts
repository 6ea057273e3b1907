import { nodeVersionProblem } from './node-version';

// First import of every entry point (main.ts, cli.ts): an old Node stops
// here, before any other module or V8 flag is touched.
const problem = nodeVersionProblem(process.versions.node);
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}

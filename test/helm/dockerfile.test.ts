import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './support';

interface Instruction {
  keyword: string;
  args: string;
  /** Index of the build stage (FROM) the instruction belongs to. */
  stage: number;
}

/** Splits a Dockerfile into instructions, joining backslash continuations and dropping comments. */
function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trimEnd();
    if (pending === '' && /^\s*(#|$)/.test(line)) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '' || full.startsWith('#')) continue;
    const [, keyword, args] = /^(\S+)\s*([\s\S]*)$/.exec(full)!;
    const upper = keyword.toUpperCase();
    if (upper === 'FROM') stage++;
    instructions.push({ keyword: upper, args: args.replace(/\s+/g, ' ').trim(), stage });
  }
  return instructions;
}

function indexOf(
  instructions: readonly Instruction[],
  predicate: (i: Instruction) => boolean,
): number {
  const index = instructions.findIndex(predicate);
  assert.ok(index >= 0, 'expected instruction is present');
  return index;
}

/** Build-context sources of a COPY (flags and the destination dropped); none for COPY --from. */
function copySources(instruction: Instruction): string[] {
  if (instruction.keyword !== 'COPY' || instruction.args.startsWith('--from')) return [];
  const words = instruction.args.split(' ').filter((word) => !word.startsWith('--'));
  return words.slice(0, -1);
}

/** Minimal .dockerignore matching (*, ?, ** and exact paths), enough to spot an excluded source. */
function ignoredBy(patterns: readonly string[], file: string): string | undefined {
  const segment = (glob: string): string =>
    glob
      .split('*')
      .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\?/g, '[^/]'))
      .join('[^/]*');
  return patterns.find((pattern) => {
    const regex = pattern.replace(/^\/+/, '').split('**').map(segment).join('.*');
    return new RegExp(`^${regex}(/.*)?$`).test(file);
  });
}

describe('Dockerfile', function () {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const instructions = parseDockerfile(text);
  const froms = instructions.filter((i) => i.keyword === 'FROM');
  const finalStage = froms.length - 1;
  const runtime = instructions.filter((i) => i.stage === finalStage);
  const argDefaults = new Map(
    instructions
      .filter((i) => i.keyword === 'ARG' && i.args.includes('='))
      .map((i) => i.args.split('=', 2) as [string, string]),
  );

  it('is a multi-stage build whose stages are named', function () {
    assert.ok(froms.length >= 2, 'at least a build stage and a runtime stage');
    for (const from of froms) assert.match(from.args, / AS [a-z][a-z0-9-]*$/i);
  });

  it('bases every stage on a current LTS Node image pinned to a patch release', function () {
    for (const from of froms) {
      const image = from.args
        .split(' ')[0]
        .replace(/^\$\{?(\w+)\}?$/, (_, name: string) => argDefaults.get(name) ?? name);
      if (froms.some((f) => image === f.args.split(/ AS /i)[1])) continue;
      const tag = /^node:(\d+)\.(\d+)\.(\d+)-[a-z0-9-]+$/.exec(image);
      assert.ok(tag, `${image} is a node image pinned to major.minor.patch`);
      assert.ok(
        Number(tag[1]) >= 22 && Number(tag[1]) % 2 === 0,
        `${image} is an even (LTS) Node major >= 22`,
      );
    }
  });

  it('installs dependencies from the manifests before copying the sources', function () {
    const copyManifests = indexOf(
      instructions,
      (i) =>
        i.keyword === 'COPY' && /package\.json/.test(i.args) && /package-lock\.json/.test(i.args),
    );
    const npmCi = indexOf(instructions, (i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    const copySrc = indexOf(instructions, (i) => i.keyword === 'COPY' && /^src\b/.test(i.args));
    assert.ok(copyManifests < npmCi && npmCi < copySrc);
    const copiedBeforeInstall = instructions.slice(0, npmCi).flatMap(copySources);
    assert.deepEqual(copiedBeforeInstall.sort(), ['package-lock.json', 'package.json']);
  });

  it('builds, then prunes dev dependencies before the runtime stage copies node_modules', function () {
    const build = indexOf(instructions, (i) => i.keyword === 'RUN' && /npm run build/.test(i.args));
    const prune = indexOf(
      instructions,
      (i) => i.keyword === 'RUN' && /npm prune --omit=dev/.test(i.args),
    );
    const copyModules = indexOf(
      instructions,
      (i) => i.stage === finalStage && i.keyword === 'COPY' && /node_modules/.test(i.args),
    );
    assert.ok(build <= prune && prune < copyModules);
  });

  it('ships the compiled code, production modules and the .proto files the proxy loads at runtime', function () {
    const copied = runtime.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    for (const needed of ['package.json', 'node_modules', 'dist', 'protos']) {
      assert.ok(
        copied.some((args) => args.startsWith('--from=') && args.includes(`/app/${needed}`)),
        `runtime stage copies ${needed} from the build`,
      );
    }
  });

  it('runs as a numeric non-root user', function () {
    const users = runtime.filter((i) => i.keyword === 'USER');
    assert.ok(users.length > 0, 'the runtime stage sets USER');
    const user = /^(\d+)(?::(\d+))?$/.exec(users[users.length - 1].args);
    assert.ok(user, 'USER is numeric (uid or uid:gid) so runAsNonRoot can verify it');
    assert.notEqual(Number(user[1]), 0);
  });

  it('starts Node in exec form so SIGTERM reaches it', function () {
    const entry = runtime.filter((i) => i.keyword === 'ENTRYPOINT' || i.keyword === 'CMD');
    assert.ok(entry.length > 0);
    for (const instruction of entry) {
      const argv: unknown = JSON.parse(instruction.args);
      assert.ok(Array.isArray(argv), `${instruction.keyword} is in exec (JSON array) form`);
    }
    const cmd = JSON.parse(runtime.filter((i) => i.keyword === 'CMD').at(-1)!.args) as string[];
    const entrypoint = runtime.filter((i) => i.keyword === 'ENTRYPOINT').at(-1);
    const argv = [...(entrypoint ? (JSON.parse(entrypoint.args) as string[]) : []), ...cmd];
    const nodeAt = argv.indexOf('node');
    assert.ok(
      nodeAt === 0 || (nodeAt > 0 && /tini|dumb-init/.test(argv[0])),
      'node is PID 1 or under an init',
    );
    assert.equal(argv[nodeAt + 1], 'dist/src/main.js');
  });

  it('exposes the proxy port and checks liveness in exec form', function () {
    assert.ok(runtime.some((i) => i.keyword === 'EXPOSE' && i.args.split(' ').includes('8000')));
    const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK');
    if (healthcheck !== undefined) {
      const cmd = /CMD (\[.*\])$/.exec(healthcheck.args);
      assert.ok(cmd && Array.isArray(JSON.parse(cmd[1])), 'HEALTHCHECK CMD is in exec form');
      assert.match(healthcheck.args, /\/health\/live/);
    }
  });

  it('carries no secrets and fetches nothing from URLs', function () {
    for (const instruction of instructions) {
      if (instruction.keyword === 'ENV' || instruction.keyword === 'ARG') {
        assert.doesNotMatch(
          instruction.args,
          /(PASSWORD|SECRET|TOKEN|API_KEYS?|CREDENTIAL)\w*\s*=/i,
        );
      }
      if (instruction.keyword === 'COPY' || instruction.keyword === 'ADD') {
        assert.doesNotMatch(instruction.args, /\.env\b|\.npmrc|\.pem\b|id_rsa/);
      }
      assert.notEqual(instruction.keyword === 'ADD' && /https?:\/\//.test(instruction.args), true);
    }
  });

  describe('.dockerignore', function () {
    const patterns = fs
      .readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('!'));

    it('keeps local builds, tooling, VCS data and secrets out of the build context', function () {
      for (const file of [
        'node_modules/x',
        'dist/src/main.js',
        '.git/HEAD',
        '.tools/helm/helm',
        '.env',
        '.npmrc',
      ]) {
        assert.ok(ignoredBy(patterns, file), `${file} is excluded`);
      }
    });

    it('keeps every file the Dockerfile copies in the build context', function () {
      const contextFiles = instructions.flatMap(copySources);
      assert.ok(contextFiles.includes('src'));
      for (const file of contextFiles) {
        assert.equal(
          ignoredBy(patterns, file),
          undefined,
          `${file} is copied but .dockerignore excludes it`,
        );
        assert.ok(fs.existsSync(path.join(REPO_ROOT, file)), `${file} exists in the repository`);
      }
    });
  });
});

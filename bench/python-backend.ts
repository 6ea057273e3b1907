import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Pinned so runs compare like with like; grpcio ships manylinux wheels of the C core. */
export const GRPCIO_VERSION = '1.85.1';

/**
 * Makes (once) a virtualenv with grpcio under `cacheDir` and returns its
 * python. Throws with the reason when it cannot, so the caller can skip the
 * backend with a clear message.
 */
export async function ensureGrpcioVenv(
  cacheDir: string,
  python: string,
  log: (line: string) => void,
): Promise<string> {
  const venv = join(cacheDir, `venv-grpcio-${GRPCIO_VERSION}`);
  const bin = join(venv, 'bin', 'python');
  if (existsSync(bin)) {
    try {
      await run(bin, ['-c', `import grpc; assert grpc.__version__ == '${GRPCIO_VERSION}'`]);
      return bin;
    } catch {
      log(`existing venv ${venv} is unusable; rebuilding it`);
    }
  }
  mkdirSync(cacheDir, { recursive: true });
  log(`creating ${venv} (grpcio==${GRPCIO_VERSION} from PyPI), once`);
  try {
    await run(python, ['-m', 'venv', '--clear', venv], { timeout: 120_000 });
    await run(
      bin,
      [
        '-m',
        'pip',
        'install',
        '--quiet',
        '--disable-pip-version-check',
        `grpcio==${GRPCIO_VERSION}`,
      ],
      {
        timeout: 300_000,
      },
    );
    await run(bin, ['-c', 'import grpc']);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `cannot make the grpcio venv: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`,
    );
  }
  return bin;
}

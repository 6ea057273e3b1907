import { join } from 'node:path';
import type { BackendId, BenchOptions } from './options';
import { listeningAddress, spawnPinned, type ChildProcesses, type Pinned } from './processes';
import { ensureGrpcioVenv, GRPCIO_VERSION } from './python-backend';

export interface Backend {
  id: BackendId;
  description: string;
  address: string;
  process: Pinned;
}

/**
 * Starts one backend pinned to the load CPU. `distDir` is the compiled
 * tree's root (dist/), `root` the repository (for the Python script).
 */
export async function startBackend(
  id: BackendId,
  options: BenchOptions,
  paths: { distDir: string; root: string },
  children: ChildProcesses,
  log: (line: string) => void,
): Promise<Backend> {
  if (id === 'grpc-js') {
    const { process: proc, value } = await spawnPinned(
      {
        name: 'grpc-js fake Triton',
        cpus: options.loadCpus,
        nice: options.nice,
        command: process.execPath,
        args: [
          join(paths.distDir, 'src', 'fake-triton', 'cli.js'),
          '--host',
          '127.0.0.1',
          '--port',
          '0',
        ],
        ready: listeningAddress,
        timeoutMs: 20_000,
      },
      children,
    );
    return {
      id,
      description: 'fake Triton on @grpc/grpc-js (src/fake-triton)',
      address: value,
      process: proc,
    };
  }
  const python = await ensureGrpcioVenv(options.cacheDir, options.python, log);
  const { process: proc, value } = await spawnPinned(
    {
      name: 'C-core backend',
      cpus: options.loadCpus,
      nice: options.nice,
      command: python,
      args: [
        join(paths.root, 'bench', 'python', 'c_core_triton.py'),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
      ],
      ready: listeningAddress,
      timeoutMs: 20_000,
    },
    children,
  );
  return {
    id,
    description: `Python grpcio ${GRPCIO_VERSION} server (gRPC C core), raw-bytes handlers (bench/python/c_core_triton.py)`,
    address: value,
    process: proc,
  };
}

/**
 * Starts the first of the requested backends that comes up (the soak and the
 * per-request counts need one backend, not each); `purpose` names the run in
 * the error when none does.
 */
export async function startFirstBackend(
  options: BenchOptions,
  paths: { distDir: string; root: string },
  children: ChildProcesses,
  log: (line: string) => void,
  purpose: string,
): Promise<Backend> {
  for (const id of options.backends) {
    try {
      return await startBackend(id, options, paths, children, log);
    } catch (err) {
      log(`backend ${id} skipped: ${(err as Error).message}`);
    }
  }
  throw new Error(`no backend could be started for ${purpose}`);
}

import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm', 'triton-proxy');

/** Provisions helm through scripts/ensure-helm.sh (a no-op once present) and returns its path. */
export function ensureHelm(): string {
  const out = execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'ensure-helm.sh')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = out.trim().split('\n');
  return lines[lines.length - 1];
}

export interface HelmRun {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export interface RenderOptions {
  /** Values files, relative to the chart directory (e.g. ci/hpa-values.yaml). */
  valuesFiles?: readonly string[];
  /** --set overrides, parsed by helm with its usual typing (null deletes a default). */
  set?: Readonly<Record<string, string | number | boolean | null>>;
  /** --set-string overrides, always strings: the way to feed a schema a wrongly typed value. */
  setString?: Readonly<Record<string, string>>;
  releaseName?: string;
  namespace?: string;
}

function valuesArgs(options: RenderOptions): string[] {
  const args: string[] = [];
  for (const file of options.valuesFiles ?? []) args.push('-f', path.join(CHART_DIR, file));
  for (const [key, value] of Object.entries(options.set ?? {}))
    args.push('--set', `${key}=${value}`);
  for (const [key, value] of Object.entries(options.setString ?? {})) {
    args.push('--set-string', `${key}=${value}`);
  }
  return args;
}

function runHelm(helm: string, args: readonly string[]): HelmRun {
  const result = spawnSync(helm, args, { cwd: REPO_ROOT, encoding: 'utf8' });
  if (result.error) throw result.error;
  return { ok: result.status === 0, stdout: result.stdout, stderr: result.stderr };
}

/** `helm template`; a failure is returned, not thrown, so tests can assert on rejections. */
export function helmTemplate(helm: string, options: RenderOptions = {}): HelmRun {
  return runHelm(helm, [
    'template',
    options.releaseName ?? 'test',
    CHART_DIR,
    '--namespace',
    options.namespace ?? 'inference',
    ...valuesArgs(options),
  ]);
}

export function helmLintStrict(helm: string, options: RenderOptions = {}): HelmRun {
  return runHelm(helm, ['lint', '--strict', CHART_DIR, ...valuesArgs(options)]);
}

export function helmVersion(helm: string): string {
  return runHelm(helm, ['version', '--short']).stdout.trim();
}

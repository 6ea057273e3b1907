import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';

/** A keys file in its own temporary directory, rewritten the way a Secret update lands (atomic rename). */
export class KeysFile {
  readonly dir = mkdtempSync(join(tmpdir(), 'triton-proxy-keys-'));
  readonly path = join(this.dir, 'keys.yaml');
  private version = 0;

  constructor(clients: unknown[]) {
    this.write(clients);
  }

  write(clients: unknown[]): void {
    this.writeText(yaml.dump({ clients }));
  }

  writeText(text: string): void {
    const next = join(this.dir, `.keys-${++this.version}`);
    writeFileSync(next, text);
    renameSync(next, this.path);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

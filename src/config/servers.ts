/**
 * Parsing and validation of the Triton server list. Servers come only from
 * configuration: `TRITON_SERVERS` (compact env form) or an array in the config file.
 */

export interface TlsConfig {
  enabled: boolean;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** Overrides the name checked against the server certificate. */
  serverName: string;
}

export interface TritonServerConfig {
  name: string;
  /** host:port of the server's gRPC endpoint. */
  address: string;
  group: string;
  labels: Record<string, string>;
  weight: number;
  tls: TlsConfig | undefined;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

export class ServerListError extends Error {}

export function validateAddress(address: string, where: string): void {
  const m = HOST_PORT.exec(address);
  if (!m) throw new ServerListError(`${where}: address '${address}' is not host:port`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) {
    throw new ServerListError(`${where}: port ${port} is out of range 1-65535`);
  }
}

function validateName(name: string, where: string): void {
  if (!NAME.test(name)) {
    throw new ServerListError(
      `${where}: server name '${name}' must be 1-63 characters of letters, digits, '.', '_' or '-'`,
    );
  }
}

/**
 * Compact env form: comma-separated `name=host:port[@group][*weight]`, e.g.
 * `onnx=triton-onnx:8001,vllm=triton-vllm:8001@llm*2`. A bare `host:port`
 * is named after the host.
 */
export function parseServerList(text: string): TritonServerConfig[] {
  const servers: TritonServerConfig[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const where = `TRITON_SERVERS entry '${entry}'`;
    let rest = entry;
    let weight = 1;
    const star = rest.lastIndexOf('*');
    if (star >= 0) {
      weight = Number(rest.slice(star + 1));
      rest = rest.slice(0, star);
      if (!Number.isFinite(weight) || weight <= 0) {
        throw new ServerListError(`${where}: weight must be a positive number`);
      }
    }
    let group = 'default';
    const at = rest.indexOf('@');
    if (at >= 0) {
      group = rest.slice(at + 1);
      rest = rest.slice(0, at);
      if (!NAME.test(group)) throw new ServerListError(`${where}: group '${group}' is not valid`);
    }
    const eq = rest.indexOf('=');
    const address = eq >= 0 ? rest.slice(eq + 1) : rest;
    validateAddress(address, where);
    const name = eq >= 0 ? rest.slice(0, eq) : address.slice(0, address.lastIndexOf(':'));
    validateName(name, where);
    servers.push({ name, address, group, labels: {}, weight, tls: undefined });
  }
  return checkUnique(servers);
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ServerListError(`${where} must be an object`);
  }
  return value as Record<string, unknown>;
}

function optionalString(obj: Record<string, unknown>, key: string, where: string): string {
  const v = obj[key];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new ServerListError(`${where}.${key} must be a string`);
  return v;
}

/** File form: an array of { name, address, group?, labels?, weight?, tls? } objects. */
export function normalizeServerObjects(list: unknown[]): TritonServerConfig[] {
  const servers = list.map((item, i): TritonServerConfig => {
    const where = `triton.servers[${i}]`;
    const obj = asRecord(item, where);
    const name = optionalString(obj, 'name', where);
    const address = optionalString(obj, 'address', where);
    validateAddress(address, where);
    validateName(name, where);
    const group = optionalString(obj, 'group', where) || 'default';
    const weight = obj.weight === undefined ? 1 : obj.weight;
    if (typeof weight !== 'number' || !(weight > 0)) {
      throw new ServerListError(`${where}.weight must be a positive number`);
    }
    const labels: Record<string, string> = {};
    if (obj.labels !== undefined) {
      for (const [k, v] of Object.entries(asRecord(obj.labels, `${where}.labels`))) {
        if (typeof v !== 'string')
          throw new ServerListError(`${where}.labels.${k} must be a string`);
        labels[k] = v;
      }
    }
    let tls: TlsConfig | undefined;
    if (obj.tls !== undefined) {
      const t = asRecord(obj.tls, `${where}.tls`);
      tls = {
        enabled: t.enabled === undefined ? true : t.enabled === true,
        caFile: optionalString(t, 'caFile', `${where}.tls`),
        certFile: optionalString(t, 'certFile', `${where}.tls`),
        keyFile: optionalString(t, 'keyFile', `${where}.tls`),
        serverName: optionalString(t, 'serverName', `${where}.tls`),
      };
      if ((tls.certFile === '') !== (tls.keyFile === '')) {
        throw new ServerListError(`${where}.tls: certFile and keyFile go together (mTLS)`);
      }
    }
    return { name, address, group, labels, weight, tls };
  });
  return checkUnique(servers);
}

function checkUnique(servers: TritonServerConfig[]): TritonServerConfig[] {
  const seen = new Set<string>();
  for (const s of servers) {
    if (seen.has(s.name)) throw new ServerListError(`duplicate Triton server name '${s.name}'`);
    seen.add(s.name);
  }
  return servers;
}

/** `model=inflight:queue,...` per-model admission overrides. */
export function parseModelLimits(
  text: string,
): Record<string, { maxInflight: number; maxQueue: number }> {
  const out: Record<string, { maxInflight: number; maxQueue: number }> = {};
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = /^([^=\s]+)=(\d+):(\d+)$/.exec(entry);
    if (!m) {
      throw new ServerListError(
        `MODEL_LIMITS entry '${entry}' must look like model=inflight:queue`,
      );
    }
    const maxInflight = Number(m[2]);
    if (maxInflight < 1)
      throw new ServerListError(`MODEL_LIMITS entry '${entry}': inflight must be >= 1`);
    out[m[1]!] = { maxInflight, maxQueue: Number(m[3]) };
  }
  return out;
}

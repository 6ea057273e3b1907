/**
 * Fleet-wide views built from per-server answers: repository indexes are
 * merged by (name, version) keeping the most useful state, statistics are
 * summed so the proxy reports the fleet as one server.
 */

export interface IndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

const STATE_RANK: Record<string, number> = { READY: 4, LOADING: 3, UNLOADING: 2, UNAVAILABLE: 1 };

export function mergeIndexes(lists: readonly IndexEntry[][]): IndexEntry[] {
  const byKey = new Map<string, IndexEntry>();
  for (const list of lists) {
    for (const e of list) {
      const key = `${e.name}\u0000${e.version}`;
      const prev = byKey.get(key);
      if (!prev || (STATE_RANK[e.state] ?? 0) > (STATE_RANK[prev.state] ?? 0)) byKey.set(key, e);
    }
  }
  return [...byKey.values()]
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version))
    .map(tritonIndexEntry);
}

/** Triton's index JSON leaves out empty fields (a never-loaded model is just its name). */
function tritonIndexEntry(e: IndexEntry): IndexEntry {
  const out: Partial<IndexEntry> = { name: e.name };
  if (e.version) out.version = e.version;
  if (e.state) out.state = e.state;
  if (e.reason) out.reason = e.reason;
  return out as IndexEntry;
}

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sums numbers field by field; `last_inference` (a timestamp) takes the latest; arrays are joined. */
export function sumStats(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    if (typeof v === 'number' && typeof prev === 'number') {
      out[k] = k === 'last_inference' ? Math.max(prev, v) : prev + v;
    } else if (isObject(v) && isObject(prev)) out[k] = sumStats(prev, v);
    else if (Array.isArray(v) && Array.isArray(prev)) out[k] = [...prev, ...v];
    else if (prev === undefined) out[k] = v;
  }
  return out;
}

export function mergeModelStats(responses: readonly { model_stats?: JsonObject[] }[]): {
  model_stats: JsonObject[];
} {
  const byKey = new Map<string, JsonObject>();
  for (const r of responses) {
    for (const s of r.model_stats ?? []) {
      const key = `${String(s.name)}\u0000${String(s.version)}`;
      const prev = byKey.get(key);
      byKey.set(key, prev ? sumStats(prev, s) : s);
    }
  }
  return { model_stats: [...byKey.values()] };
}

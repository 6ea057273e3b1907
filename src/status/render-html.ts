import type { MatrixCell, ServerStatus, StatusSnapshot } from './status-snapshot';

export interface RenderOptions {
  /** The page reloads itself this often (meta refresh); 0 turns it off. */
  refreshSeconds: number;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Text for HTML content and quoted attributes. Server addresses, model
 * names and error messages come from configuration, Triton and requests:
 * every one of them goes through here.
 */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** The page's only style: inline (no external assets), readable on a phone. */
const STYLE = `
:root{color-scheme:light dark;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--muted:#6e7781;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:12px;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px}
.muted{color:var(--muted)}
.facts{display:flex;flex-wrap:wrap;gap:6px 16px;margin:6px 0}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;min-width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;white-space:nowrap;vertical-align:top}
td.msg{white-space:normal;min-width:12em;max-width:40em;word-break:break-word}
th{font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600;color:#fff}
.badge.ok{background:var(--ok)}.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}.badge.none{background:var(--muted)}
tr.row-bad td:first-child{border-left:4px solid var(--bad)}tr.row-warn td:first-child{border-left:4px solid var(--warn)}
`;

function badge(text: string, level: 'ok' | 'warn' | 'bad' | 'none'): string {
  return `<span class="badge ${level}">${escapeHtml(text)}</span>`;
}

function percent(ratio: number | null): string {
  return ratio === null ? '–' : `${(ratio * 100).toFixed(ratio < 0.1 && ratio > 0 ? 1 : 0)}%`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${Math.floor(seconds % 60)}s`;
}

function table(head: readonly string[], rows: readonly string[], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${escapeHtml(empty)}</p>`;
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  return `<div class="scroll"><table><thead><tr>${th}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

function serverLevel(s: ServerStatus): 'ok' | 'warn' | 'bad' {
  if (s.health === 'not ready' || s.breaker === 'open') return 'bad';
  if (s.health === 'draining' || s.breaker === 'half-open' || s.stale) return 'warn';
  if (s.recent.errorRatio !== null && s.recent.errorRatio >= 0.05) return 'warn';
  return 'ok';
}

function replicaSection(s: StatusSnapshot): string {
  const r = s.replica;
  const redis =
    r.state.redisUp === null
      ? badge('not used', 'none')
      : r.state.redisUp
        ? badge('up', 'ok')
        : badge('down', 'bad');
  const ready = r.ready
    ? badge('ready', 'ok')
    : `${badge('not ready', 'bad')} ${escapeHtml(r.notReadyReasons.join('; '))}`;
  const replicas = r.replicasSeen
    .map((x) => (x.self ? `<b>${escapeHtml(x.id)}</b> (this one)` : escapeHtml(x.id)))
    .join(', ');
  return `<div class="facts">
<span>replica <b>${escapeHtml(r.id)}</b></span>
<span>version ${escapeHtml(r.version)}</span>
<span>up ${escapeHtml(duration(r.uptimeSeconds))}</span>
<span>${ready}</span>
<span>state: ${escapeHtml(r.state.mode)}</span>
<span>Redis ${redis}</span>
</div>
<div class="facts"><span>replicas seen (${r.replicasSeen.length}): ${replicas}</span></div>`;
}

function serversSection(s: StatusSnapshot): string {
  const rows = s.servers.map((x) => {
    const level = serverLevel(x);
    const health =
      x.health === 'ready'
        ? badge('ready', 'ok')
        : badge(x.health, x.health === 'draining' ? 'warn' : 'bad');
    const breaker = badge(
      x.breaker,
      x.breaker === 'closed' ? 'ok' : x.breaker === 'open' ? 'bad' : 'warn',
    );
    const stale = x.stale ? ` ${badge('stale', 'warn')}` : '';
    // What on-call needs first comes first: on a phone the later columns scroll.
    return `<tr class="row-${level}" data-server="${escapeHtml(x.name)}"><td>${escapeHtml(x.name)}</td><td>${health}${stale}</td><td>${breaker}</td><td class="num">${x.inflight}</td><td class="num">${percent(x.recent.errorRatio)}</td><td class="num">${x.recent.p99Ms === null ? '–' : `${x.recent.p99Ms} ms`}</td><td class="num">${x.recent.calls}</td><td>${escapeHtml(x.address)}</td><td>${escapeHtml(x.group)}</td></tr>`;
  });
  const window = s.servers[0]?.recent.windowSeconds ?? 60;
  return table(
    [
      'server',
      'health',
      'breaker',
      'in flight',
      `errors (${window} s)`,
      'p99',
      'calls',
      'address',
      'group',
    ],
    rows,
    'No Triton server is configured.',
  );
}

function cell(c: MatrixCell | undefined): string {
  if (c === undefined) return '<td class="muted">–</td>';
  const level = c.status === 'READY' ? 'ok' : c.status === 'UNAVAILABLE' ? 'bad' : 'warn';
  const versions = c.versions
    .map(
      (v) =>
        `${v.version === '' ? 'default' : v.version}: ${v.status}${v.reason ? ` (${v.reason})` : ''}`,
    )
    .join('\n');
  const stale = c.stale ? ` ${badge('stale', 'warn')}` : '';
  return `<td title="${escapeHtml(versions)}">${badge(c.status, level)}${stale}</td>`;
}

function modelsSection(s: StatusSnapshot): string {
  const m = s.models;
  const rows = m.rows.map(
    (row) =>
      `<tr><td>${escapeHtml(row.model)}</td>${m.servers.map((server) => cell(row.cells[server])).join('')}</tr>`,
  );
  return table(['model', ...m.servers], rows, 'No model is known on any server yet.');
}

function admissionSection(s: StatusSnapshot): string {
  const a = s.admission;
  const rejected = Object.entries(a.rejected)
    .filter(([, n]) => (n ?? 0) > 0)
    .map(([reason, n]) => `${escapeHtml(reason)} ${n}`)
    .join(', ');
  const facts = `<div class="facts">
<span>queued <b data-field="queued">${a.queued}</b></span>
<span>in flight <b>${a.inflight}</b></span>
<span>bytes in flight <b>${escapeHtml(bytes(a.inflightBytes))}</b></span>
<span>${a.accepting ? badge('accepting', 'ok') : badge('not accepting (shutting down)', 'warn')}</span>
<span>shed since start: ${rejected === '' ? 'none' : rejected}</span>
</div>`;
  const rows = a.byModel.map(
    (m) =>
      `<tr class="${m.queued > 0 ? 'row-warn' : ''}"><td>${escapeHtml(m.model)}</td><td class="num">${m.queued} / ${m.maxQueue}</td><td class="num">${m.inflight} / ${m.maxInflight}</td></tr>`,
  );
  return (
    facts +
    table(['model', 'queued / max', 'in flight / max'], rows, 'Nothing queued or in flight.')
  );
}

function cacheSection(s: StatusSnapshot): string {
  if (!s.cache.enabled) return '<p class="muted">The response cache is off (no CACHE_MODELS).</p>';
  const rows = s.cache.models.map(
    (m) =>
      `<tr><td>${escapeHtml(m.model)}</td><td class="num">${percent(m.hitRatio)}</td><td class="num">${m.hits}</td><td class="num">${m.misses}</td><td class="num">${m.bypassed}</td></tr>`,
  );
  return table(
    ['model', 'hit ratio', 'hits', 'misses', 'bypassed'],
    rows,
    'No cached request yet.',
  );
}

function errorsSection(s: StatusSnapshot): string {
  const e = s.errors;
  const counts = e.byCode.map((c) => `<span>${badge(c.code, 'none')} ${c.count}</span>`).join('');
  const rows = e.recent.map(
    (x) =>
      `<tr><td>${escapeHtml(x.at.slice(11, 19))}</td><td>${escapeHtml(x.code)}</td><td>${escapeHtml(x.server ?? '')}</td><td class="msg">${escapeHtml(x.message)}</td><td class="num">${x.status}</td><td>${escapeHtml(x.path)}</td></tr>`,
  );
  return `${counts === '' ? '' : `<div class="facts">${counts}</div>`}${table(
    ['time (UTC)', 'code', 'server', 'message', 'HTTP', 'path'],
    rows,
    'No failed request since start.',
  )}`;
}

/**
 * The status page: one self-contained HTML document (inline CSS, no script,
 * no external asset) rendered from the same snapshot as /status.json.
 */
export function renderStatusPage(s: StatusSnapshot, options: RenderOptions): string {
  const refresh =
    options.refreshSeconds > 0
      ? `<meta http-equiv="refresh" content="${options.refreshSeconds}">`
      : '';
  const down = s.servers.filter((x) => serverLevel(x) === 'bad').length;
  const title = `${down > 0 ? `${down} down · ` : ''}triton-proxy status`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
${refresh}<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>triton-proxy status</h1>
<p class="muted">generated ${escapeHtml(s.generatedAt)}${options.refreshSeconds > 0 ? ` · refreshes every ${options.refreshSeconds} s` : ''} · <a href="status.json">status.json</a></p>
${replicaSection(s)}
<h2>Triton servers</h2>
${serversSection(s)}
<h2>Models × servers</h2>
${modelsSection(s)}
<h2>Admission</h2>
${admissionSection(s)}
<h2>Cache</h2>
${cacheSection(s)}
<h2>Recent errors</h2>
${errorsSection(s)}
</body></html>
`;
}

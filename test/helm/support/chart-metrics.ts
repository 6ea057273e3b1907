/**
 * Which Prometheus metric names the chart depends on (HPA, KEDA query, Grafana dashboard,
 * prometheus-adapter rules, PrometheusRule alerts), and whether a proxy exports them. The functions take plain parsed
 * data so a caller can feed them helm output, a dashboard file, or a live /metrics scrape.
 */

export type MetricSource = 'hpa' | 'keda' | 'dashboard' | 'prometheus-adapter' | 'prometheus-rule';

export interface MetricUse {
  metric: string;
  source: MetricSource;
  /** Human-readable location, e.g. "HorizontalPodAutoscaler/x spec.metrics[0]" or a panel title. */
  where: string;
}

// Words that look like identifiers in PromQL but are never metric names.
const PROMQL_KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'offset',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/** Metric names selected by a PromQL expression (functions, labels, keywords and Grafana variables excluded). */
export function metricNamesInPromQL(expr: string): string[] {
  const names = new Set<string>();
  for (const match of expr.matchAll(/__name__\s*=\s*"([^"]+)"/g)) names.add(match[1]);
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  // The look-behind keeps duration units (5m, 1h30m) and number exponents out.
  for (const match of stripped.matchAll(/(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const token = match[0];
    const rest = stripped.slice((match.index ?? 0) + token.length);
    if (/^\s*\(/.test(rest)) continue;
    if (PROMQL_KEYWORDS.has(token.toLowerCase())) continue;
    names.add(token);
  }
  return [...names];
}

/** Splits "a, b" at the last comma outside braces, parentheses and quotes. */
function splitLastTopLevelComma(args: string): [string, string] | undefined {
  let depth = 0;
  let quote: string | undefined;
  let last = -1;
  for (let i = 0; i < args.length; i++) {
    const ch = args[i];
    if (quote !== undefined) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '(' || ch === '{' || ch === '[') depth++;
    else if (ch === ')' || ch === '}' || ch === ']') depth--;
    else if (ch === ',' && depth === 0) last = i;
  }
  return last < 0 ? undefined : [args.slice(0, last), args.slice(last + 1)];
}

/**
 * Metric names in a Grafana Prometheus template-variable query: label_values(selector, label)
 * and query_result(expr) select series; label_values(label), label_names() and metrics() do not.
 */
export function metricNamesInGrafanaVariableQuery(query: string): string[] {
  const call = /^\s*(label_values|query_result)\s*\(([\s\S]*)\)\s*$/.exec(query);
  if (call === null) return [];
  if (call[1] === 'query_result') return metricNamesInPromQL(call[2]);
  const parts = splitLastTopLevelComma(call[2]);
  return parts === undefined ? [] : metricNamesInPromQL(parts[0]);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Metric names in a Grafana dashboard's panel targets (rows included), variables and annotations. */
export function metricUsesInDashboard(dashboard: unknown, where = 'dashboard'): MetricUse[] {
  const uses: MetricUse[] = [];
  const add = (names: string[], location: string): void => {
    for (const metric of names) uses.push({ metric, source: 'dashboard', where: location });
  };
  const visitPanels = (panels: unknown[]): void => {
    for (const panel of panels.map(asRecord)) {
      if (panel === undefined) continue;
      const title = typeof panel.title === 'string' ? panel.title : `panel ${String(panel.id)}`;
      for (const target of asArray(panel.targets).map(asRecord)) {
        if (typeof target?.expr === 'string')
          add(metricNamesInPromQL(target.expr), `${where}: ${title}`);
      }
      visitPanels(asArray(panel.panels));
    }
  };
  const root = asRecord(dashboard);
  visitPanels(asArray(root?.panels));
  for (const variable of asArray(asRecord(root?.templating)?.list).map(asRecord)) {
    if (variable?.type !== 'query') continue;
    const query =
      typeof variable.query === 'string' ? variable.query : asRecord(variable.query)?.query;
    if (typeof query === 'string') {
      add(metricNamesInGrafanaVariableQuery(query), `${where}: variable ${String(variable.name)}`);
    }
  }
  for (const annotation of asArray(asRecord(root?.annotations)?.list).map(asRecord)) {
    if (typeof annotation?.expr === 'string') {
      add(metricNamesInPromQL(annotation.expr), `${where}: annotation ${String(annotation.name)}`);
    }
  }
  return uses;
}

function objectLabel(object: Record<string, unknown>): string {
  return `${String(object.kind)}/${String(asRecord(object.metadata)?.name)}`;
}

function hpaMetricUses(hpa: Record<string, unknown>): MetricUse[] {
  const uses: MetricUse[] = [];
  asArray(asRecord(hpa.spec)?.metrics).forEach((entry, index) => {
    const spec = asRecord(entry);
    // Resource and ContainerResource metrics come from metrics-server, not from the proxy.
    for (const kind of ['pods', 'object', 'external']) {
      const name = asRecord(asRecord(spec?.[kind])?.metric)?.name;
      if (typeof name === 'string') {
        uses.push({
          metric: name,
          source: 'hpa',
          where: `${objectLabel(hpa)} spec.metrics[${index}]`,
        });
      }
    }
  });
  return uses;
}

function kedaMetricUses(scaledObject: Record<string, unknown>): MetricUse[] {
  const uses: MetricUse[] = [];
  asArray(asRecord(scaledObject.spec)?.triggers).forEach((entry, index) => {
    const trigger = asRecord(entry);
    const query = asRecord(trigger?.metadata)?.query;
    if (trigger?.type !== 'prometheus' || typeof query !== 'string') return;
    for (const metric of metricNamesInPromQL(query)) {
      uses.push({
        metric,
        source: 'keda',
        where: `${objectLabel(scaledObject)} spec.triggers[${index}]`,
      });
    }
  });
  return uses;
}

function dashboardConfigMapUses(configMap: Record<string, unknown>): MetricUse[] {
  const uses: MetricUse[] = [];
  for (const [key, value] of Object.entries(asRecord(configMap.data) ?? {})) {
    if (!key.endsWith('.json') || typeof value !== 'string') continue;
    const dashboard: unknown = JSON.parse(value);
    if (asRecord(dashboard)?.panels === undefined) continue;
    uses.push(...metricUsesInDashboard(dashboard, `${objectLabel(configMap)} ${key}`));
  }
  return uses;
}

function ruleEntries(
  rule: Record<string, unknown>,
): Array<{ rule: Record<string, unknown>; where: string }> {
  const entries: Array<{ rule: Record<string, unknown>; where: string }> = [];
  for (const group of asArray(asRecord(rule.spec)?.groups).map(asRecord)) {
    asArray(group?.rules).forEach((entry, index) => {
      const r = asRecord(entry);
      if (r === undefined) return;
      const name = typeof r.alert === 'string' ? `alert ${r.alert}` : `record ${String(r.record)}`;
      entries.push({
        rule: r,
        where: `${objectLabel(rule)} ${String(group?.name)}[${index}] ${name}`,
      });
    });
  }
  return entries;
}

function prometheusRuleUses(rule: Record<string, unknown>): MetricUse[] {
  return ruleEntries(rule).flatMap(({ rule: r, where }) =>
    typeof r.expr === 'string'
      ? metricNamesInPromQL(r.expr).map((metric) => ({
          metric,
          source: 'prometheus-rule' as const,
          where,
        }))
      : [],
  );
}

/**
 * Series the chart's PrometheusRule recording rules create (`record:`): a dashboard may chart
 * them although no proxy exports them.
 */
export function recordedNamesInManifests(objects: readonly unknown[]): Set<string> {
  const names = new Set<string>();
  for (const object of objects.map(asRecord)) {
    if (object?.kind !== 'PrometheusRule') continue;
    for (const { rule } of ruleEntries(object))
      if (typeof rule.record === 'string') names.add(rule.record);
  }
  return names;
}

/**
 * Metric uses in rendered chart objects: HPA Pods/Object/External metric names, KEDA prometheus
 * trigger queries, Grafana dashboards carried in ConfigMaps (data keys ending in .json), and
 * PrometheusRule expressions.
 */
export function metricUsesInManifests(objects: readonly unknown[]): MetricUse[] {
  const uses: MetricUse[] = [];
  for (const object of objects.map(asRecord)) {
    if (object === undefined) continue;
    if (object.kind === 'HorizontalPodAutoscaler') uses.push(...hpaMetricUses(object));
    else if (object.kind === 'ScaledObject') uses.push(...kedaMetricUses(object));
    else if (object.kind === 'ConfigMap') uses.push(...dashboardConfigMapUses(object));
    else if (object.kind === 'PrometheusRule') uses.push(...prometheusRuleUses(object));
  }
  return uses;
}

/**
 * Metric uses in prometheus-adapter chart values (rules.custom / rules.external): the series each
 * rule discovers. `exposedNames` of the same rules are what an HPA may ask for.
 */
export function metricUsesInAdapterRules(
  adapterValues: unknown,
  where = 'prometheus-adapter',
): MetricUse[] {
  const uses: MetricUse[] = [];
  const rules = asRecord(asRecord(adapterValues)?.rules);
  for (const group of ['custom', 'external']) {
    asArray(rules?.[group]).forEach((entry, index) => {
      const seriesQuery = asRecord(entry)?.seriesQuery;
      if (typeof seriesQuery !== 'string') return;
      for (const metric of metricNamesInPromQL(seriesQuery)) {
        uses.push({
          metric,
          source: 'prometheus-adapter',
          where: `${where} rules.${group}[${index}]`,
        });
      }
    });
  }
  return uses;
}

/** Metric names prometheus-adapter rules expose to the custom/external metrics API (`name.as`). */
export function adapterExposedNames(adapterValues: unknown): string[] {
  const rules = asRecord(asRecord(adapterValues)?.rules);
  const names: string[] = [];
  for (const group of ['custom', 'external']) {
    for (const rule of asArray(rules?.[group]).map(asRecord)) {
      const as = asRecord(rule?.name)?.as;
      if (typeof as === 'string') names.push(as);
    }
  }
  return names;
}

/** Distinct metric names, sorted. */
export function distinctMetricNames(uses: readonly MetricUse[]): string[] {
  return [...new Set(uses.map((use) => use.metric))].sort();
}

/**
 * Every sample name a Prometheus text exposition can produce. Families declared by `# TYPE` count
 * even without samples, because a labelled counter (e.g. retries by reason) has none until its
 * first increment; histograms and summaries expand to their _bucket/_sum/_count series.
 */
export function exportedNamesFromExposition(text: string): Set<string> {
  const names = new Set<string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '') continue;
    const typeLine = /^#\s*TYPE\s+([A-Za-z_:][A-Za-z0-9_:]*)\s+(\w+)/.exec(line);
    if (typeLine !== null) {
      const [, family, type] = typeLine;
      names.add(family);
      if (type === 'histogram') ['_bucket', '_sum', '_count'].forEach((s) => names.add(family + s));
      if (type === 'summary') ['_sum', '_count'].forEach((s) => names.add(family + s));
      // OpenMetrics declares counters without the _total their samples carry.
      if (type === 'counter' && !family.endsWith('_total')) names.add(`${family}_total`);
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
    if (sample !== null) names.add(sample[1]);
  }
  return names;
}

/** The uses whose metric the proxy does not export. */
export function unexportedMetricUses(
  uses: readonly MetricUse[],
  exported: ReadonlySet<string>,
): MetricUse[] {
  return uses.filter((use) => !exported.has(use.metric));
}

import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import type { KubeApi } from './cluster';

export interface RuleState {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
}

export interface ActiveAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

interface ApiAnswer<T> {
  status: string;
  data: T;
}

/**
 * Hands a release's PrometheusRule, as the API server holds it, to the suite's Prometheus the way
 * the Prometheus operator does (its groups as a rule file, then a reload), and reads back what
 * Prometheus made of it.
 */
export class ChartRulesInPrometheus {
  constructor(
    private readonly prometheusUrl: string,
    private readonly rulesDir: string,
  ) {}

  /** Returns the number of rules handed over. */
  async load(kube: KubeApi, namespace: string, name: string): Promise<number> {
    const rule = await kube.get<{ spec: { groups: Array<{ rules: unknown[] }> } }>(
      `/apis/monitoring.coreos.com/v1/namespaces/${namespace}/prometheusrules/${name}`,
    );
    writeFileSync(
      path.join(this.rulesDir, `${namespace}-${name}.yaml`),
      yaml.dump({ groups: rule.spec.groups }),
    );
    const reload = await fetch(`${this.prometheusUrl}/-/reload`, { method: 'POST' });
    if (!reload.ok) throw new Error(`Prometheus reload answered ${reload.status}`);
    return rule.spec.groups.reduce((n, g) => n + g.rules.length, 0);
  }

  async rules(): Promise<RuleState[]> {
    const answer = await this.api<{ groups: Array<{ rules: RuleState[] }> }>('/api/v1/rules');
    return answer.groups.flatMap((g) => g.rules);
  }

  async activeAlerts(): Promise<ActiveAlert[]> {
    return (await this.api<{ alerts: ActiveAlert[] }>('/api/v1/alerts')).alerts;
  }

  async query(expr: string): Promise<Array<{ metric: Record<string, string> }>> {
    const answer = await this.api<{ result: Array<{ metric: Record<string, string> }> }>(
      `/api/v1/query?query=${encodeURIComponent(expr)}`,
    );
    return answer.result;
  }

  private async api<T>(apiPath: string): Promise<T> {
    const res = await fetch(`${this.prometheusUrl}${apiPath}`);
    const body = (await res.json()) as ApiAnswer<T>;
    if (body.status !== 'success') throw new Error(`${apiPath}: ${JSON.stringify(body)}`);
    return body.data;
  }
}

import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { CHART_DIR, KubeApi, clusterEnv, eventually, run, runOk } from './support/cluster';

type Values = Record<string, unknown>;

const CI_VALUES = readdirSync(path.join(CHART_DIR, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();

function readValues(file: string): Values {
  return (loadYaml(readFileSync(file, 'utf8')) ?? {}) as Values;
}

const isObject = (v: unknown): v is Values =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Helm's merge of a values file over the chart defaults (maps merge, everything else replaces). */
function mergeValues(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isObject(value) && isObject(base[key]) ? mergeValues(base[key], value) : value;
  }
  return out;
}

/**
 * The Secrets a values file expects to exist already (every non-empty `existingSecret`), with
 * the keys its sibling `*Key` settings name, so the install looks like a real one.
 */
function existingSecrets(
  values: unknown,
  found = new Map<string, Set<string>>(),
): Map<string, Set<string>> {
  if (Array.isArray(values)) {
    for (const item of values) existingSecrets(item, found);
  } else if (isObject(values)) {
    const name = values.existingSecret;
    if (typeof name === 'string' && name !== '') {
      const keys = found.get(name) ?? new Set<string>();
      for (const [key, value] of Object.entries(values)) {
        if (key.endsWith('Key') && typeof value === 'string' && value !== '') keys.add(value);
      }
      found.set(name, keys);
    }
    for (const value of Object.values(values)) existingSecrets(value, found);
  }
  return found;
}

describe('helm install of every ci values file into a real API server', function () {
  const env = clusterEnv();
  const kube = new KubeApi(process.env.KUBECONFIG!);
  const defaults = readValues(path.join(CHART_DIR, 'values.yaml'));

  after(function () {
    kube.close();
  });

  for (const file of CI_VALUES) {
    const name = file.replace(/-values\.yaml$/, '');
    const namespace = `ci-${name}`;
    const release = `tp-${name}`;
    const valuesFile = path.join(CHART_DIR, 'ci', file);

    it(`installs ci/${file} with --wait, the pods come up and helm test passes`, async function () {
      const values = mergeValues(defaults, readValues(valuesFile));
      await kube.create('/api/v1/namespaces', { metadata: { name: namespace } });
      for (const [secret, keys] of existingSecrets(values)) {
        const data = Object.fromEntries(
          [...keys].map((k) => [k, Buffer.from('placeholder').toString('base64')]),
        );
        await kube.create(`/api/v1/namespaces/${namespace}/secrets`, {
          metadata: { name: secret },
          data,
        });
      }

      const install = await runOk(
        env.helm,
        [
          'install',
          release,
          CHART_DIR,
          '-n',
          namespace,
          '-f',
          valuesFile,
          '--wait',
          '--timeout',
          '180s',
        ],
        240_000,
      );
      assert.match(install, /STATUS: deployed/);

      const autoscaling = values.autoscaling as Values;
      const hpa = (autoscaling.hpa as Values).enabled === true;
      const keda = (autoscaling.keda as Values).enabled === true;
      const cpu = (autoscaling.cpu as Values).enabled === true;
      // The HPA controller raises the Deployment to minReplicas; without an autoscaler (or
      // with KEDA, whose operator is not installed here) the Deployment's own count holds.
      const expected = hpa
        ? Number(autoscaling.minReplicas)
        : keda
          ? 1
          : Number(values.replicaCount);
      const pods = await eventually(
        `${expected} Running pods in ${namespace}`,
        90_000,
        async () => {
          const list = await kube.list(
            `/api/v1/namespaces/${namespace}/pods?labelSelector=app.kubernetes.io/instance=${release}`,
          );
          const running = list.filter(
            (p) =>
              p.metadata.labels?.['app.kubernetes.io/component'] !== 'test' &&
              !p.metadata.deletionTimestamp &&
              p.status?.phase === 'Running',
          );
          return running.length === expected ? running : undefined;
        },
      );
      const deployments = await kube.list(
        `/apis/apps/v1/namespaces/${namespace}/deployments?labelSelector=app.kubernetes.io/instance=${release}`,
      );
      assert.equal(deployments.length, 1, 'one Deployment');
      const deployment = deployments[0];
      await eventually(`${expected} available replicas`, 120_000, async () => {
        const current = await kube.get(
          `/apis/apps/v1/namespaces/${namespace}/deployments/${deployment.metadata.name}`,
        );
        if (current.status?.availableReplicas === expected) return true;
        // Said on timeout: which of the Deployment's counts and conditions is behind.
        const { replicas, readyReplicas, availableReplicas, updatedReplicas, conditions } =
          current.status ?? {};
        throw new Error(
          `Deployment status ${JSON.stringify({ replicas, readyReplicas, availableReplicas, updatedReplicas, conditions })}`,
        );
      });

      const priorityClassName = values.priorityClassName as string;
      if (priorityClassName) {
        // Admission resolved the class the chart created into the pods' priority.
        const priorityClass = await kube.get<{ value: number }>(
          `/apis/scheduling.k8s.io/v1/priorityclasses/${priorityClassName}`,
        );
        for (const pod of pods) assert.equal(pod.spec?.priority, priorityClass.value);
      }
      if (hpa) {
        await kube.get(
          `/apis/autoscaling/v2/namespaces/${namespace}/horizontalpodautoscalers/${deployment.metadata.name}`,
        );
      }
      if (keda) {
        await kube.get(
          `/apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects/${deployment.metadata.name}`,
        );
      }
      if ((values.serviceMonitor as Values).enabled === true) {
        await kube.get(
          `/apis/monitoring.coreos.com/v1/namespaces/${namespace}/servicemonitors/${deployment.metadata.name}`,
        );
      }
      if ((values.prometheusRule as Values).enabled === true) {
        // The API server checked it against the operator's own CRD schema on install.
        const rule = await kube.get<{
          spec: { groups: Array<{ rules: Array<{ alert?: string }> }> };
        }>(
          `/apis/monitoring.coreos.com/v1/namespaces/${namespace}/prometheusrules/${deployment.metadata.name}`,
        );
        const alerts = rule.spec.groups.flatMap((g) => g.rules.flatMap((r) => r.alert ?? []));
        assert.ok(alerts.includes('TritonProxyStageLatencyBudgetBurn'), alerts.join(', '));
      }
      // This cluster has no metrics-server: the install notes warn exactly when the HPA
      // would also scale on CPU.
      const warns = /does not serve metrics\.k8s\.io\/v1beta1/.test(install);
      assert.equal(
        warns,
        hpa && cpu,
        'NOTES.txt warns about the CPU metric without metrics-server',
      );

      const test = await run(
        env.helm,
        ['test', release, '-n', namespace, '--timeout', '120s'],
        180_000,
      );
      assert.equal(test.code, 0, `helm test failed:\n${test.stdout}\n${test.stderr}`);
      if ((values.tests as Values).enabled === true) {
        assert.match(test.stdout, /Phase:\s+Succeeded/);
      }

      await runOk(env.helm, ['uninstall', release, '-n', namespace, '--wait', '--timeout', '120s']);
      // The namespace goes away in the background; every run starts a fresh cluster.
      await kube.delete(`/api/v1/namespaces/${namespace}`);
    });
  }
});

import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as yaml from 'js-yaml';
import {
  CHART_DIR,
  type K8sObject,
  type RenderOptions,
  ensureHelm,
  helmLintStrict,
  helmTemplate,
  validateObject,
} from './support';

interface Rejection {
  what: string;
  options: RenderOptions;
  /** What helm's error must say, so the test proves the right check fired. */
  error: RegExp;
}

const SCHEMA_REJECTIONS: readonly Rejection[] = [
  {
    what: 'an unknown top-level key (a typo of replicaCount)',
    options: { set: { replicas: 3 } },
    error: /additional properties 'replicas' not allowed/,
  },
  {
    what: 'an unknown nested key',
    options: { set: { 'autoscaling.hpa.targetValue': 5 } },
    error: /additional properties 'targetValue' not allowed/,
  },
  {
    what: 'a string where an integer belongs',
    options: { setString: { replicaCount: '3' } },
    error: /replicaCount.*got string, want integer/,
  },
  {
    what: 'a string where a boolean belongs',
    options: { setString: { 'autoscaling.hpa.enabled': 'true' } },
    error: /enabled.*got string, want boolean/,
  },
  {
    what: 'a number where a quantity string belongs',
    options: { set: { 'autoscaling.targetQueueDepth': 5 } },
    error: /targetQueueDepth.*want string/,
  },
  {
    what: 'a malformed quantity',
    options: { set: { 'autoscaling.targetQueueDepth': 'lots' } },
    error: /targetQueueDepth/,
  },
  {
    what: 'a log format the proxy does not know',
    options: { set: { 'config.logFormat': 'xml' } },
    error: /logFormat/,
  },
  {
    what: 'a latency budget of zero',
    options: { set: { 'prometheusRule.latencyBudget.budgets.parse': 0 } },
    error: /budgets\/parse/,
  },
  {
    what: 'an alert for: duration Prometheus cannot read',
    options: { set: { 'prometheusRule.breakerOpen.for': '5 minutes' } },
    error: /breakerOpen\/for/,
  },
  {
    what: 'an error-ratio threshold above 1',
    options: { set: { 'prometheusRule.errorRatio.threshold': 5 } },
    error: /errorRatio\/threshold/,
  },
  {
    what: 'a latency budget for a stage the proxy does not have',
    options: { set: { 'prometheusRule.latencyBudget.budgets.decode': 1 } },
    error: /additional properties 'decode' not allowed/,
  },
  {
    what: 'a port out of range',
    options: { set: { 'service.port': 70000 } },
    error: /port.*maximum/,
  },
  {
    what: 'a Triton server without a port',
    // --set on a list index replaces the whole entry, so this entry has a name and host only.
    options: { set: { 'triton.servers[0].name': 'onnx', 'triton.servers[0].host': 'triton-onnx' } },
    error: /missing property 'port'/,
  },
  {
    what: 'a zero autoscaling minimum (KEDA would scale to zero and lose the metric it scales on)',
    options: { set: { 'autoscaling.minReplicas': 0 } },
    error: /minReplicas.*minimum/,
  },
];

const TEMPLATE_REJECTIONS: readonly Rejection[] = [
  {
    what: 'a termination grace period shorter than the shutdown sequence',
    options: { set: { 'shutdown.terminationGracePeriodSeconds': 30 } },
    error: /terminationGracePeriodSeconds \(30\) must exceed .* \(35 s\)/,
  },
  {
    what: 'no Triton endpoint at all',
    options: { set: { 'triton.servers': null } },
    error: /configure at least one Triton endpoint/,
  },
  {
    what: 'DNS discovery without a Service name',
    options: { set: { 'triton.discovery.enabled': true } },
    error: /triton\.discovery\.service is required/,
  },
  {
    what: 'externalRedis without a host',
    options: { set: { 'externalRedis.enabled': true } },
    error: /externalRedis\.host is required/,
  },
  {
    what: 'a Redis password both inline and in an existing Secret',
    options: {
      set: {
        'externalRedis.enabled': true,
        'externalRedis.host': 'redis',
        'externalRedis.password': 'p',
        'externalRedis.existingSecret': 's',
      },
    },
    error: /either externalRedis\.password or externalRedis\.existingSecret/,
  },
  {
    what: 'an autoscaling minimum above the maximum',
    options: {
      set: {
        'autoscaling.hpa.enabled': true,
        'autoscaling.minReplicas': 5,
        'autoscaling.maxReplicas': 3,
      },
    },
    error: /minReplicas \(5\) must not exceed autoscaling\.maxReplicas \(3\)/,
  },
  {
    what: 'a client certificate without its key',
    options: {
      set: {
        'triton.tls.enabled': true,
        'triton.tls.existingSecret': 'tls',
        'triton.tls.certKey': 'tls.crt',
      },
    },
    error: /certKey and triton\.tls\.keyKey must be set together/,
  },
];

describe('helm chart values validation', function () {
  let helm = '';

  before(function () {
    this.timeout(180_000);
    helm = ensureHelm();
  });

  describe('values.schema.json', function () {
    for (const rejection of SCHEMA_REJECTIONS) {
      it(`makes helm template fail on ${rejection.what}`, function () {
        const run = helmTemplate(helm, rejection.options);
        assert.equal(run.ok, false, `helm template accepted ${rejection.what}`);
        assert.match(run.stderr, /values don't meet the specifications of the schema/);
        assert.match(run.stderr, rejection.error);
      });
    }

    it('makes helm lint --strict fail on an unknown top-level key', function () {
      const run = helmLintStrict(helm, { set: { replicas: 3 } });
      assert.equal(run.ok, false);
      assert.match(run.stdout + run.stderr, /additional properties 'replicas' not allowed/);
    });

    it('closes the top level of the values to unknown keys and declares every default key', function () {
      const schema = JSON.parse(
        fs.readFileSync(path.join(CHART_DIR, 'values.schema.json'), 'utf8'),
      ) as {
        additionalProperties: boolean;
        properties: Record<string, unknown>;
      };
      assert.equal(schema.additionalProperties, false);
      const defaults = yaml.load(
        fs.readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8'),
      ) as Record<string, unknown>;
      assert.deepEqual(
        Object.keys(defaults).filter((key) => !(key in schema.properties)),
        [],
        'every key in values.yaml is described by the schema',
      );
    });
  });

  describe('template checks for combinations the schema cannot express', function () {
    for (const rejection of TEMPLATE_REJECTIONS) {
      it(`makes helm template fail on ${rejection.what}`, function () {
        const run = helmTemplate(helm, rejection.options);
        assert.equal(run.ok, false, `helm template accepted ${rejection.what}`);
        assert.match(run.stderr, rejection.error);
      });
    }
  });

  describe('Kubernetes schema validation of rendered objects', function () {
    const deployment = (spec: Record<string, unknown>): K8sObject => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'broken' },
      spec,
    });

    it('rejects an object whose fields break its kind schema', async function () {
      const broken = deployment({
        replicas: 'three',
        selector: {},
        template: { spec: { containers: [{ name: 'proxy', image: 'x' }] } },
      });
      await assert.rejects(
        validateObject(broken),
        /Deployment\/broken: .*replicas must be integer/,
      );
    });

    it('rejects a kind it has no schema for, so nothing renders unvalidated', async function () {
      const unknownKind: K8sObject = {
        apiVersion: 'example.com/v1',
        kind: 'Widget',
        metadata: { name: 'w' },
      };
      await assert.rejects(
        validateObject(unknownKind),
        /no kubernetes-models package for example\.com\/v1/,
      );
    });
  });
});

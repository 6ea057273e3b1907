import * as yaml from 'js-yaml';

/** The fields every Kubernetes object has; the rest stays untyped until a model validates it. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

function isK8sObject(doc: unknown): doc is K8sObject {
  if (typeof doc !== 'object' || doc === null) return false;
  const candidate = doc as Partial<K8sObject>;
  return (
    typeof candidate.apiVersion === 'string' &&
    typeof candidate.kind === 'string' &&
    typeof candidate.metadata === 'object' &&
    candidate.metadata !== null &&
    typeof candidate.metadata.name === 'string'
  );
}

/** Parses a multi-document YAML stream (helm template output); empty documents are skipped. */
export function parseManifests(stream: string): K8sObject[] {
  const objects: K8sObject[] = [];
  yaml.loadAll(stream, (doc) => {
    if (doc === null || doc === undefined) return;
    if (!isK8sObject(doc)) {
      throw new Error(`rendered document is not a Kubernetes object: ${JSON.stringify(doc)}`);
    }
    objects.push(doc);
  });
  return objects;
}

export function findObjects(objects: readonly K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function findObject(objects: readonly K8sObject[], kind: string): K8sObject {
  const found = findObjects(objects, kind);
  if (found.length !== 1) {
    throw new Error(`expected exactly one ${kind}, found ${found.length}`);
  }
  return found[0];
}

/** Reads a nested field by path, e.g. at(deploy, 'spec', 'template', 'spec'); undefined when absent. */
export function at(value: unknown, ...keys: ReadonlyArray<string | number>): unknown {
  let current: unknown = value;
  for (const key of keys) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

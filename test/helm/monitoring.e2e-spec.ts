import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { loadAll } from 'js-yaml';
import * as ts from 'typescript';
import { http, startTestApp, TestApp } from '../support/test-app';
import { CHART, FULLNAME, K8sObject, REQUIRED, ROOT, VALIDATOR, renderOk as render, run } from './helm-kit';

/**
 * The chart's Grafana dashboard and Prometheus alert rules: the PrometheusRule is valid against the
 * Prometheus Operator's schema, every PromQL expression (rules and panels) parses with
 * @prometheus-io/lezer-promql (the parser of Prometheus' own UI), every metric they read is one
 * a booted server exposes on GET /api/v1/metrics (so renaming a metric fails here), and the
 * dashboard type-checks against Grafana's dashboard schema (@grafana/schema, generated from the
 * CUE kind Grafana validates dashboards with).
 */

const MONITORING = ['--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.grafanaDashboard.enabled=true'];

/** Series Prometheus makes itself (`up`) or reads from kube-state-metrics, not from the server. */
const EXTERNAL_METRICS = new Set(['up', 'kube_deployment_status_replicas_available']);
/** The audit export's metrics (libs/audit/src/export). */
const AUDIT_EXPORT_METRICS = [
  'audit_export_lag_records',
  'audit_export_delivered_total',
  'audit_export_failures_total',
  'audit_export_last_delivered_timestamp_seconds',
];

type Rule = { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
type Target = { refId?: string; expr?: string; datasource?: { type?: string; uid?: string } };
type Panel = { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { type?: string; uid?: string }; targets?: Target[]; panels?: Panel[] };

/** Parses PromQL; returns the syntax errors (offset and the text there) and the metric names of its selectors. */
function promql(expr: string): { errors: string[]; metrics: string[] } {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  const metrics: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(`at ${node.from}: ${JSON.stringify(expr.slice(node.from, node.from + 20))}`);
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector') metrics.push(expr.slice(node.from, node.to));
    },
  });
  return { errors, metrics };
}

/** What Grafana does to a panel query before sending it: its variables replaced by values. */
function interpolate(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?(\w+)\}?/g, 'x');
}

/** Names GET /metrics declares (`# TYPE name kind`), with the series names a histogram or summary adds. */
function exposedNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, kind] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(name);
    if (kind === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (kind === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/**
 * Type-checks dashboards against @grafana/schema's Dashboard, with enums as the JSON values they
 * stand for; all in one compiler run (it is the slow part). Returns the errors of each dashboard.
 */
function grafanaSchemaErrors(dashboards: Record<string, unknown>): Record<string, string[]> {
  const schemaTypes = join(dirname(require.resolve('@grafana/schema/package.json')), 'dist', 'types', 'raw', 'dashboard', 'x', 'types.gen.d.ts');
  const sources = new Map(
    Object.entries(dashboards).map(([name, dashboard]) => [
      join(ROOT, `__dashboard_${name}__.ts`),
      [
        `import type { Dashboard } from ${JSON.stringify(schemaTypes.replace(/\.d\.ts$/, ''))};`,
        // A JSON file holds an enum's value, not its name: string enums become their literals, numeric ones numbers.
        'type Json<T> = T extends string ? `${T}` : T extends number ? number : T extends boolean ? boolean : T extends Array<infer U> ? Array<Json<U>> : T extends object ? { [K in keyof T]: Json<T[K]> } : T;',
        `export const dashboard: Json<Dashboard> = ${JSON.stringify(dashboard, null, 2)};`,
      ].join('\n'),
    ]),
  );
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (file) => sources.get(file) ?? readFile(file);
  host.fileExists = (file) => sources.has(file) || fileExists(file);
  host.getSourceFile = (file, version, onError, create) => {
    const source = sources.get(file);
    return source !== undefined ? ts.createSourceFile(file, source, version) : getSourceFile(file, version, onError, create);
  };
  const program = ts.createProgram([...sources.keys()], options, host);
  const errors: Record<string, string[]> = Object.fromEntries(Object.keys(dashboards).map((name) => [name, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const name = Object.keys(dashboards).find((n) => d.file?.fileName === join(ROOT, `__dashboard_${n}__.ts`)) ?? 'other';
    const where = d.file && d.start !== undefined ? `line ${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : '';
    (errors[name] ??= []).push(where + ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  }
  return errors;
}

describe('Helm chart: Grafana dashboard and Prometheus alert rules', () => {
  let objects: K8sObject[];
  let rule: K8sObject;
  let rules: Rule[];
  let dashboard: { uid: string; schemaVersion: number; panels: Panel[]; templating: { list: Array<{ name: string; type: string; query: unknown }> } };
  let panels: Panel[];
  let exposed: Set<string>;
  let t: TestApp;

  beforeAll(async () => {
    objects = await render([...REQUIRED, ...MONITORING]);
    rule = objects.find((o) => o.kind === 'PrometheusRule')!;
    rules = (rule?.spec?.groups ?? []).flatMap((group: { rules: Rule[] }) => group.rules);
    const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === `${FULLNAME}-dashboard`);
    dashboard = JSON.parse(configMap?.data?.['secure-mcp-server.json'] ?? 'null');
    panels = (dashboard?.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');

    // What a running server exposes: a booted app, one request and one tool call made first.
    t = await startTestApp('postgres');
    await http(t.baseUrl, 'GET', '/api/v1/health');
    const scrape = await http(t.baseUrl, 'GET', '/api/v1/metrics');
    expect(scrape.status).toBe(200);
    exposed = exposedNames(scrape.text);
  });

  afterAll(async () => {
    await t?.close();
  });

  it('renders neither object by default, and both when enabled, valid against their Kubernetes schemas', async () => {
    const defaults = await render(REQUIRED);
    expect(defaults.filter((o) => o.kind === 'PrometheusRule')).toEqual([]);
    expect(defaults.filter((o) => o.metadata.name === `${FULLNAME}-dashboard`)).toEqual([]);

    expect(rule?.apiVersion).toBe('monitoring.coreos.com/v1');
    const configMap = objects.find((o) => o.metadata.name === `${FULLNAME}-dashboard`)!;
    expect(configMap.kind).toBe('ConfigMap');
    expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
    // The ConfigMap carries the chart's file as is.
    expect(JSON.parse(configMap.data!['secure-mcp-server.json'])).toEqual(
      JSON.parse(readFileSync(join(CHART, 'dashboards', 'secure-mcp-server.json'), 'utf8')),
    );

    const { code, stdout, stderr } = await run(process.execPath, [VALIDATOR], JSON.stringify([rule, configMap]));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(stdout)).toEqual([
      { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', name: FULLNAME, error: null },
      { apiVersion: 'v1', kind: 'ConfigMap', name: `${FULLNAME}-dashboard`, error: null },
    ]);
  });

  it('rejects a PrometheusRule the operator would refuse (the validator is not a no-op)', async () => {
    const broken = { ...rule, spec: { groups: [{ name: 'g', rules: [{ alert: 'A', expr: 'up', for: 5 }] }] } };
    const { stdout } = await run(process.execPath, [VALIDATOR], JSON.stringify([broken]));
    expect((JSON.parse(stdout) as { error: string | null }[])[0].error).not.toBeNull();
  });

  it('has an alert for each failure the dashboard shows, each with a severity, a summary and a description', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'SecureMcpServerAuditExportFailing',
      'SecureMcpServerAuditExportLagging',
      'SecureMcpServerAuditExportStalled',
      'SecureMcpServerDatabaseBreakerOpen',
      'SecureMcpServerDown',
      'SecureMcpServerHighErrorRate',
      'SecureMcpServerHighLatency',
      'SecureMcpServerNoReadyPods',
      'SecureMcpServerQueueBacklog',
      'SecureMcpServerQueueHasNoWorkers',
      'SecureMcpServerQueueSaturated',
      'SecureMcpServerRedisBreakerOpen',
      'SecureMcpServerToolFailures',
      'SecureMcpServerUpstreamDown',
    ]);
    for (const r of rules) {
      expect([r.alert, r.labels?.severity]).toEqual([r.alert, expect.stringMatching(/^(critical|warning)$/)]);
      expect([r.alert, r.for]).toEqual([r.alert, expect.stringMatching(/^\d+m$/)]);
      expect(r.annotations?.summary?.length).toBeGreaterThan(10);
      expect(r.annotations?.description?.length).toBeGreaterThan(10);
    }
  });

  it('parses every alert expression as PromQL, each selecting only this release', () => {
    const selector = `namespace="mcp",service="${FULLNAME}"`;
    for (const r of rules) {
      const { errors, metrics } = promql(r.expr);
      expect({ alert: r.alert, errors }).toEqual({ alert: r.alert, errors: [] });
      expect(metrics.length).toBeGreaterThan(0);
      if (r.alert !== 'SecureMcpServerNoReadyPods') {
        const selectors = [...r.expr.matchAll(/\b[a-z_:][a-z0-9_:]*\{([^}]*)\}/g)].map((m) => m[1]);
        expect(selectors.length).toBe(metrics.length);
        for (const matchers of selectors) expect([r.alert, matchers.startsWith(selector)]).toEqual([r.alert, true]);
      }
    }
    // The parser does report mistakes.
    expect(promql('sum(rate(http_request_duration_seconds_count[5m])) /').errors).not.toEqual([]);
    expect(promql('rate(tool_executions_total{status="failed"[5m])').errors).not.toEqual([]);
  });

  it('reads in its alerts and panels only metrics the server exposes', () => {
    const used = new Set<string>();
    for (const r of rules) for (const name of promql(r.expr).metrics) used.add(name);
    for (const panel of panels) for (const target of panel.targets ?? []) for (const name of promql(interpolate(target.expr ?? '')).metrics) used.add(name);

    // Every part of the list is covered.
    for (const name of [
      'http_request_duration_seconds_count',
      'http_request_duration_seconds_bucket',
      'tool_executions_total',
      'tool_execution_duration_seconds_bucket',
      'upstream_connected',
      'tool_queue_pending',
      'tool_queue_running',
      'tool_queue_concurrency',
      'circuit_breaker_open',
      ...AUDIT_EXPORT_METRICS,
    ]) {
      expect([name, used.has(name)]).toEqual([name, true]);
    }

    const unknown = [...used].filter((name) => !exposed.has(name) && !EXTERNAL_METRICS.has(name));
    expect(unknown).toEqual([]);
    // The scrape is a real one: it has the server's own metrics, and no made-up name passes.
    expect(exposed.has('tool_executions_total')).toBe(true);
    expect(exposed.has('tool_execution_total')).toBe(false);
  });

  it('takes another selector, labels on every alert and rules of your own', async () => {
    const custom = await render([
      ...REQUIRED,
      ...MONITORING,
      '--set', 'metrics.prometheusRule.selector=job="mcp"',
      '--set', 'metrics.prometheusRule.alertLabels.team=platform',
      '--set', 'metrics.prometheusRule.thresholds.errorRatio=0.1',
      '--set', 'metrics.prometheusRule.additionalRules[0].alert=McpTooManyPods',
      '--set', 'metrics.prometheusRule.additionalRules[0].expr=count(up{job="mcp"}) > 20',
    ]);
    const customRule = custom.find((o) => o.kind === 'PrometheusRule')!;
    const groups: Array<{ name: string; rules: Rule[] }> = customRule.spec.groups;
    expect(groups.at(-1)).toEqual({ name: 'secure-mcp-server.additional', rules: [{ alert: 'McpTooManyPods', expr: 'count(up{job="mcp"}) > 20' }] });
    const own = groups.slice(0, -1).flatMap((g) => g.rules);
    expect(own.length).toBe(rules.length);
    for (const r of own) {
      expect([r.alert, r.labels?.team]).toEqual([r.alert, 'platform']);
      expect(promql(r.expr).errors).toEqual([]);
      if (r.alert !== 'SecureMcpServerNoReadyPods') expect([r.alert, r.expr.includes('{job="mcp"')]).toEqual([r.alert, true]);
      expect([r.alert, r.expr.includes('service=')]).toEqual([r.alert, false]);
    }
    expect(own.find((r) => r.alert === 'SecureMcpServerHighErrorRate')?.expr).toMatch(/> 0\.1\s*$/);
    const { stdout } = await run(process.execPath, [VALIDATOR], JSON.stringify([customRule]));
    expect((JSON.parse(stdout) as { error: string | null }[])[0].error).toBeNull();
  });

  it('type-checks the dashboard against the Grafana dashboard schema', () => {
    const errors = grafanaSchemaErrors({
      chart: dashboard,
      // The check does catch a mistyped field, a field of the wrong type and an unknown field.
      mistyped: { ...dashboard, graphTooltip: 'shared' },
      wrongType: { ...dashboard, panels: [{ ...dashboard.panels[1], gridPos: { x: 0, y: 0, w: 'wide', h: 8 } }] },
      unknown: { ...dashboard, refreshInterval: '30s' },
    });
    expect(errors).toEqual({
      chart: [],
      mistyped: [expect.stringMatching(/^line \d+: Type 'string' is not assignable to type 'number'/)],
      wrongType: [expect.stringMatching(/^line \d+: Type 'string' is not assignable to type 'number'/)],
      unknown: [expect.stringMatching(/'"refreshInterval"' does not exist/)],
    });
  });

  it('queries the chosen Prometheus data source in valid PromQL, through variables the dashboard defines', () => {
    expect(dashboard.uid).toBe('secure-mcp-server');
    const variables = dashboard.templating.list;
    expect(variables.map((v) => [v.name, v.type])).toEqual([
      ['datasource', 'datasource'],
      ['namespace', 'query'],
      ['service', 'query'],
    ]);
    expect(variables[0].query).toBe('prometheus');
    const defined = new Set(variables.map((v) => v.name));
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) {
      expect([panel.title, panel.datasource]).toEqual([panel.title, { type: 'prometheus', uid: '${datasource}' }]);
      const targets = panel.targets ?? [];
      expect([panel.title, targets.length > 0]).toEqual([panel.title, true]);
      expect(new Set(targets.map((target) => target.refId)).size).toBe(targets.length);
      for (const target of targets) {
        expect(target.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
        const expr = target.expr ?? '';
        expect([panel.title, promql(interpolate(expr)).errors]).toEqual([panel.title, []]);
        for (const [, name] of expr.matchAll(/\$\{?(\w+)\}?/g)) if (!name.startsWith('__')) expect([panel.title, defined.has(name)]).toEqual([panel.title, true]);
        // Each series is this release's: the namespace and service chosen at the top.
        for (const m of expr.matchAll(/\b[a-z_:][a-z0-9_:]*\{([^}]*)\}/g)) expect(m[1].startsWith('namespace="$namespace",service="$service"')).toBe(true);
      }
    }
    for (const variable of variables.slice(1)) {
      const query = (variable.query as { query: string }).query;
      expect(query).toMatch(/^label_values\(/);
      expect(promql(query.replace(/^label_values\((.*), \w+\)$/, '$1').replace(/\$\w+/g, 'x')).errors).toEqual([]);
    }
  });

  it('lays the panels out on the 24-column grid without overlaps', () => {
    const all = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
    expect(new Set(all.map((p) => p.id)).size).toBe(all.length);
    for (const p of all) expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    const overlaps = (a: Panel['gridPos'], b: Panel['gridPos']) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    const clashes = all.flatMap((a, i) => all.slice(i + 1).filter((b) => overlaps(a.gridPos, b.gridPos)).map((b) => `${a.title} / ${b.title}`));
    expect(clashes).toEqual([]);
  });
});

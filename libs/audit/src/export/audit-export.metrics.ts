import { makeCounterProvider, makeGaugeProvider } from '@willsoto/nestjs-prometheus';

export const AUDIT_EXPORT_LAG_METRIC = 'audit_export_lag_records';
export const AUDIT_EXPORT_DELIVERED_METRIC = 'audit_export_delivered_total';
export const AUDIT_EXPORT_FAILURES_METRIC = 'audit_export_failures_total';
export const AUDIT_EXPORT_LAST_DELIVERED_METRIC = 'audit_export_last_delivered_timestamp_seconds';

/** Labelled by sink (webhook | file): a bounded set. Every replica reports the shared cursor's lag. */
export const auditExportMetricProviders = [
  makeGaugeProvider({
    name: AUDIT_EXPORT_LAG_METRIC,
    help: 'Committed audit records not yet delivered to the sink',
    labelNames: ['sink'],
  }),
  makeCounterProvider({
    name: AUDIT_EXPORT_DELIVERED_METRIC,
    help: 'Audit records (and checkpoints) this process delivered to the sink',
    labelNames: ['sink'],
  }),
  makeCounterProvider({
    name: AUDIT_EXPORT_FAILURES_METRIC,
    help: 'Failed deliveries of a batch to the sink (each is retried)',
    labelNames: ['sink'],
  }),
  makeGaugeProvider({
    name: AUDIT_EXPORT_LAST_DELIVERED_METRIC,
    help: 'When the sink last confirmed a batch (Unix seconds; from the durable cursor)',
    labelNames: ['sink'],
  }),
];

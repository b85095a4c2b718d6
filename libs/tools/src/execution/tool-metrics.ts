import { makeCounterProvider } from '@willsoto/nestjs-prometheus';
import { makeTracedHistogramProvider } from '@app/health';

export const TOOL_EXECUTIONS_METRIC = 'tool_executions_total';
export const TOOL_DURATION_METRIC = 'tool_execution_duration_seconds';

/** Labelled by tool id (a bounded set: the catalogue) and final status (completed | failed). */
export const toolExecutionsCounter = makeCounterProvider({
  name: TOOL_EXECUTIONS_METRIC,
  help: 'Tool executions that ran to an end, by tool and final status',
  labelNames: ['tool', 'status'],
});

/** While tracing runs, each bucket keeps the trace of its latest call as an exemplar (OpenMetrics scrapes show it). */
export const toolDurationHistogram = makeTracedHistogramProvider({
  name: TOOL_DURATION_METRIC,
  help: 'Time a tool took to run, in seconds, by tool',
  labelNames: ['tool'],
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
});

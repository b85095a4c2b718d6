import { Gauge, register } from 'prom-client';

export interface StateGaugeOptions<T extends string> {
  name: string;
  help: string;
  labelNames?: readonly T[];
  /** Sets the gauge from in-process state; prom-client calls it right before each scrape reads the gauge. */
  read: (gauge: Gauge<T>) => void;
}

/**
 * A gauge whose value is read from in-process state at scrape time (a breaker, a connection, a
 * counter the owner keeps anyway), so the owner's hot path never touches it. It lives in the
 * default registry that GET /metrics serves, replacing one of the same name: an app built again in
 * the same process (tests) reports its own state, not a stopped one's.
 */
export function stateGauge<T extends string>(options: StateGaugeOptions<T>): Gauge<T> {
  register.removeSingleMetric(options.name);
  const { read } = options;
  return new Gauge<T>({
    name: options.name,
    help: options.help,
    labelNames: options.labelNames ?? [],
    collect() {
      read(this);
    },
  });
}

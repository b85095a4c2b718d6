import { ToolRuntimeStats } from './tool-runtime-stats';

describe('ToolRuntimeStats', () => {
  it('starts at zero', async () => {
    const stats = new ToolRuntimeStats();
    expect(stats.executionsInFlight).toBe(0);
    expect(await stats.openSessions()).toBe(0);
  });

  it('counts executions in flight, each finished once', () => {
    const stats = new ToolRuntimeStats();
    const first = stats.executionStarted();
    const second = stats.executionStarted();
    expect(stats.executionsInFlight).toBe(2);
    first();
    first();
    expect(stats.executionsInFlight).toBe(1);
    second();
    expect(stats.executionsInFlight).toBe(0);
  });

  it('asks its source for open sessions', async () => {
    const stats = new ToolRuntimeStats();
    stats.useOpenSessionsSource(() => 4);
    expect(await stats.openSessions()).toBe(4);
    stats.useOpenSessionsSource(async () => 5);
    expect(await stats.openSessions()).toBe(5);
  });
});

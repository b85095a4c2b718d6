import { Logger } from '@nestjs/common';
import { BackgroundJobs } from './background-jobs';

describe('BackgroundJobs', () => {
  let jobs: BackgroundJobs;

  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jobs = new BackgroundJobs();
  });

  afterEach(() => {
    jobs.stopAll();
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('runs a job every interval and lists it by name', () => {
    let runs = 0;
    jobs.every('b.second', 1_000, () => undefined);
    jobs.every('a.first', 500, () => (runs += 1));
    jest.advanceTimersByTime(1_500);
    expect(runs).toBe(3);
    const listed = jobs.list();
    expect(listed.map((job) => job.name)).toEqual(['a.first', 'b.second']);
    expect(listed[0]).toMatchObject({ intervalMs: 500, runs: 3, skipped: 0, running: false, lastError: null });
    expect(listed[1]).toMatchObject({ intervalMs: 1_000, runs: 1 });
    expect(listed[0].lastRunAt).not.toBeNull();
  });

  it('skips a tick while the previous async run is still in flight', async () => {
    let finish: () => void = () => undefined;
    let started = 0;
    jobs.every('slow', 100, () => {
      started += 1;
      return new Promise<void>((resolve) => (finish = resolve));
    });
    jest.advanceTimersByTime(350);
    expect(started).toBe(1);
    expect(jobs.list()[0]).toMatchObject({ runs: 1, skipped: 2, running: true });
    finish();
    await Promise.resolve();
    await Promise.resolve();
    jest.advanceTimersByTime(100);
    expect(started).toBe(2);
  });

  it('records the last error of a failed run and keeps the job scheduled', async () => {
    let fail = true;
    jobs.every('flaky', 100, async () => {
      if (fail) throw new Error('probe refused');
    });
    jest.advanceTimersByTime(100);
    await Promise.resolve();
    await Promise.resolve();
    expect(jobs.list()[0]).toMatchObject({ lastError: 'probe refused', running: false });
    fail = false;
    jest.advanceTimersByTime(100);
    await Promise.resolve();
    await Promise.resolve();
    expect(jobs.list()[0]).toMatchObject({ runs: 2, lastError: null });
  });

  it('records a synchronous throw too', () => {
    jobs.every('throws', 100, () => {
      throw new Error('boom');
    });
    jest.advanceTimersByTime(100);
    expect(jobs.list()[0].lastError).toBe('boom');
  });

  it('stops one job by its handle, and every job at application shutdown', () => {
    let a = 0;
    let b = 0;
    const first = jobs.every('a', 100, () => (a += 1));
    jobs.every('b', 100, () => (b += 1));
    first.stop();
    first.stop();
    jest.advanceTimersByTime(100);
    expect([a, b]).toEqual([0, 1]);
    expect(jobs.list().map((job) => job.name)).toEqual(['b']);
    jobs.onApplicationShutdown();
    jest.advanceTimersByTime(500);
    expect(b).toBe(1);
    expect(jobs.list()).toEqual([]);
  });

  it('refuses a second job of the same name and a non-positive interval', () => {
    jobs.every('same', 100, () => undefined);
    expect(() => jobs.every('same', 100, () => undefined)).toThrow('Background job same is already scheduled; stop it first');
    expect(() => jobs.every('zero', 0, () => undefined)).toThrow('Background job zero: the interval must be positive, not 0');
  });

  it('unrefs its timers unless told otherwise', () => {
    jest.useRealTimers();
    const real = new BackgroundJobs();
    const spy = jest.spyOn(global, 'setInterval');
    real.every('unrefd', 60_000, () => undefined);
    real.every('refd', 60_000, () => undefined, { unref: false });
    const [unrefd, refd] = spy.mock.results.map((result) => result.value as NodeJS.Timeout);
    expect(unrefd.hasRef()).toBe(false);
    expect(refd.hasRef()).toBe(true);
    spy.mockRestore();
    real.stopAll();
  });
});

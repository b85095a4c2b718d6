import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { AppConfig, Clock } from '@app/core';
import { SessionActivityService } from './session-activity.service';
import { SessionRepository } from './session.repository';

type Call = { sql: string; params: unknown[][] };

function setup(query: (call: Call) => Promise<unknown> = async () => []) {
  const calls: Call[] = [];
  const dataSource = {
    isInitialized: true,
    query: jest.fn(async (sql: string, params: unknown[][]) => {
      const call = { sql, params };
      calls.push(call);
      return query(call);
    }),
  } as unknown as DataSource;
  const clock = { nowMs: () => 1_000_000, now: () => new Date(1_000_000) } as Clock;
  const service = new SessionActivityService(new SessionRepository(dataSource), clock, { auth: { sessionFlushMs: 5_000 } } as AppConfig);
  return { service, calls };
}

/** The batch of one UPDATE as rows: [id, received, sent, toolExecutions, errors, lastActivity]. */
const rowsOf = (call: Call) => call.params[0].map((id, i) => [id, ...call.params.slice(1).map((column) => column[i])]);

describe('SessionActivityService', () => {
  it('adds up deltas per session and writes them in one statement', async () => {
    const { service, calls } = setup();
    service.touch('ses_a', 2_000);
    service.touch('ses_a', 1_500);
    service.count('ses_a', { received: 1, sent: 1 });
    service.count('ses_a', { received: 2, errors: 1 });
    service.count('ses_b', { toolExecutions: 3 });
    expect(service.pending('ses_a')).toEqual({ received: 3, sent: 1, toolExecutions: 0, errors: 1, lastActivityMs: 2_000 });

    await service.flush();
    expect(calls).toHaveLength(1);
    expect(calls[0].sql).toMatch(/UPDATE sessions AS s/);
    expect(rowsOf(calls[0])).toEqual([
      ['ses_a', 3, 1, 0, 1, new Date(2_000).toISOString()],
      ['ses_b', 0, 0, 3, 0, null],
    ]);
    expect(service.pending('ses_a')).toBeUndefined();
    await service.flush();
    expect(calls).toHaveLength(1);
  });

  it('keeps counting what is being written until it commits', async () => {
    let release!: () => void;
    const { service } = setup(() => new Promise((resolve) => (release = () => resolve([]))));
    service.count('ses_a', { received: 1 });
    const flushing = service.flush();
    await Promise.resolve();
    service.count('ses_a', { received: 1 });
    expect(service.pending('ses_a')?.received).toBe(2);
    release();
    await flushing;
    expect(service.pending('ses_a')?.received).toBe(1);
  });

  it('lets a second flush wait for the first and then write what arrived meanwhile', async () => {
    const releases: Array<() => void> = [];
    const { service, calls } = setup(() => new Promise((resolve) => releases.push(() => resolve([]))));
    service.count('ses_a', { sent: 1 });
    const first = service.flush();
    await Promise.resolve();
    service.count('ses_a', { sent: 5 });
    const second = service.flush();
    releases[0]();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(2);
    releases[1]();
    await second;
    expect(rowsOf(calls[1])).toEqual([['ses_a', 0, 5, 0, 0, null]]);
  });

  it('keeps the deltas when the database refuses, for the next attempt', async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    let fail = true;
    const { service, calls } = setup(async () => {
      if (fail) throw new Error('connection lost');
      return [];
    });
    service.count('ses_a', { errors: 2 });
    service.touch('ses_a', 5_000);
    await service.flush();
    service.count('ses_a', { errors: 1 });
    expect(service.pending('ses_a')).toEqual({ received: 0, sent: 0, toolExecutions: 0, errors: 3, lastActivityMs: 5_000 });
    fail = false;
    await service.flush();
    expect(rowsOf(calls[1])).toEqual([['ses_a', 0, 0, 0, 3, new Date(5_000).toISOString()]]);
  });

  it('flushes on shutdown', async () => {
    const { service, calls } = setup();
    service.onApplicationBootstrap();
    service.count('ses_a', { received: 1 });
    await service.beforeApplicationShutdown();
    expect(calls).toHaveLength(1);
  });
});

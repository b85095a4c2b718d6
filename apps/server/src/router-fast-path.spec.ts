import { CanActivate, ForbiddenException, PipeTransform } from '@nestjs/common';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import { GuardsConsumer } from '@nestjs/core/guards/guards-consumer';
import { PipesConsumer } from '@nestjs/core/pipes/pipes-consumer';
import { RouterExecutionContext } from '@nestjs/core/router/router-execution-context';
import { of } from 'rxjs';
import { installRouterFastPath } from './router-fast-path';

type Outcome = { ok: true; args: unknown[] } | { ok: false; error: unknown };
type Step = (...args: unknown[]) => void | Promise<void>;

const proto = RouterExecutionContext.prototype;
const nest = { guards: proto.createGuardsFn, pipes: proto.createPipesFn };
installRouterFastPath();
const fast = { guards: proto.createGuardsFn, pipes: proto.createPipesFn };
const router = new RouterExecutionContext(
  {} as never,
  {} as never,
  new PipesConsumer(),
  {} as never,
  new GuardsConsumer(),
  {} as never,
  {} as never,
  {} as never,
);

/** Runs a step as Nest's router does (`step && (await step(...))`), recording what happened. */
async function outcome(step: Step | null, args: unknown[], ...rest: unknown[]): Promise<Outcome> {
  try {
    if (step) await step(args, ...rest);
    return { ok: true, args: [...args] };
  } catch (error) {
    return { ok: false, error };
  }
}

function expectSame(a: Outcome, b: Outcome): void {
  expect(b.ok).toBe(a.ok);
  if (a.ok && b.ok) expect(b.args).toEqual(a.args);
  if (!a.ok && !b.ok) {
    if (a.error instanceof ForbiddenException) expect(b.error).toEqual(a.error);
    else expect(b.error).toBe(a.error);
  }
}

describe('installRouterFastPath', () => {
  it('is installed once, and replaces only the guards and pipes steps', () => {
    installRouterFastPath();
    expect(proto.createGuardsFn).toBe(fast.guards);
    expect(fast.guards).not.toBe(nest.guards);
    expect(fast.pipes).not.toBe(nest.pipes);
  });

  describe('guards, against Nest', () => {
    const errorOf = new Error('guard threw');
    const kinds: Record<string, () => unknown> = {
      true: () => true,
      false: () => false,
      'promise true': () => Promise.resolve(true),
      'promise false': () => Promise.resolve(false),
      'observable true': () => of(true),
      'observable false': () => of(false),
      throws: () => {
        throw errorOf;
      },
      rejects: () => Promise.reject(errorOf),
    };
    const names = Object.keys(kinds);
    const chains = [[], ...names.map((a) => [a]), ...names.flatMap((a) => names.map((b) => [a, b])), ['true', 'promise true', 'false']];

    it.each(chains.map((chain) => [chain.join(', ') || '(none)', chain]))('%s', async (_label, chain) => {
      const run = async (factory: typeof nest.guards) => {
        const called: number[] = [];
        const seen: unknown[] = [];
        const guards: CanActivate[] = (chain as string[]).map((kind, i) => ({
          canActivate: (context) => {
            called.push(i);
            seen.push(context.getType());
            return kinds[kind]() as boolean;
          },
        }));
        const step = factory.call(router, guards, { constructor: class Controller {} }, () => undefined, 'http');
        const result = await outcome(step as Step | null, ['req', 'res', 'next']);
        return { result, called, seen };
      };
      const a = await run(nest.guards);
      const b = await run(fast.guards);
      expectSame(a.result, b.result);
      expect(b.called).toEqual(a.called);
      expect(b.seen).toEqual(a.seen);
    });

    it('answers without a promise when every guard answers a boolean', () => {
      const step = fast.guards.call(router, [{ canActivate: () => true }, { canActivate: () => true }], {}, () => undefined, 'http')!;
      expect(step(['req', 'res', 'next'])).toBeUndefined();
    });
  });

  describe('pipes, against Nest', () => {
    /** Pipe kinds: what transform does with the value it gets; a failing pipe fails with its own error, named by `where`. */
    const pipeKinds: Record<string, (where: string) => PipeTransform> = {
      same: () => ({ transform: (value: unknown) => value }),
      suffix: () => ({ transform: (value: unknown) => `${String(value)}+s` }),
      'async suffix': () => ({ transform: async (value: unknown) => `${String(value)}+a` }),
      'late suffix': () => ({
        transform: (value: unknown) => new Promise((done) => setTimeout(() => done(`${String(value)}+l`), 2)),
      }),
      throws: (where) => ({
        transform: () => {
          throw new Error(`throws at ${where}`);
        },
      }),
      rejects: (where) => ({ transform: () => Promise.reject(new Error(`rejects at ${where}`)) }),
      'late rejects': (where) => ({
        transform: () => new Promise((_done, fail) => setTimeout(() => fail(new Error(`late rejects at ${where}`)), 2)),
      }),
      metadata: () => ({ transform: (value: unknown, metadata) => `${String(value)}:${metadata.type}:${String(metadata.data)}` }),
    };
    const paramTypes: Array<[string, RouteParamtypes | string]> = [
      ['query', RouteParamtypes.QUERY],
      ['body', RouteParamtypes.BODY],
      ['param', RouteParamtypes.PARAM],
      ['custom', 'custom'],
      ['res', RouteParamtypes.RESPONSE],
    ];
    type ParamCase = { type: string; own: string[]; extract: 'value' | 'throws' };
    const cases: Array<{ global: string[]; params: ParamCase[] }> = [];
    const chains = [
      [],
      ['same'],
      ['suffix'],
      ['async suffix'],
      ['throws'],
      ['rejects'],
      ['late rejects'],
      ['suffix', 'late suffix', 'metadata'],
    ];
    for (const global of [[], ['metadata'], ['async suffix']])
      for (const own of chains) for (const [type] of paramTypes) cases.push({ global, params: [{ type, own, extract: 'value' }] });
    // Two failing parameters: which error is reported.
    const failing = ['throws', 'rejects', 'late rejects'];
    for (const first of failing)
      for (const second of failing)
        cases.push({
          global: [],
          params: [
            { type: 'body', own: [first], extract: 'value' },
            { type: 'custom', own: ['same'], extract: 'value' },
            { type: 'param', own: [second], extract: 'value' },
          ],
        });
    cases.push({
      global: ['suffix'],
      params: [
        { type: 'body', own: ['late rejects'], extract: 'value' },
        { type: 'custom', own: [], extract: 'throws' },
        { type: 'query', own: ['throws'], extract: 'throws' },
      ],
    });
    cases.push({
      global: ['same'],
      params: [
        { type: 'custom', own: [], extract: 'value' },
        { type: 'query', own: ['late suffix'], extract: 'value' },
        { type: 'res', own: [], extract: 'value' },
      ],
    });

    it.each(cases.map((c) => [JSON.stringify(c), c]))('%s', async (_label, c) => {
      const run = async (factory: typeof nest.pipes) => {
        const paramsOptions = c.params.map((param, index) => ({
          index: c.params.length - 1 - index,
          type: paramTypes.find(([name]) => name === param.type)![1],
          data: `d${index}`,
          metatype: String,
          pipes: param.own.map((kind, step) => pipeKinds[kind](`param ${index} pipe ${step}`)),
          extractValue: (req: string) => {
            if (param.extract === 'throws') throw new Error(`extract ${index}`);
            return `${req}.${index}`;
          },
        }));
        const global = c.global.map((kind, step) => pipeKinds[kind](`global pipe ${step}`));
        const step = factory.call(router, global, paramsOptions as never);
        return outcome(step as Step | null, new Array(c.params.length).fill(null), 'req', 'res', 'next');
      };
      const a = await run(nest.pipes);
      const b = await run(fast.pipes);
      expect(b.ok).toBe(a.ok);
      if (a.ok && b.ok) expect(b.args).toEqual(a.args);
      // The same failure (each run has its own error objects): by its message, which names where it arose.
      if (!a.ok && !b.ok) expect((b.error as Error).message).toBe((a.error as Error).message);
    });

    it('answers without a promise when every pipe answers at once', () => {
      const step = fast.pipes.call(router, [{ transform: (value: unknown) => value }], [
        { index: 0, type: 'custom', data: undefined, pipes: [], extractValue: () => 'principal' },
      ] as never)!;
      const args: unknown[] = [null];
      expect(step(args, 'req', 'res', () => undefined)).toBeUndefined();
      expect(args).toEqual(['principal']);
    });
  });
});

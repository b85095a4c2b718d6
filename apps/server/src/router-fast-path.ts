import { ArgumentMetadata, CanActivate, ForbiddenException, PipeTransform } from '@nestjs/common';
import { GuardsConsumer } from '@nestjs/core/guards/guards-consumer';
import { FORBIDDEN_MESSAGE } from '@nestjs/core/guards/constants';
import { ParamsTokenFactory } from '@nestjs/core/pipes/params-token-factory';
import { ParamProperties, RouterExecutionContext } from '@nestjs/core/router/router-execution-context';

/**
 * Nest's router runs a route's guards and parameter pipes through promises even when every guard
 * and pipe answers at once, as ours do on a cached read (the guards decide from memory, the global
 * pipe hands a custom decorator's value on and an empty query its cached DTO): about a dozen
 * promises and their microtasks per request. These two steps, as RouterExecutionContext builds
 * them, are replaced by ones that run synchronously until a guard or a pipe answers with a
 * promise, then go on as Nest's do: same guards and pipes, same order, same arguments, same
 * errors (a refusal is still Nest's ForbiddenException; a failing parameter is still reported as
 * Nest reports it, see `pipesStep`). The rest of the router (interceptors, handler, response) is
 * Nest's own. router-fast-path.spec runs both versions side by side.
 */
export function installRouterFastPath(): void {
  const proto = RouterExecutionContext.prototype as unknown as RouterInternals;
  if (proto.createGuardsFn === guardsStepFactory) return;
  if (typeof proto.createGuardsFn !== 'function' || typeof proto.createPipesFn !== 'function' || typeof proto.isPipeable !== 'function')
    throw new Error('installRouterFastPath: @nestjs/core RouterExecutionContext is not the shape this was written for');
  proto.createGuardsFn = guardsStepFactory;
  proto.createPipesFn = pipesStepFactory;
}

type GuardsStep = (args: unknown[]) => void | Promise<void>;
type PipesStep = (args: unknown[], req: unknown, res: unknown, next: unknown) => void | Promise<void>;
type Param = ParamProperties & { metatype?: unknown };

interface RouterInternals {
  guardsConsumer: GuardsConsumer;
  isPipeable(type: number | string): boolean;
  createGuardsFn(
    guards: CanActivate[],
    instance: object,
    callback: (...args: unknown[]) => unknown,
    contextType?: string,
  ): GuardsStep | null;
  createPipesFn(pipes: PipeTransform[], paramsOptions: Param[]): PipesStep | null;
}

/** GuardsConsumer's own helpers (createContext, pickResult), public at run time but not in its typings. */
interface GuardsConsumerInternals {
  createContext(args: unknown[], instance: object, callback: (...args: unknown[]) => unknown): { setType(type: string): void };
  pickResult(result: unknown): Promise<boolean>;
}

function guardsStepFactory(
  this: RouterInternals,
  guards: CanActivate[],
  instance: object,
  callback: (...args: unknown[]) => unknown,
  contextType = 'http',
): GuardsStep | null {
  if (guards.length === 0) return null;
  const consumer = this.guardsConsumer as unknown as GuardsConsumerInternals;
  // Nest's tryActivate, minus its promise: each guard in turn, a boolean decided at once, anything
  // else (a promise, an Observable) awaited as Nest awaits it before the next guard runs.
  const from = async (context: unknown, pending: unknown, next: number): Promise<void> => {
    if (!(await consumer.pickResult(pending))) throw new ForbiddenException(FORBIDDEN_MESSAGE);
    for (let i = next; i < guards.length; i++) {
      const result = guards[i].canActivate(context as never);
      if (typeof result === 'boolean') {
        if (!result) throw new ForbiddenException(FORBIDDEN_MESSAGE);
      } else if (!(await consumer.pickResult(result))) throw new ForbiddenException(FORBIDDEN_MESSAGE);
    }
  };
  return (args) => {
    const context = consumer.createContext(args, instance, callback);
    context.setType(contextType);
    for (let i = 0; i < guards.length; i++) {
      const result = guards[i].canActivate(context as never);
      if (typeof result !== 'boolean') return from(context, result, i + 1);
      if (!result) throw new ForbiddenException(FORBIDDEN_MESSAGE);
    }
  };
}

interface PreparedParam {
  index: number;
  extractValue: (req: unknown, res: unknown, next: unknown) => unknown;
  /** The global and the parameter's own pipes (Nest's `pipes.concat(paramPipes)`); null: not pipeable. */
  pipes: PipeTransform[] | null;
  metatype: unknown;
  type: ArgumentMetadata['type'];
  data: ArgumentMetadata['data'];
}

const tokens = new ParamsTokenFactory();

/**
 * Nest's pipes step: every parameter's value is extracted first (in order), then each pipeable one
 * goes through the global pipes and then its own, each pipe given what the previous one answered.
 * Here a pipe that answers at once is not awaited; from a pipe that answers with a promise on,
 * that parameter continues asynchronously, as in Nest. When parameters fail, the error reported is
 * the one Nest's Promise.all settles on first: a value that could not be extracted (then no pipe
 * runs; Nest would run them for nothing), else a pipe that threw at once (the first in parameter
 * order), else the first rejection.
 */
function pipesStepFactory(this: RouterInternals, pipes: PipeTransform[], paramsOptions: Param[]): PipesStep | null {
  if (paramsOptions.length === 0) return null;
  const params: PreparedParam[] = paramsOptions.map((param) => ({
    index: param.index,
    extractValue: param.extractValue as PreparedParam['extractValue'],
    pipes: this.isPipeable(param.type) ? pipes.concat(param.pipes) : null,
    metatype: param.metatype,
    type: tokens.exchangeEnumForString(param.type as never) as ArgumentMetadata['type'],
    data: param.data as ArgumentMetadata['data'],
  }));
  return (args, req, res, next) => {
    let failed: { error: unknown } | undefined;
    for (const param of params) {
      try {
        args[param.index] = param.extractValue(req, res, next);
      } catch (error) {
        failed ??= { error };
      }
    }
    if (failed) return Promise.reject(failed.error as Error);
    let pending: Array<Promise<void>> | undefined;
    for (const param of params) {
      if (param.pipes === null || param.pipes.length === 0) continue;
      const metadata: ArgumentMetadata = { metatype: param.metatype as ArgumentMetadata['metatype'], type: param.type, data: param.data };
      let current: unknown = args[param.index];
      let step = 0;
      try {
        for (; step < param.pipes.length; step++) {
          current = param.pipes[step].transform(current, metadata);
          if (isThenable(current)) break;
        }
      } catch (error) {
        failed ??= { error };
        continue;
      }
      if (step === param.pipes.length) args[param.index] = current;
      else (pending ??= []).push(finish(args, param, metadata, current, step + 1));
    }
    if (failed) {
      // Nest's Promise.all still settles (and so handles) the other parameters' outcomes.
      for (const promise of pending ?? []) promise.catch(() => undefined);
      return Promise.reject(failed.error as Error);
    }
    if (pending) return Promise.all(pending).then(() => undefined);
  };
}

async function finish(args: unknown[], param: PreparedParam, metadata: ArgumentMetadata, current: unknown, from: number): Promise<void> {
  let value = await current;
  for (let step = from; step < param.pipes!.length; step++) value = await param.pipes![step].transform(value, metadata);
  args[param.index] = value;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function'
  );
}

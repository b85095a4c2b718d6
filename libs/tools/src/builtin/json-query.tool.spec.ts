import Ajv from 'ajv';
import { JSON_QUERY_DEFAULTS, JsonQueryTool } from './json-query.tool';
import { ctx, failure } from './tool-call.test-helpers';

const PEOPLE = {
  people: [
    { name: 'Ada', age: 36, city: 'London' },
    { name: 'Grace', age: 45, city: 'New York' },
    { name: 'Linus', age: 28, city: 'Helsinki' },
  ],
};

describe('JsonQueryTool', () => {
  const tool = new JsonQueryTool();
  const validateOutput = new Ajv({ strict: true }).compile(tool.definition.outputSchema);

  it('evaluates projections, filters and functions over a document value', async () => {
    const names = await tool.execute({ expression: 'people[?age > `30`].name', document: PEOPLE }, ctx());
    expect(names).toEqual({ result: ['Ada', 'Grace'] });
    expect(validateOutput(names)).toBe(true);
    expect(await tool.execute({ expression: 'max_by(people, &age).name', document: PEOPLE }, ctx())).toEqual({ result: 'Grace' });
    expect(await tool.execute({ expression: 'sum(people[].age)', document: PEOPLE }, ctx())).toEqual({ result: 109 });
    expect(await tool.execute({ expression: 'people[0].{n: name, c: city}', document: PEOPLE }, ctx())).toEqual({
      result: { n: 'Ada', c: 'London' },
    });
  });

  it('accepts the document as JSON text and answers null when nothing matches', async () => {
    expect(await tool.execute({ expression: 'a.b', json: '{"a":{"b":[1,2]}}' }, ctx())).toEqual({ result: [1, 2] });
    const nothing = await tool.execute({ expression: 'missing', document: PEOPLE }, ctx());
    expect(nothing).toEqual({ result: null });
    expect(validateOutput(nothing)).toBe(true);
  });

  it('reports bad expressions and bad JSON as invalid input', async () => {
    const syntax = await failure(tool.execute({ expression: 'people[?', document: PEOPLE }, ctx()));
    expect(syntax.code).toBe('INVALID_INPUT');
    expect(syntax.details?.[0].field).toBe('/expression');
    expect((await failure(tool.execute({ expression: 'unknown_fn(people)', document: PEOPLE }, ctx()))).code).toBe('INVALID_INPUT');
    expect((await failure(tool.execute({ expression: 'abs(people[0].name)', document: PEOPLE }, ctx()))).code).toBe('INVALID_INPUT');
    expect((await failure(tool.execute({ expression: 'a', json: '{"a":' }, ctx()))).code).toBe('INVALID_INPUT');
  });

  it('bounds the document size and depth', async () => {
    const small = new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, maxDocumentBytes: 100 });
    expect((await failure(small.execute({ expression: '@', document: { text: 'x'.repeat(200) } }, ctx()))).code).toBe('TOO_LARGE');
    expect((await failure(small.execute({ expression: '@', json: JSON.stringify({ text: 'x'.repeat(200) }) }, ctx()))).code).toBe(
      'TOO_LARGE',
    );
    let deep: unknown = 1;
    for (let i = 0; i < 1000; i++) deep = [deep];
    expect((await failure(tool.execute({ expression: '@', document: deep }, ctx()))).code).toBe('TOO_LARGE');
  });

  it('bounds the result: an expression that multiplies its input is stopped', async () => {
    const doubling = Array(40).fill('[@, @]').join(' | ');
    const error = await failure(
      new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, maxHeapMb: 32, timeoutMs: 5000 }).execute({ expression: doubling, document: 'x' }, ctx()),
    );
    expect(['TOO_LARGE', 'TIMEOUT']).toContain(error.code);
    const padded = await failure(
      new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, maxResultBytes: 1000 }).execute(
        { expression: "pad_left('a', `5000`)", document: {} },
        ctx(),
      ),
    );
    expect(padded.code).toBe('TOO_LARGE');
  });

  it('times out and stops a long evaluation', async () => {
    const slow = new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, timeoutMs: 200, maxHeapMb: 1024 });
    const doubling = Array(26).fill('[@, @]').join(' | ');
    const error = await failure(slow.execute({ expression: `length(to_string(${doubling}))`, document: 'x' }, ctx()));
    expect(['TIMEOUT', 'TOO_LARGE']).toContain(error.code);
    // A worker cannot even start in 1 ms: the deadline alone decides.
    const instant = new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, timeoutMs: 1 });
    expect((await failure(instant.execute({ expression: '@', document: 1 }, ctx()))).code).toBe('TIMEOUT');
  });

  it('stops when the call is aborted', async () => {
    const controller = new AbortController();
    const doubling = Array(60).fill('[@, @]').join(' | ');
    setTimeout(() => controller.abort(), 100);
    const error = await failure(
      new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, maxHeapMb: 512, timeoutMs: 30_000 }).execute(
        { expression: `length(to_string(${doubling}))`, document: 'x' },
        ctx(controller.signal),
      ),
    );
    expect(['ABORTED', 'TOO_LARGE']).toContain(error.code);
    const aborted = new AbortController();
    aborted.abort();
    expect((await failure(tool.execute({ expression: '@', document: 1 }, ctx(aborted.signal)))).code).toBe('ABORTED');
  });
});

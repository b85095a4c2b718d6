import Ajv from 'ajv';
import { ToolError, ToolErrorCode } from '../provider/tool-error';
import { EchoTool } from './echo.tool';
import { ctx } from './tool-call.test-helpers';

describe('EchoTool', () => {
  const tool = new EchoTool();

  it('returns its message, matching the output schema', async () => {
    const output = await tool.execute({ message: 'hello' }, ctx());
    expect(output).toEqual({ message: 'hello' });
    expect(new Ajv({ strict: true }).compile(tool.definition.outputSchema)(output)).toBe(true);
  });

  it('waits delayMs, and stops waiting when aborted', async () => {
    let started = Date.now();
    await tool.execute({ message: 'x', delayMs: 50 }, ctx());
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    // A 60 s wait that ends ABORTED stopped at the signal.
    await expect(tool.execute({ message: 'x', delayMs: 60_000 }, ctx(controller.signal))).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('passes a timeout reason through', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new ToolError(ToolErrorCode.TIMEOUT, 'took too long')), 20);
    await expect(tool.execute({ message: 'x', delayMs: 60_000 }, ctx(controller.signal))).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});

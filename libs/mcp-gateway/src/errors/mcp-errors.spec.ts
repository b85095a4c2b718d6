import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { AppException, ErrorCode } from '@app/core';
import { handlerErrorOf } from './mcp-errors';

/** The JSON-RPC error the agent gets for `thrown`, and whether it is a fault of ours. */
function answered(thrown: unknown): { code: unknown; message: unknown; data: unknown; fault: string } {
  const { error, fault } = handlerErrorOf(thrown);
  const { code, message, data } = error as ProtocolError;
  return { code, message, data, fault };
}

describe('handlerErrorOf (what a request handler throws, as the agent gets it)', () => {
  it('passes a JSON-RPC error through unchanged: ours, or an upstream error relayed as sent', () => {
    const ours = new ProtocolError(ProtocolErrorCode.InvalidParams, 'Unknown tool: nope');
    expect(handlerErrorOf(ours)).toEqual({ error: ours, fault: 'none' });
    const upstream = Object.assign(new Error('upstream says no'), { code: -32042, data: { hint: 'kept' } });
    const mapped = handlerErrorOf(upstream);
    expect(mapped.error).toBe(upstream);
    expect(mapped.fault).toBe('none');
  });

  it("turns an AppException into its refusal: the contract's code and status in data, headers' Retry-After as retryAfter", () => {
    const limited = new AppException(ErrorCode.RATE_LIMIT_EXCEEDED, 'Too many requests', 429, [], { 'Retry-After': '7' });
    expect(answered(limited)).toEqual({
      code: -32000,
      message: 'Too many requests',
      data: { status: 429, error: 'RATE_LIMIT_EXCEEDED', retryAfter: 7 },
      fault: 'none',
    });
  });

  it("turns the database being away into a 503 to retry, naming neither the driver's message nor an address", () => {
    for (const thrown of [
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('PostgreSQL unavailable: heartbeat failed: connect ECONNREFUSED 127.0.0.1:41751'), { code: '08006' }),
    ]) {
      expect(answered(thrown)).toEqual({
        code: -32000,
        message: 'Database temporarily unavailable',
        data: { status: 503, error: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
        fault: 'unavailable',
      });
    }
  });

  it('turns anything else into an internal error that says nothing of it', () => {
    for (const thrown of [
      new TypeError("Cannot read properties of undefined (reading 'secret')"),
      'a string',
      null,
      { code: 'ENOENT', message: '/etc/x' },
    ]) {
      expect(answered(thrown)).toEqual({
        code: -32603,
        message: 'Internal server error',
        data: { status: 500, error: 'INTERNAL_ERROR' },
        fault: 'internal',
      });
    }
  });
});

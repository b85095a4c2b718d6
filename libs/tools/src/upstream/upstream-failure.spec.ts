import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from '@modelcontextprotocol/client';
import { clip, readFailure } from './upstream-failure';

describe('readFailure', () => {
  it("reads a refused connection through fetch's cause chain", () => {
    const error = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:8443'), { code: 'ECONNREFUSED' }),
    });
    expect(readFailure(error)).toEqual({ kind: 'connection', summary: 'connection refused' });
    expect(readFailure(Object.assign(new Error('spawn /opt/x ENOENT'), { code: 'ENOENT' }))).toEqual({
      kind: 'connection',
      summary: 'command not found',
    });
  });

  it('tells timeouts, closed connections and rejected credentials apart', () => {
    expect(readFailure(new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out'))).toEqual({ kind: 'timeout', summary: 'timed out' });
    expect(readFailure(new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'))).toEqual({
      kind: 'connection',
      summary: 'connection closed',
    });
    const denied = new SdkHttpError(SdkErrorCode.ClientHttpAuthentication, 'Unauthorized', { status: 401 } as never);
    expect(readFailure(denied)).toEqual({ kind: 'connection', summary: "the upstream rejected the gateway's credentials (HTTP 401)" });
  });

  it("keeps the upstream's own words for callers, not for the public health page", () => {
    const reading = readFailure(new ProtocolError(-32602, 'Unknown tool: nope'));
    expect(reading.kind).toBe('protocol');
    expect(reading.summary).toContain('Unknown tool: nope');
    expect(reading.publicSummary).toBe('the upstream answered error -32602');
  });

  it('never says more than it knows, and clips long messages', () => {
    expect(readFailure(new Error('secret at /srv/x'))).toEqual({ kind: 'other', summary: 'unexpected error' });
    expect(clip('a'.repeat(500)).length).toBe(200);
  });
});

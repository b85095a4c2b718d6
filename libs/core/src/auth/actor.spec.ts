import type { FastifyRequest } from 'fastify';
import { actorOf, userAgentOf } from './actor';
import type { Principal } from './principal';

function request(fields: Partial<FastifyRequest> & { headers: Record<string, unknown> }): FastifyRequest {
  return fields as unknown as FastifyRequest;
}

describe('actorOf', () => {
  it('takes the principal, address, agent and request id of a request', () => {
    const principal = { userId: 'usr_1', sessionId: 'ses_1' } as Principal;
    expect(actorOf(request({ principal, ip: '198.51.100.7', id: 'req_abc', headers: { 'user-agent': 'mcp-client/1' } }))).toEqual({
      principal,
      ipAddress: '198.51.100.7',
      userAgent: 'mcp-client/1',
      requestId: 'req_abc',
    });
  });

  it('has no principal on a public route and a null agent without the header', () => {
    const actor = actorOf(request({ ip: '198.51.100.7', id: 'req_abc', headers: {} }));
    expect(actor.principal).toBeUndefined();
    expect(actor.userAgent).toBeNull();
  });
});

describe('userAgentOf', () => {
  it('keeps at most 512 characters and ignores a repeated header', () => {
    expect(userAgentOf('x'.repeat(600))).toHaveLength(512);
    expect(userAgentOf(['a', 'b'])).toBeNull();
  });
});

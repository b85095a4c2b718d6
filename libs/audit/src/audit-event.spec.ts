import type { Principal } from '@app/core';
import { AUDIT_ACTIONS, AuditAction, auditEvent, SYSTEM_ACTOR } from './audit-event';

const principal: Principal = { userId: 'usr_1', email: 'a@example.com', sessionId: 'ses_1', roles: ['user'], permissions: [], via: 'jwt' };
const actor = { principal, ipAddress: '203.0.113.9', userAgent: 'curl/8', requestId: 'req_1' };

describe('auditEvent', () => {
  it('takes user, address and agent from the actor, and success/info by default', () => {
    expect(auditEvent(AuditAction.AUTH_LOGOUT, actor, { resource: 'session:ses_1' })).toEqual({
      action: 'auth.logout',
      userId: 'usr_1',
      resource: 'session:ses_1',
      result: 'success',
      severity: 'info',
      ipAddress: '203.0.113.9',
      userAgent: 'curl/8',
    });
  });

  it('makes a failure a warning unless a severity is given', () => {
    const failure = auditEvent(AuditAction.AUTH_LOGIN_FAILED, actor, { result: 'failure', details: { reason: 'wrong_password' } });
    expect([failure.result, failure.severity, failure.details]).toEqual(['failure', 'warning', { reason: 'wrong_password' }]);
    expect(auditEvent(AuditAction.AUTH_REFRESH_REUSE, actor, { result: 'failure', severity: 'critical' }).severity).toBe('critical');
  });

  it('lets the record name another user than the actor, or none', () => {
    expect(auditEvent(AuditAction.AUTH_LOGIN, { ipAddress: null, userAgent: null }, { userId: 'usr_2' }).userId).toBe('usr_2');
    expect(auditEvent(AuditAction.AUTH_LOGIN_FAILED, actor, { userId: null }).userId).toBeNull();
  });

  it('leaves out what was not given (the writer stores empty details and metadata, null resource)', () => {
    const entry = auditEvent(AuditAction.TOOL_CATALOG_RECONCILED, SYSTEM_ACTOR);
    expect(Object.keys(entry).sort()).toEqual(['action', 'ipAddress', 'result', 'severity', 'userAgent', 'userId']);
    expect([entry.userId, entry.ipAddress, entry.userAgent]).toEqual([null, null, null]);
  });

  it('never copies the request id or the principal into the record', () => {
    const entry = auditEvent(AuditAction.CONTEXT_CREATE, actor) as unknown as Record<string, unknown>;
    expect(entry.requestId).toBeUndefined();
    expect(entry.principal).toBeUndefined();
  });
});

describe('AuditAction', () => {
  it('lists each action once, each a well-formed dotted name', () => {
    expect(new Set(AUDIT_ACTIONS).size).toBe(AUDIT_ACTIONS.length);
    for (const action of AUDIT_ACTIONS) expect(action).toMatch(/^[a-z]+(\.[a-z_]+)+$/);
  });
});

import { Clock } from '@app/core';
import { REQUEST_STATE_TTL_MS, RequestStateBinding, RequestStateSeal } from './request-state.seal';

/** A clock the test moves by hand. */
class ManualClock extends Clock {
  ms = Date.UTC(2026, 11, 2, 18, 0, 0);
  override now(): Date {
    return new Date(this.ms);
  }
  override nowMs(): number {
    return this.ms;
  }
}

const ALICE: RequestStateBinding = { userId: 'usr_alice', toolId: 'relay.ask-form', upstream: 'upstream:relay' };

function seal(key = 'k'.repeat(16) + 'another-sixteen!', clock = new ManualClock()): { seal: RequestStateSeal; clock: ManualClock } {
  return { seal: new RequestStateSeal({ secrets: { encryptionKey: key } } as never, clock), clock };
}

describe('RequestStateSeal', () => {
  it("gives back the upstream's state byte for byte, and none when the round had none", () => {
    const { seal: s } = seal();
    const state = 'state \u0000 with "quotes", ünïcode and 🙂';
    expect(s.open(ALICE, s.seal(ALICE, state))).toEqual({ upstreamState: state });
    expect(s.open(ALICE, s.seal(ALICE, undefined))).toEqual({ upstreamState: undefined });
  });

  it("hides the upstream's state and never seals the same state twice alike", () => {
    const { seal: s } = seal();
    const a = s.seal(ALICE, 'secret-upstream-state');
    const b = s.seal(ALICE, 'secret-upstream-state');
    expect(a).not.toBe(b);
    expect(Buffer.from(a.slice(3), 'base64url').toString('latin1')).not.toContain('secret-upstream-state');
  });

  it.each<[string, RequestStateBinding]>([
    ['another user', { ...ALICE, userId: 'usr_mallory' }],
    ['another tool', { ...ALICE, toolId: 'relay.ask-url' }],
    ['another upstream', { ...ALICE, upstream: 'upstream:other' }],
  ])('refuses a state presented by %s', (_who, binding) => {
    const { seal: s } = seal();
    expect(() => s.open(binding, s.seal(ALICE, 'x'))).toThrow();
  });

  it('refuses a state altered anywhere, one of another key, and one that is not ours at all', () => {
    const { seal: s } = seal();
    const sealed = s.seal(ALICE, 'x');
    // The last character may carry unused bits of base64url: everything before it.
    for (let i = 3; i < sealed.length - 1; i += 7) {
      const flipped = sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1);
      expect(() => s.open(ALICE, flipped)).toThrow();
    }
    expect(() => seal('another-key-of-32-characters-len').seal.open(ALICE, sealed)).toThrow();
    expect(() => s.open(ALICE, 'x')).toThrow();
    expect(() => s.open(ALICE, 'g1.')).toThrow();
  });

  it('refuses a state once it has expired', () => {
    const { seal: s, clock } = seal();
    const sealed = s.seal(ALICE, 'x');
    clock.ms += REQUEST_STATE_TTL_MS;
    expect(s.open(ALICE, sealed)).toEqual({ upstreamState: 'x' });
    clock.ms += 1;
    expect(() => s.open(ALICE, sealed)).toThrow('expired');
  });

  it('seals a held call (id, round, replica) for its binding, valid for the hold only', () => {
    const { seal: s, clock } = seal();
    const held = { id: 'call-1', round: 3, replica: 'replica-a' };
    const sealed = s.sealHeld(ALICE, held, 5_000);
    expect(s.open(ALICE, sealed)).toEqual({ upstreamState: undefined, held });
    expect(Buffer.from(sealed.slice(3), 'base64url').toString('latin1')).not.toContain('call-1');
    expect(() => s.open({ ...ALICE, userId: 'usr_mallory' }, sealed)).toThrow();
    clock.ms += 5_001;
    expect(() => s.open(ALICE, sealed)).toThrow('expired');
  });
});

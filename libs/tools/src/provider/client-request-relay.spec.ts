import { missingCapability, relayCapabilitiesOf } from './client-request-relay';

describe('missingCapability', () => {
  const sampling = { method: 'sampling/createMessage' as const, params: { messages: [], maxTokens: 1 } };
  const form = { method: 'elicitation/create' as const, params: { message: 'm', requestedSchema: { type: 'object' } } };
  const url = { method: 'elicitation/create' as const, params: { mode: 'url', message: 'm', url: 'https://x', elicitationId: 'e' } };
  const roots = { method: 'roots/list' as const };

  it('names the capability a request needs that the agent did not declare', () => {
    expect(missingCapability(sampling, {})).toBe('sampling');
    expect(missingCapability(roots, { sampling: {} })).toBe('roots');
    expect(missingCapability(form, { roots: {} })).toBe('elicitation');
    expect(missingCapability({ ...sampling, params: { ...sampling.params, tools: [] } }, { sampling: {} })).toBe('sampling.tools');
  });

  it('treats an empty elicitation capability as form mode only (the spec), URL mode only when declared', () => {
    expect(missingCapability(form, { elicitation: {} })).toBeNull();
    expect(missingCapability(url, { elicitation: {} })).toBe('elicitation.url');
    expect(missingCapability(url, { elicitation: { url: {} } })).toBeNull();
    expect(missingCapability(form, { elicitation: { url: {} } })).toBe('elicitation.form');
    expect(missingCapability(form, { elicitation: { form: {}, url: {} } })).toBeNull();
  });

  it('passes what was declared', () => {
    expect(missingCapability(sampling, { sampling: {} })).toBeNull();
    expect(missingCapability(roots, { roots: { listChanged: true } })).toBeNull();
  });
});

describe('relayCapabilitiesOf', () => {
  it('keeps sampling, elicitation and roots as declared, and nothing else', () => {
    expect(relayCapabilitiesOf({ sampling: { tools: {} }, roots: {}, experimental: { x: {} }, elicitation: null })).toEqual({
      sampling: { tools: {} },
      roots: {},
    });
    expect(relayCapabilitiesOf(undefined)).toEqual({});
    expect(relayCapabilitiesOf('nonsense')).toEqual({});
  });
});

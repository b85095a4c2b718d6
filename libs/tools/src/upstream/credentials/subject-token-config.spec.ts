import { parseUpstreamAuth, TokenExchangeAuth } from '../upstream-auth';

const exchange = (extra: Record<string, unknown>) => ({
  mode: 'token-exchange',
  tokenEndpoint: 'https://idp.example.com/token',
  clientId: 'gateway',
  clientSecret: { fromEnv: 'UPSTREAM_CRM_SECRET' },
  audience: 'api://crm',
  ...extra,
});

function parse(value: unknown): { auth: TokenExchangeAuth; problems: string[] } {
  const problems: string[] = [];
  const auth = parseUpstreamAuth(value, 'http', (problem) => problems.push(problem), { UPSTREAM_CRM_SECRET: 's3cret' });
  return { auth: auth as TokenExchangeAuth, problems };
}

describe('auth.subjectToken of token-exchange upstreams', () => {
  it('defaults to the JWT the gateway signs (today behaviour)', () => {
    const { auth, problems } = parse(exchange({}));
    expect(problems).toEqual([]);
    expect(auth.subjectToken).toBe('gateway');
  });

  it('takes caller-idp: the caller own IdP access token is the subject', () => {
    const { auth, problems } = parse(exchange({ subjectToken: 'caller-idp' }));
    expect(problems).toEqual([]);
    expect(auth.subjectToken).toBe('caller-idp');
  });

  it('refuses anything else at start (no passthrough mode exists)', () => {
    expect(parse(exchange({ subjectToken: 'passthrough' })).problems).toEqual(['auth.subjectToken must be "gateway" or "caller-idp"']);
  });
});

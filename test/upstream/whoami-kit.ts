import { join } from 'node:path';
import { ReferenceUpstream, startListeningScript } from './upstream-test-kit';

/** The whoami upstream (fixtures/whoami-upstream.cjs): reports the bearer token each request carried. */
export const WHOAMI = join(__dirname, 'fixtures', 'whoami-upstream.cjs');

/** The whoami upstream, accepting `tokens` (and, given a JWKS URL and an audience, the JWTs of that issuer). */
export function startWhoami(tokens: string[], jwt: string[] = []): Promise<ReferenceUpstream> {
  return startListeningScript(WHOAMI, [tokens.join(','), ...jwt]);
}

/** Every bearer token the upstream saw on a tools/call, prompts/get or resources/read, in order. */
export async function seenByUpstream(upstream: ReferenceUpstream): Promise<Array<string | null>> {
  return ((await (await fetch(upstream.url.replace(/\/mcp$/, '/seen'))).json()) as { seen: Array<string | null> }).seen;
}

/** An MCP_UPSTREAMS_FILE entry for a whoami upstream; the catalogue connection lists with the secret in `listingEnv`. */
export function whoamiEntry(listingEnv: string) {
  return (name: string, url: string, extra: Record<string, unknown>) => ({
    name,
    transport: 'http',
    url,
    headers: { Authorization: { fromEnv: listingEnv, prefix: 'Bearer ' } },
    category: 'system',
    permissions: ['tools:execute'],
    rateLimit: { requests: 10_000, window: '1m' },
    ...extra,
  });
}

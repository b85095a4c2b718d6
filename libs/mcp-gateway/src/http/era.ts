import { PROTOCOL_VERSION_META_KEY } from '@modelcontextprotocol/server';

/**
 * True when the SDK's isLegacyRequest would certainly answer false for this parsed POST body,
 * decided without running its classifier (zod checks of the whole message, which then runs
 * again inside the handler: 2.4% of a tools/call's CPU). The body is one JSON-RPC message (not a
 * batch, not a posted response) other than `initialize` whose params carry the 2026-07-28
 * envelope claim (`_meta` holds the protocol-version key): the SDK routes such a message to the
 * modern handler, which serves it or answers its ladder errors. Anything else: ask the SDK.
 */
export function carriesModernClaim(body: unknown): boolean {
  if (!isObject(body) || 'result' in body || 'error' in body || body.method === 'initialize') return false;
  const params = body.params;
  if (!isObject(params)) return false;
  const meta = params._meta;
  return isObject(meta) && PROTOCOL_VERSION_META_KEY in meta;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * How an upstream's prompts, resources and resource templates are named to agents (the
 * documented naming rule; README "Federated prompts and resources"):
 *
 * - A prompt is named like a federated tool: the upstream's `idPrefix` + the upstream's prompt
 *   name (`everything.` + `simple-prompt`). Prefixes are per upstream, so two upstreams' names
 *   cannot meet unless an administrator gave them the same prefix.
 * - A resource URI of an upstream with an empty `idPrefix` is passed through unchanged.
 *   Otherwise it is rewritten to `mcp-upstream://<upstream name>/<original URI>`: the original
 *   follows the upstream's name verbatim, so the rewrite is reversible by removing the head, and
 *   the upstream's name (unique among upstreams) says whose it is. A resource template's
 *   `uriTemplate` gets the same head, so every URI it expands to is a rewritten URI of the same
 *   upstream and maps back the same way.
 * - An empty-prefix upstream's own URI that starts with `mcp-upstream://` would be ambiguous: it
 *   is not federated (the provider logs it).
 */
export const FEDERATED_URI_SCHEME = 'mcp-upstream';
const HEAD = `${FEDERATED_URI_SCHEME}://`;

/** The name agents see for an upstream's prompt. */
export function federatedPromptName(idPrefix: string, upstreamName: string): string {
  return `${idPrefix}${upstreamName}`;
}

/** Whether an upstream with this prefix has its URIs rewritten (an empty prefix: passed through). */
export function rewritesUris(idPrefix: string): boolean {
  return idPrefix !== '';
}

/** The URI (or URI template) agents see for an upstream's resource. */
export function federatedUri(upstream: string, idPrefix: string, uri: string): string {
  return rewritesUris(idPrefix) ? `${HEAD}${upstream}/${uri}` : uri;
}

/** Whether a URI is in the gateway's own scheme (and so never an empty-prefix upstream's own). */
export function isFederatedUri(uri: string): boolean {
  return uri.slice(0, HEAD.length).toLowerCase() === HEAD;
}

/**
 * The upstream and original URI a rewritten URI names; null for a URI that is not in the
 * gateway's scheme (it belongs to an empty-prefix upstream, if any) or names no upstream.
 */
export function parseFederatedUri(uri: string): { upstream: string; uri: string } | null {
  if (!isFederatedUri(uri)) return null;
  const rest = uri.slice(HEAD.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const original = rest.slice(slash + 1);
  if (original === '') return null;
  return { upstream: rest.slice(0, slash), uri: original };
}

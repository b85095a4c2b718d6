import { alert, escapeHtml, page } from './html';

export interface ClientView {
  id: string;
  name: string | undefined;
}

/** Another way to sign in (an enterprise identity provider), offered under the password form. */
export interface SignInOption {
  name: string;
  displayName: string;
}

export interface SignInPageInput {
  uid: string;
  csrf: string;
  client: ClientView;
  email?: string;
  error?: string;
  /** "Sign in with <provider>" buttons (enterprise identity providers). */
  options?: readonly SignInOption[];
}

function clientLine(client: ClientView): string {
  const name = client.name
    ? `<strong>${escapeHtml(client.name)}</strong> (client ID <code>${escapeHtml(client.id)}</code>)`
    : `the client <code>${escapeHtml(client.id)}</code>`;
  return `<p>Sign in to let ${name} use the Secure MCP Server on your behalf.</p>\n`;
}

function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

export function signInPage(input: SignInPageInput): string {
  const described = input.error ? ' aria-describedby="form-error"' : '';
  const options = input.options ?? [];
  const others =
    options.length === 0
      ? ''
      : `<section aria-labelledby="other-sign-in">
<h2 id="other-sign-in">Or sign in with your organisation</h2>
<form method="post" action="/oauth/interaction/${escapeHtml(input.uid)}/idp">
${hidden('csrf', input.csrf)}
${options.map((option) => `<p><button type="submit" name="provider" value="${escapeHtml(option.name)}">Sign in with ${escapeHtml(option.displayName)}</button></p>`).join('\n')}
</form>
</section>
`;
  return page(
    'Sign in',
    `${clientLine(input.client)}${alert(input.error)}<form method="post" action="/oauth/interaction/${escapeHtml(input.uid)}/login">
${hidden('csrf', input.csrf)}
<p><label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required maxlength="254" value="${escapeHtml(input.email ?? '')}"${described}></p>
<p><label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"${described}></p>
<p><button type="submit">Sign in</button></p>
</form>
${others}`,
  );
}

export interface SecondFactorPageInput {
  uid: string;
  csrf: string;
  ticket: string;
  client: ClientView;
  error?: string;
}

export function secondFactorPage(input: SecondFactorPageInput): string {
  const described = input.error ? 'form-error code-help' : 'code-help';
  return page(
    'Two-step verification',
    `${clientLine(input.client)}${alert(input.error)}<form method="post" action="/oauth/interaction/${escapeHtml(input.uid)}/login">
${hidden('csrf', input.csrf)}
${hidden('ticket', input.ticket)}
<p><label for="code">Verification code</label>
<input id="code" name="code" type="text" inputmode="text" autocomplete="one-time-code" required maxlength="9" pattern="[0-9]{6}|[a-z0-9]{4}-[a-z0-9]{4}" aria-describedby="${described}"></p>
<p id="code-help">The 6-digit code from your authenticator app or the text message we sent, or one of your backup codes (like abcd-1234).</p>
<p><button type="submit">Verify</button></p>
</form>
`,
  );
}

export interface ConsentPageInput {
  uid: string;
  csrf: string;
  client: ClientView;
  userEmail: string;
  scopes: ReadonlyArray<{ name: string; description: string }>;
  resources: readonly string[];
}

export function consentPage(input: ConsentPageInput): string {
  const scopes =
    input.scopes.length === 0
      ? '<p>No permissions beyond knowing that you signed in.</p>'
      : `<ul>\n${input.scopes.map((scope) => `<li><code>${escapeHtml(scope.name)}</code>: ${escapeHtml(scope.description)}</li>`).join('\n')}\n</ul>`;
  const resources =
    input.resources.length === 0
      ? '<p>No MCP endpoint named.</p>'
      : `<ul>\n${input.resources.map((resource) => `<li><code>${escapeHtml(resource)}</code></li>`).join('\n')}\n</ul>`;
  const clientName = input.client.name ?? input.client.id;
  return page(
    'Allow access?',
    `<p>You are signed in as <strong>${escapeHtml(input.userEmail)}</strong>.</p>
<p><strong>${escapeHtml(clientName)}</strong> (client ID <code>${escapeHtml(input.client.id)}</code>) asks for:</p>
<section aria-labelledby="scopes-heading">
<h2 id="scopes-heading">Permissions</h2>
${scopes}
</section>
<section aria-labelledby="resources-heading">
<h2 id="resources-heading">On</h2>
${resources}
</section>
<p>You can revoke this access at any time (your OAuth grants: <code>GET /api/v1/auth/oauth/grants</code>).</p>
<form method="post" action="/oauth/interaction/${escapeHtml(input.uid)}/consent">
${hidden('csrf', input.csrf)}
<p><button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></p>
</form>
`,
  );
}

export function errorPage(title: string, message: string): string {
  return page(title, `<p role="alert">${escapeHtml(message)}</p>\n<p>Return to your application and start again.</p>\n`);
}

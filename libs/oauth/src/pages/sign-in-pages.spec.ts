import { consentPage, signInPage } from './sign-in-pages';

describe('sign-in and consent pages', () => {
  const client = { id: 'https://app.example/<client>', name: '<b>Evil</b> "App"' };

  it('escapes what clients and users choose, and carry neither script nor style', () => {
    const pages = [
      signInPage({ uid: 'u1', csrf: 'c"1', client, email: '"><script>alert(1)</script>', error: '<i>no</i>' }),
      consentPage({
        uid: 'u1',
        csrf: 'c1',
        client,
        userEmail: 'a@b.c',
        scopes: [{ name: 'mcp:tools', description: 'x' }],
        resources: ['https://gw/<r>'],
      }),
    ];
    for (const html of pages) {
      expect(html).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
      expect(html).not.toContain('<b>Evil</b>');
      expect(html).toContain('&lt;b&gt;Evil&lt;/b&gt; &quot;App&quot;');
      expect(html).toContain('<html lang="en">');
      expect(html.match(/<h1>/g)).toHaveLength(1);
    }
    expect(pages[0]).toContain('value="c&quot;1"');
    expect(pages[0]).toContain('<label for="email">');
    expect(pages[0]).toContain('role="alert"');
  });

  it('offers each identity provider as a button of a form bound to the interaction (its anti-forgery value)', () => {
    const html = signInPage({ uid: 'u', csrf: 'c', client, options: [{ name: 'okta', displayName: 'Okta <SSO>' }] });
    expect(html).toContain('<form method="post" action="/oauth/interaction/u/idp">');
    expect(html.match(/<input type="hidden" name="csrf" value="c">/g)).toHaveLength(2);
    expect(html).toContain('<button type="submit" name="provider" value="okta">Sign in with Okta &lt;SSO&gt;</button>');
    expect(signInPage({ uid: 'u', csrf: 'c', client })).not.toContain('Or sign in with');
  });
});

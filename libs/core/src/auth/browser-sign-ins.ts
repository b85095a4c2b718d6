import { Injectable } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The first-party client the gateway's own pages sign browsers in with (never issued tokens anyone uses). */
export const PAGES_CLIENT_ID = 'secure-mcp-gateway-pages';
/** Where the authorization server sends a browser back to after it signed in for the gateway's pages. */
export const PAGES_SIGNED_IN_PATH = '/connect/signed-in';

/**
 * Who a browser is signed in as on the gateway's own web sign-in (the OAuth sign-in pages and
 * their session cookie), for pages the gateway serves outside the OAuth flow of an MCP host (the
 * upstream connect pages). Implemented by the OAuth authorization server.
 */
export interface BrowserSignIn {
  /** The gateway's public origin (the OAuth issuer), without a trailing "/". */
  baseUrl(): string;
  /** The user id of the browser's sign-in session (its cookie), or undefined when it has none. */
  signedInUser(request: IncomingMessage, response: ServerResponse): Promise<string | undefined>;
  /**
   * Where to send a browser that must sign in first: the authorization endpoint for the pages'
   * client, which shows the sign-in page and comes back to PAGES_SIGNED_IN_PATH with `state`.
   */
  signInUrl(state: string, codeChallenge: string): string;
}

/** The registry through which the OAuth lib offers BrowserSignIn without the tools lib importing it. Unset when OAuth is off. */
@Injectable()
export class BrowserSignIns {
  private signIn: BrowserSignIn | undefined;

  register(signIn: BrowserSignIn): void {
    if (this.signIn) throw new Error('browser sign-in registered twice');
    this.signIn = signIn;
  }

  get registered(): BrowserSignIn | undefined {
    return this.signIn;
  }
}

import { Injectable } from '@nestjs/common';

/**
 * What the OAuth authorization server offers a sign-in finished elsewhere (through an enterprise
 * identity provider): whether an interaction is still waiting for its sign-in, finishing it as an
 * account, and its error page. The IdP callback uses it for a sign-in started on our OAuth
 * sign-in page (the state it sealed names the interaction).
 */
export interface PendingInteractions {
  /** True when `uid` is an interaction waiting for a sign-in (its login step, not yet finished). */
  waitingForSignIn(uid: string): Promise<boolean>;
  /** Finishes the interaction's sign-in as `accountId` (`amr` per RFC 8176); the URL the browser continues at. */
  finishSignIn(uid: string, accountId: string, amr: readonly string[]): Promise<string>;
  /** The sign-in pages' error page (HTML). */
  errorPage(title: string, message: string): string;
}

/**
 * The registry through which the OAuth authorization server hands its interactions to the
 * identity providers' callback without either lib importing the other (as BearerTokenVerifiers
 * does for bearer tokens). Unset when the authorization server is off.
 */
@Injectable()
export class InteractionSignIns {
  private pending: PendingInteractions | undefined;

  register(pending: PendingInteractions): void {
    if (this.pending) throw new Error('pending interactions registered twice');
    this.pending = pending;
  }

  get registered(): PendingInteractions | undefined {
    return this.pending;
  }
}

import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { AuthService, RequestRateLimiter } from '@app/auth';
import { APP_CONFIG, AppConfig, AppException, clientInfo, Clock, ErrorCode, PendingInteractions } from '@app/core';
import { IdentityErrorCode, InteractionIdpSignIn } from '@app/identity';
import { UsersService } from '@app/users';
import { OAuthGrantsService } from '../grants/oauth-grants.service';
import { SCOPE_DESCRIPTIONS } from '../oauth-scopes';
import { OAuthProvider, OidcProvider } from '../provider/oauth-provider';
import { FormTokens } from './form-tokens';
import { PAGE_CSP } from './html';
import { ClientView, consentPage, errorPage, secondFactorPage, SignInPageInput, signInPage } from './sign-in-pages';

/** How long the second-factor step of one sign-in stays open after the password. */
const MFA_STEP_MS = 5 * 60_000;
/** Largest form body accepted. */
const MAX_FORM_BYTES = 16 * 1024;

/* The provider's interaction object is untyped JavaScript. */
type Interaction = any;

/**
 * The sign-in and consent pages (the provider's interactions): server-rendered HTML without any
 * script or style, under a strict CSP, with forms bound to their interaction (FormTokens) and to
 * the browser (the provider's SameSite cookie). Password and second factor go through AuthService
 * exactly as POST /auth/login does (same refusals, lockout, MFA by TOTP, SMS or backup code).
 */
@Injectable()
export class InteractionPages {
  private readonly logger = new Logger(InteractionPages.name);
  private readonly tokens: FormTokens;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly oauth: OAuthProvider,
    private readonly auth: AuthService,
    private readonly users: UsersService,
    private readonly grants: OAuthGrantsService,
    private readonly limiter: RequestRateLimiter,
    private readonly clock: Clock,
    private readonly idp: InteractionIdpSignIn,
  ) {
    this.tokens = new FormTokens(config.secrets.encryptionKey);
  }

  /** GET /oauth/interaction/:uid — the page the provider's interaction needs now. */
  async show(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const found = await this.interaction(request, reply);
    if (!found) return;
    const { provider, interaction } = found;
    const client = await this.clientOf(provider, interaction);
    const csrf = this.tokens.csrf(interaction.uid);
    if (interaction.prompt.name === 'login') return this.html(reply, 200, this.signInPage({ uid: interaction.uid, csrf, client }));
    if (interaction.prompt.name === 'consent') return this.html(reply, 200, await this.consent(interaction, client, csrf));
    return this.html(reply, 400, errorPage('Cannot continue', 'This sign-in step is not supported'));
  }

  /** POST /oauth/interaction/:uid/login — the password, then (for accounts with MFA) the second factor. */
  async login(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const form = await readForm(request.raw);
    const found = await this.interaction(request, reply, form);
    if (!found) return;
    const { provider, interaction } = found;
    if (interaction.prompt.name !== 'login') return this.html(reply, 400, errorPage('Cannot continue', 'You are already signed in'));
    const client = await this.clientOf(provider, interaction);
    const csrf = this.tokens.csrf(interaction.uid);
    const actor = clientInfo(request);
    try {
      await this.limiter.consume('auth', RequestRateLimiter.trackerOf(undefined, request.ip));
    } catch (error) {
      if (error instanceof AppException && error.getStatus() === 429) {
        for (const [name, value] of Object.entries(error.headers)) void reply.header(name, value);
        return this.html(
          reply,
          429,
          errorPage('Too many attempts', 'Too many sign-in attempts from your address: wait a moment and try again'),
        );
      }
      throw error;
    }

    if (form.has('ticket')) {
      const userId = this.tokens.openMfaTicket(interaction.uid, form.get('ticket'), this.clock.nowMs());
      if (!userId) return this.html(reply, 400, errorPage('Sign-in expired', 'The verification step has expired'));
      if (await this.auth.verifySignInCode(userId, (form.get('code') ?? '').trim(), actor)) {
        return this.finishLogin(provider, request, reply, userId, ['pwd', 'mfa']);
      }
      const ticket = form.get('ticket') as string;
      return this.html(reply, 401, secondFactorPage({ uid: interaction.uid, csrf, ticket, client, error: 'That code is not valid' }));
    }

    const email = (form.get('email') ?? '').slice(0, 254);
    let outcome: { userId: string; mfaRequired: boolean };
    try {
      outcome = await this.auth.verifySignInPassword(email, form.get('password') ?? '', actor);
    } catch (error) {
      if (error instanceof AppException && error.getStatus() === 401) {
        return this.html(reply, 401, this.signInPage({ uid: interaction.uid, csrf, client, email, error: 'Invalid email or password' }));
      }
      throw error;
    }
    if (!outcome.mfaRequired) return this.finishLogin(provider, request, reply, outcome.userId, ['pwd']);
    const ticket = this.tokens.mfaTicket(interaction.uid, outcome.userId, this.clock.nowMs() + MFA_STEP_MS);
    return this.html(reply, 200, secondFactorPage({ uid: interaction.uid, csrf, ticket, client }));
  }

  /**
   * POST /oauth/interaction/:uid/idp — "Sign in with <provider>": starts that identity provider's
   * sign-in bound to this interaction (sealed in its state cookie, in this browser); the IdP's
   * callback finishes the interaction's login and sends the browser on to consent.
   */
  async federated(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const form = await readForm(request.raw);
    const found = await this.interaction(request, reply, form);
    if (!found) return;
    const { interaction } = found;
    if (interaction.prompt.name !== 'login') return this.html(reply, 400, errorPage('Cannot continue', 'You are already signed in'));
    const name = form.get('provider') ?? '';
    if (!this.idp.options.some((option) => option.name === name)) {
      return this.html(reply, 404, errorPage('Cannot continue', 'No such identity provider is configured for sign-in'));
    }
    let url: string;
    try {
      url = await this.idp.start(name, interaction.uid, request, reply);
    } catch (error) {
      if (!(error instanceof AppException)) throw error;
      return this.html(reply, error.getStatus(), errorPage('Cannot continue', error.message));
    }
    await reply.code(303).header('location', url).header('cache-control', 'no-store').send();
  }

  /** The interactions the IdP callback may finish (see PendingInteractions). */
  get pending(): PendingInteractions {
    return {
      waitingForSignIn: async (uid) => (await this.waitingInteraction(uid)) !== undefined,
      finishSignIn: async (uid, accountId, amr) => {
        const interaction = await this.waitingInteraction(uid);
        if (!interaction) throw new AppException(IdentityErrorCode.SIGN_IN_FAILED, 'This sign-in has expired or is already finished', 401);
        interaction.result = { login: { accountId, amr: [...amr] } };
        await interaction.save(interaction.remainingTTL);
        return interaction.returnTo as string;
      },
      errorPage,
    };
  }

  /** The interaction `uid` while it waits for its sign-in: unexpired, at its login step, no result yet. */
  private async waitingInteraction(uid: string): Promise<Interaction | undefined> {
    const provider = await this.oauth.get();
    const interaction = await provider.Interaction.find(uid);
    if (!interaction || interaction.isExpired || interaction.result || interaction.prompt?.name !== 'login') return undefined;
    return interaction;
  }

  /** POST /oauth/interaction/:uid/consent — allow (a grant, remembered) or deny. */
  async decide(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const form = await readForm(request.raw);
    const found = await this.interaction(request, reply, form);
    if (!found) return;
    const { provider, interaction } = found;
    if (interaction.prompt.name !== 'consent') return this.html(reply, 400, errorPage('Cannot continue', 'Nothing to consent to'));
    const accountId: string = interaction.session.accountId;
    const clientId: string = interaction.params.client_id;
    const actor = clientInfo(request);
    if (form.get('decision') !== 'allow') {
      await this.grants.recordDenial(accountId, clientId, actor);
      return this.redirect(provider, request, reply, { error: 'access_denied', error_description: 'The user denied the request' }, false);
    }
    const details = interaction.prompt.details ?? {};
    let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
    grant ??= new provider.Grant({ accountId, clientId });
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    const resources = Object.entries((details.missingResourceScopes ?? {}) as Record<string, string[]>);
    for (const [indicator, scopes] of resources) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId: string = await grant.save();
    const client = await this.clientOf(provider, interaction);
    await this.grants.recordConsent(
      {
        grantId,
        userId: accountId,
        clientId,
        clientName: client.name ?? null,
        scopes: requestedScopes(interaction),
        resources: requestedResources(interaction),
      },
      actor,
    );
    return this.redirect(provider, request, reply, { consent: { grantId } }, true);
  }

  private signInPage(input: SignInPageInput): string {
    return signInPage({ ...input, options: this.idp.options });
  }

  private async consent(interaction: Interaction, client: ClientView, csrf: string): Promise<string> {
    const user = await this.users.findById(interaction.session.accountId);
    return consentPage({
      uid: interaction.uid,
      csrf,
      client,
      userEmail: user?.email ?? '',
      scopes: requestedScopes(interaction)
        .filter((scope) => scope !== 'openid')
        .map((name) => ({ name, description: SCOPE_DESCRIPTIONS[name] ?? 'A scope this server does not know: it grants nothing' })),
      resources: requestedResources(interaction),
    });
  }

  /**
   * The provider's interaction for this browser (its cookie), which must be the one in the URL;
   * for a form, its anti-forgery value must match. Answers the error page itself otherwise.
   */
  private async interaction(
    request: FastifyRequest,
    reply: FastifyReply,
    form?: URLSearchParams,
  ): Promise<{ provider: OidcProvider; interaction: Interaction } | undefined> {
    const uid = (request.params as { uid?: string }).uid ?? '';
    const provider = await this.oauth.get();
    let interaction: Interaction;
    try {
      interaction = await provider.interactionDetails(request.raw, reply.raw);
    } catch (error) {
      this.logger.debug({ err: error }, 'OAuth interaction not found');
      this.html(reply, 400, errorPage('Sign-in expired', 'This sign-in page has expired or was opened in another browser'));
      return undefined;
    }
    if (interaction.uid !== uid) {
      this.html(reply, 400, errorPage('Sign-in expired', 'This sign-in page does not belong to your current sign-in'));
      return undefined;
    }
    if (form && !this.tokens.checkCsrf(uid, form.get('csrf'))) {
      this.html(reply, 403, errorPage('Request refused', 'The form could not be verified: reload the page and try again'));
      return undefined;
    }
    return { provider, interaction };
  }

  private async finishLogin(provider: OidcProvider, request: FastifyRequest, reply: FastifyReply, accountId: string, amr: string[]) {
    return this.redirect(provider, request, reply, { login: { accountId, amr } }, false);
  }

  private async redirect(
    provider: OidcProvider,
    request: FastifyRequest,
    reply: FastifyReply,
    result: object,
    merge: boolean,
  ): Promise<void> {
    const returnTo: string = await provider.interactionResult(request.raw, reply.raw, result, { mergeWithLastSubmission: merge });
    await reply.code(303).header('location', returnTo).header('cache-control', 'no-store').send();
  }

  private async clientOf(provider: OidcProvider, interaction: Interaction): Promise<ClientView> {
    const client = await provider.Client.find(interaction.params.client_id);
    return { id: interaction.params.client_id, name: client?.clientName };
  }

  private html(reply: FastifyReply, status: number, body: string): void {
    void reply
      .code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', PAGE_CSP)
      .header('cache-control', 'no-store')
      .header('x-frame-options', 'DENY')
      .send(body);
  }
}

function requestedScopes(interaction: Interaction): string[] {
  const scope: unknown = interaction.params.scope;
  return typeof scope === 'string' ? [...new Set(scope.split(' ').filter(Boolean))] : [];
}

function requestedResources(interaction: Interaction): string[] {
  const resource: unknown = interaction.params.resource;
  if (Array.isArray(resource)) return resource.filter((value): value is string => typeof value === 'string');
  return typeof resource === 'string' ? [resource] : [];
}

/** The urlencoded form body (read here: the routes' scope keeps bodies unparsed for the provider). */
async function readForm(raw: IncomingMessage): Promise<URLSearchParams> {
  const type = String(raw.headers['content-type'] ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of raw) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) throw new AppException(ErrorCode.PAYLOAD_TOO_LARGE, 'Form too large', 413);
    chunks.push(chunk as Buffer);
  }
  if (type !== 'application/x-www-form-urlencoded') return new URLSearchParams();
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

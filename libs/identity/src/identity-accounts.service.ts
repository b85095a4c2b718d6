import { randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { PasswordService } from '@app/auth';
import { Actor, Clock, IdentityProviderConfig, Role } from '@app/core';
import type { Transaction } from '@app/database';
import { User, UsersService } from '@app/users';
import { displayNameOf, domainOf, emailOf, IdpClaims, isEmailVerified, mappedAccess, subjectOf } from './claims-mapping';
import { IdentityLinkRepository } from './identity-link.repository';
import { IdentityProviders } from './identity-providers';
import { IdentityErrorCode, IdentityRefusal } from './identity.errors';

/** What resolving an IdP identity did to the account (all in the caller's transaction). */
export interface ResolvedIdentity {
  user: User;
  created: boolean;
  linked: boolean;
  /** Whether roles or permissions changed (invalidate the user's cached state after commit). */
  accessChanged: boolean;
}

export interface ResolveOptions {
  /** Re-evaluate roles and permissions from the claims (sign-in: always; a token: when it carries the roles claim). */
  syncAccess: boolean;
}

/**
 * The linking rules, in one place, for sign-ins and for the IdP's access tokens:
 * - an identity is found by (issuer, subject) only, never by email;
 * - an unknown identity is linked to an existing account with its email only when the IdP asserts
 *   `email_verified: true` AND the provider is trusted for the email's domain (IDP_<NAME>_TRUSTED_DOMAINS),
 *   and the account has no other identity of that issuer;
 * - an account is created just in time only for a verified email in an allowed domain (so nobody
 *   can reserve an email that a later, legitimate identity would be linked to);
 * - roles and permissions come from the claims through the provider's mapping, re-evaluated each
 *   time, and each change is audited.
 */
@Injectable()
export class IdentityAccounts {
  constructor(
    private readonly links: IdentityLinkRepository,
    private readonly users: UsersService,
    private readonly passwords: PasswordService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly providers: IdentityProviders,
  ) {}

  async resolve(
    tx: Transaction,
    provider: IdentityProviderConfig,
    claims: IdpClaims,
    actor: Actor,
    options: ResolveOptions,
  ): Promise<ResolvedIdentity> {
    const subject = subjectOf(claims);
    if (!subject) throw refusal('no_subject', IdentityErrorCode.EMAIL_NOT_ACCEPTED, 'The identity provider asserted no subject', 401);
    const email = emailOf(claims);
    if (email && provider.emailDomains.length > 0 && !provider.emailDomains.includes(domainOf(email))) {
      throw refusal(
        'domain_not_allowed',
        IdentityErrorCode.EMAIL_NOT_ACCEPTED,
        `Accounts of ${domainOf(email)} may not sign in through ${provider.displayName}`,
        403,
      );
    }
    const required = email ? this.providers.requiredFor(domainOf(email)) : undefined;
    if (required && required.name !== provider.name) {
      throw refusal(
        'domain_requires_other_provider',
        IdentityErrorCode.EMAIL_NOT_ACCEPTED,
        `Accounts of ${domainOf(email!)} sign in through ${required.displayName}`,
        403,
      );
    }
    const now = this.clock.now();
    const link = await this.links.find(provider.issuer, subject, tx);
    let user: User | null;
    let created = false;
    let linked = false;
    if (link) {
      user = await this.users.lockById(tx, link.userId);
      await this.links.recordSignIn(tx, provider.issuer, subject, email ?? link.email, now);
    } else {
      if (!email || !isEmailVerified(claims, provider.emailVerifiedClaim)) {
        throw refusal(
          email ? 'email_not_verified' : 'no_email',
          email ? IdentityErrorCode.LINK_REFUSED : IdentityErrorCode.EMAIL_NOT_ACCEPTED,
          email
            ? `${provider.displayName} does not assert this email verified: it cannot be linked to an account or create one`
            : `${provider.displayName} asserted no email: an unlinked identity cannot be given an account`,
          email ? 409 : 403,
        );
      }
      const existing = await this.users.findByEmail(email, tx);
      if (existing) {
        user = await this.link(tx, provider, existing, subject, email, actor, now);
        linked = true;
      } else {
        user = await this.create(tx, provider, claims, subject, email, actor, now);
        created = true;
      }
    }
    if (!user || user.status !== 'active') {
      throw refusal('account_inactive', IdentityErrorCode.ACCOUNT_INACTIVE, 'The account is suspended or deleted', 403);
    }
    const accessChanged = options.syncAccess && !created ? await this.syncAccess(tx, provider, user, claims, actor, now) : false;
    if (accessChanged) user = (await this.users.findById(user.id, tx)) ?? user;
    return { user, created, linked, accessChanged };
  }

  private async link(
    tx: Transaction,
    provider: IdentityProviderConfig,
    existing: User,
    subject: string,
    email: string,
    actor: Actor,
    now: Date,
  ): Promise<User | null> {
    const domain = domainOf(email);
    if (!provider.trustedDomains.includes(domain)) {
      throw refusal(
        'link_untrusted_domain',
        IdentityErrorCode.LINK_REFUSED,
        `An account with this email exists, and ${provider.displayName} is not trusted to link accounts of ${domain}; an administrator must link it`,
        409,
      );
    }
    const user = await this.users.lockById(tx, existing.id);
    if (await this.links.findForUser(existing.id, provider.issuer, tx)) {
      throw refusal(
        'already_linked',
        IdentityErrorCode.ALREADY_LINKED,
        `The account is already linked to another ${provider.displayName} identity`,
        409,
      );
    }
    if (
      !(await this.links.insert(tx, {
        issuer: provider.issuer,
        subject,
        userId: existing.id,
        provider: provider.name,
        email,
        linkedAt: now,
      }))
    ) {
      throw refusal(
        'already_linked',
        IdentityErrorCode.ALREADY_LINKED,
        `The account is already linked to another ${provider.displayName} identity`,
        409,
      );
    }
    await this.audit.record(
      tx,
      auditEvent(AuditAction.AUTH_IDP_LINKED, actor, {
        userId: existing.id,
        resource: `user:${existing.id}`,
        details: { provider: provider.name, issuer: provider.issuer, subject, email },
      }),
    );
    return user;
  }

  private async create(
    tx: Transaction,
    provider: IdentityProviderConfig,
    claims: IdpClaims,
    subject: string,
    email: string,
    actor: Actor,
    now: Date,
  ): Promise<User> {
    if (!provider.jit)
      throw refusal(
        'no_account',
        IdentityErrorCode.NO_ACCOUNT,
        `No account for this ${provider.displayName} identity; ask an administrator`,
        403,
      );
    // A domain some provider is trusted for gets its accounts only through such a provider: another
    // IdP (a consumer one that also verifies corporate addresses) must not create an account that
    // the domain's own IdP would later be linked to.
    const owners = this.providers.all.filter((candidate) => candidate.trustedDomains.includes(domainOf(email)));
    if (owners.length > 0 && !owners.includes(provider)) {
      throw refusal(
        'domain_owned_elsewhere',
        IdentityErrorCode.EMAIL_NOT_ACCEPTED,
        `Accounts of ${domainOf(email)} sign in through ${owners[0].displayName}`,
        403,
      );
    }
    const access = mappedAccess(provider, claims);
    // No password anyone knows: the account signs in through the IdP (a random secret's hash).
    const passwordHash = await this.passwords.hash(randomBytes(32).toString('base64url'));
    const user = await this.users.create(tx, { email, name: displayNameOf(claims, email), passwordHash, roles: access.roles, now });
    if (access.permissions.length > 0) await this.users.updateAccess(tx, user.id, access.roles, access.permissions, now);
    if (
      !(await this.links.insert(tx, { issuer: provider.issuer, subject, userId: user.id, provider: provider.name, email, linkedAt: now }))
    ) {
      throw refusal('already_linked', IdentityErrorCode.ALREADY_LINKED, 'This identity was linked concurrently; sign in again', 409);
    }
    await this.audit.record(
      tx,
      auditEvent(AuditAction.AUTH_IDP_ACCOUNT_CREATED, actor, {
        userId: user.id,
        resource: `user:${user.id}`,
        details: { provider: provider.name, issuer: provider.issuer, subject, email, roles: access.roles, permissions: access.permissions },
      }),
    );
    return { ...user, permissions: access.permissions };
  }

  /** Roles and permissions as the claims map them now; a change is written and audited. */
  private async syncAccess(
    tx: Transaction,
    provider: IdentityProviderConfig,
    user: User,
    claims: IdpClaims,
    actor: Actor,
    now: Date,
  ): Promise<boolean> {
    const access = mappedAccess(provider, claims);
    if (sameList(access.roles, user.roles) && sameList(access.permissions, user.permissions)) return false;
    await this.users.updateAccess(tx, user.id, access.roles, access.permissions, now);
    await this.audit.record(
      tx,
      auditEvent(AuditAction.AUTH_IDP_ROLES_CHANGED, actor, {
        userId: user.id,
        resource: `user:${user.id}`,
        details: {
          provider: provider.name,
          from: { roles: user.roles, permissions: user.permissions },
          to: { roles: access.roles, permissions: access.permissions },
        },
      }),
    );
    return true;
  }
}

function refusal(reason: string, code: string, message: string, status: number): IdentityRefusal {
  return new IdentityRefusal(reason, code, message, status);
}

function sameList(a: readonly (string | Role)[], b: readonly (string | Role)[]): boolean {
  const sortedB = [...b].sort();
  return a.length === b.length && [...a].sort().every((value, i) => value === sortedB[i]);
}

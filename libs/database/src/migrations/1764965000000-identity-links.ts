import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Enterprise identity providers: which IdP identity (issuer + subject, the only stable pair an
 * OpenID provider promises) belongs to which account. Sign-ins and the IdP's access tokens are
 * keyed on it, never on an email. One identity per provider per account (a second subject of the
 * same issuer cannot be attached to an account that already has one).
 */
export class IdentityLinks1764965000000 implements MigrationInterface {
  name = 'IdentityLinks1764965000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE identity_links (
      issuer text NOT NULL,
      subject text NOT NULL,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      provider text NOT NULL,
      email text,
      linked_at timestamptz NOT NULL DEFAULT now(),
      last_sign_in_at timestamptz,
      PRIMARY KEY (issuer, subject)
    )`);
    await q.query(`CREATE UNIQUE INDEX identity_links_user_issuer_key ON identity_links (user_id, issuer)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE identity_links`);
  }
}

import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import * as bcrypt from 'bcrypt';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { APP_CONFIG, AppConfig, AppException, WorkLimit } from '@app/core';
import { passwordProblems } from './password-policy';

/** Hashing and checking passwords with bcrypt at the configured cost. */
@Injectable()
export class PasswordService implements OnModuleInit {
  /**
   * A hash of a random password at the same cost: logins for unknown emails are compared
   * against it, so they take as long as a wrong password for a real account.
   */
  private dummyHash: Promise<string> | undefined;
  /**
   * bcrypt runs on libuv's pool (four threads by default). More hashes at once than there are
   * cores add no logins per second, they only crowd the event loop off the CPU (every other
   * request slows down during a login storm), so at most one per core runs at a time.
   */
  private readonly hashing = new WorkLimit(Math.max(1, availableParallelism()));

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Starts the dummy hash without waiting for it: one bcrypt hash is a visible part of a cold start. */
  onModuleInit(): void {
    this.ensureDummy().catch(() => undefined);
  }

  /** Throws a 400 listing every rule the password breaks. */
  assertAcceptable(password: string, field = 'password'): void {
    const problems = passwordProblems(password);
    if (problems.length > 0) {
      throw AppException.validation(problems.map((message) => ({ field, message, code: 'acceptablePassword' })));
    }
  }

  hash(password: string): Promise<string> {
    return this.hashing.run(() => bcrypt.hash(password, this.config.auth.bcryptCost));
  }

  /** Compares against the stored hash, or the dummy hash when there is no account (same cost either way). */
  async verify(password: string, hash: string | null | undefined): Promise<boolean> {
    const target = hash ?? (await this.ensureDummy());
    const matches = await this.hashing.run(() => bcrypt.compare(password, target));
    return matches && Boolean(hash);
  }

  private ensureDummy(): Promise<string> {
    this.dummyHash ??= this.hash(randomBytes(24).toString('base64url')).catch((error: unknown) => {
      this.dummyHash = undefined;
      throw error;
    });
    return this.dummyHash;
  }
}

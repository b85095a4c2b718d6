import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, AppConfig, AppException } from '@app/core';
import { MigrationService } from '@app/database';
import { UsersService } from '@app/users';
import { AdminProvisioningService } from './admin-provisioning.service';

/**
 * A fresh install must be administrable: with ADMIN_EMAIL and ADMIN_PASSWORD set, the account
 * is created on start unless it exists. An existing account is left alone (its password is
 * never reset from the environment).
 */
@Injectable()
export class FirstAdminBootstrap implements OnApplicationBootstrap {
  private readonly logger = new Logger(FirstAdminBootstrap.name);

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly migrations: MigrationService,
    private readonly users: UsersService,
    private readonly provisioning: AdminProvisioningService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { adminEmail, adminPassword } = this.config.auth;
    if (!adminEmail || !adminPassword) return;
    if (!(await this.migrations.isCurrent().catch(() => false))) {
      this.logger.warn('Schema is not current: the first administrator will be created on a later start');
      return;
    }
    if (await this.users.findByEmail(adminEmail)) return;
    try {
      await this.provisioning.createAdmin({ email: adminEmail, name: 'Administrator', password: adminPassword }, 'config');
    } catch (error) {
      // Another replica created it in the meantime.
      if (error instanceof AppException && error.getStatus() === 409) return;
      if (error instanceof AppException && error.getStatus() === 400) {
        throw new Error(`ADMIN_PASSWORD does not meet the password policy: ${error.details.map((d) => d.message).join('; ')}`);
      }
      throw error;
    }
  }
}

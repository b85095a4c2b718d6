import { Injectable, Logger } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService, SYSTEM_ACTOR } from '@app/audit';
import { PasswordService } from '@app/auth';
import { Clock } from '@app/core';
import { UserDto, UsersService } from '@app/users';
import { UnitOfWork } from '@app/database';

export interface NewAdmin {
  email: string;
  name: string;
  password: string;
}

/** How an administrator account came to be, for its audit record. */
export type AdminSource = 'config' | 'cli';

/** Creates administrator accounts: the first one from configuration, any from the CLI. */
@Injectable()
export class AdminProvisioningService {
  private readonly logger = new Logger(AdminProvisioningService.name);

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly users: UsersService,
    private readonly passwords: PasswordService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** Creates an active admin (the password policy applies); 409 when the email is taken. */
  async createAdmin(input: NewAdmin, source: AdminSource): Promise<UserDto> {
    this.passwords.assertAcceptable(input.password);
    const passwordHash = await this.passwords.hash(input.password);
    const user = await this.unitOfWork.run(async (manager) => {
      const created = await this.users.create(manager, {
        email: input.email,
        name: input.name,
        passwordHash,
        roles: ['admin'],
        now: this.clock.now(),
      });
      await this.audit.record(
        manager,
        auditEvent(AuditAction.ADMIN_USER_CREATED, SYSTEM_ACTOR, {
          resource: `user:${created.id}`,
          severity: 'warning',
          details: { email: created.email, roles: created.roles, source },
        }),
      );
      return created;
    });
    this.logger.log({ userId: user.id, source }, 'Administrator account created');
    return UserDto.from(user);
  }
}

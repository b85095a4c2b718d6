import { Module } from '@nestjs/common';
import { AuthModule, MfaModule } from '@app/auth';
import { SessionsModule } from '@app/sessions';
import { UsersModule } from '@app/users';
import { AdminProvisioningService } from './admin-provisioning.service';
import { AdminUsersController } from './admin-users.controller';
import { AdminUsersService } from './admin-users.service';
import { FirstAdminBootstrap } from './first-admin.bootstrap';

/** Admin-only routes (the global guard enforces `@Roles('admin')` and the admin:* permissions). */
@Module({
  imports: [AuthModule, MfaModule, UsersModule, SessionsModule],
  controllers: [AdminUsersController],
  providers: [AdminUsersService, AdminProvisioningService, FirstAdminBootstrap],
  exports: [AdminUsersService, AdminProvisioningService],
})
export class AdminModule {}

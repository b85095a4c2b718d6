import { Module } from '@nestjs/common';
import { SessionsModule } from '@app/sessions';
import { UsersModule } from '@app/users';
import { BackupCodeRepository } from './backup-code.repository';
import { BackupCodeService } from './backup-code.service';
import { MfaController } from './mfa.controller';
import { MfaCrypto } from './mfa-crypto';
import { MfaService } from './mfa.service';
import { SmsChallengeRepository } from './sms-challenge.repository';
import { SmsChallengeService } from './sms-challenge.service';
import { smsSenderProvider } from './sms/sms-sender.provider';
import { UserMfaRepository } from './user-mfa.repository';

/** TOTP, SMS and backup codes. The login uses MfaService; AuditModule is global. */
@Module({
  imports: [UsersModule, SessionsModule],
  controllers: [MfaController],
  providers: [
    MfaService,
    MfaCrypto,
    BackupCodeService,
    SmsChallengeService,
    smsSenderProvider,
    UserMfaRepository,
    BackupCodeRepository,
    SmsChallengeRepository,
  ],
  exports: [MfaService],
})
export class MfaModule {}

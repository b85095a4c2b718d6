import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SessionsModule } from '@app/sessions';
import { BackupCodeService } from './backup-code.service';
import { MfaBackupCodeEntity } from './entities/mfa-backup-code.entity';
import { MfaSmsChallengeEntity } from './entities/mfa-sms-challenge.entity';
import { UserMfaEntity } from './entities/user-mfa.entity';
import { MfaController } from './mfa.controller';
import { MfaCrypto } from './mfa-crypto';
import { MfaService } from './mfa.service';
import { SmsChallengeService } from './sms-challenge.service';
import { smsSenderProvider } from './sms/sms-sender.provider';

/** TOTP, SMS and backup codes. The login uses MfaService; AuditModule is global. */
@Module({
  imports: [TypeOrmModule.forFeature([UserMfaEntity, MfaBackupCodeEntity, MfaSmsChallengeEntity]), SessionsModule],
  controllers: [MfaController],
  providers: [MfaService, MfaCrypto, BackupCodeService, SmsChallengeService, smsSenderProvider],
  exports: [MfaService],
})
export class MfaModule {}

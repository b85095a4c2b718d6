import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { IsIn, IsString, MaxLength } from 'class-validator';
import { MFA_TYPES, MfaType } from '../user-mfa.repository';

@ApiSchema({ name: 'VerifyMfaRequest' })
export class VerifyMfaDto {
  @ApiProperty({ description: 'The 6-digit code from the authenticator app or the SMS', example: '123456' })
  @IsString()
  @MaxLength(64)
  code: string;

  @ApiProperty({ enum: MFA_TYPES })
  @IsIn(MFA_TYPES)
  type: MfaType;
}

import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';
import { MFA_TYPES, MfaType } from '../user-mfa.repository';
import { E164_PATTERN } from '../mfa-codes';

@ApiSchema({ name: 'EnableMfaRequest' })
export class EnableMfaDto {
  @ApiProperty({ enum: MFA_TYPES })
  @IsIn(MFA_TYPES)
  type: MfaType;

  @ApiPropertyOptional({ description: 'E.164 number; required for `sms`', example: '+14155550123', pattern: E164_PATTERN.source })
  @ValidateIf((body: EnableMfaDto) => body.type === 'sms' || body.phoneNumber !== undefined)
  @IsString()
  @Matches(E164_PATTERN, { message: 'phoneNumber must be an E.164 number such as +14155550123' })
  phoneNumber?: string;

  @ApiPropertyOptional({
    description:
      'Extension: required when MFA is already active, to replace it. A current TOTP code, an SMS code ' +
      '(the 409 answer sends one to SMS users) or an unused backup code.',
    example: '123456',
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  currentCode?: string;
}

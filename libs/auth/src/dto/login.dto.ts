import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEmail, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

/** A 6-digit TOTP or SMS code, or a backup code `xxxx-xxxx` (the latter is our documented extension). */
export const MFA_CODE_PATTERN = /^(\d{6}|[a-z0-9]{4}-[a-z0-9]{4})$/;

export class LoginDto {
  @ApiProperty({ format: 'email' })
  @IsEmail()
  @MaxLength(254)
  email: string;

  @ApiProperty()
  @IsString()
  @MaxLength(1024)
  password: string;

  @ApiPropertyOptional({
    pattern: '^[0-9]{6}$',
    description: 'The current TOTP or SMS code; a backup code (xxxx-xxxx) is also accepted (extension).',
  })
  @IsOptional()
  @IsString()
  @Matches(MFA_CODE_PATTERN, { message: 'mfaCode must be a 6-digit code or a backup code like abcd-1234' })
  mfaCode?: string;
}

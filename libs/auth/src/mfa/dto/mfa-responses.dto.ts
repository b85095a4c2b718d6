import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'EnableMfaResponse' })
export class EnableMfaResponseDto {
  @ApiPropertyOptional({ description: 'TOTP only: the base32 seed, shown this once' })
  secret?: string;

  @ApiPropertyOptional({ description: 'TOTP only: a data:image/png URL of the otpauth:// QR code' })
  qrCode?: string;

  @ApiProperty({ type: [String], description: 'Ten single-use codes (xxxx-xxxx), shown this once; usable once MFA is verified' })
  backupCodes: string[];
}

@ApiSchema({ name: 'VerifyMfaResponse' })
export class VerifyMfaResponseDto {
  @ApiProperty() verified: boolean;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

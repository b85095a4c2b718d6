import { ApiProperty } from '@nestjs/swagger';

export class ChangePasswordResponseDto {
  @ApiProperty({ example: 'Password changed' }) message: string;
  @ApiProperty({ description: 'Your other sessions (logins and API-key sessions) ended by the change; this one stays.' })
  sessionsEnded: number;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

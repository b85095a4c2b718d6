import { ApiProperty } from '@nestjs/swagger';

export class LogoutResponseDto {
  @ApiProperty() message: string;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

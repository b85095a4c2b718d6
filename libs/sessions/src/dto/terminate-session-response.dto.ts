import { ApiProperty } from '@nestjs/swagger';

export class TerminateSessionResponseDto {
  @ApiProperty({ example: 'Session terminated' }) message: string;
  @ApiProperty() sessionId: string;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

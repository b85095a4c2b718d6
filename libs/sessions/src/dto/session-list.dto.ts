import { ApiProperty } from '@nestjs/swagger';
import { PaginationDto } from '@app/core';
import { SessionDto } from './session.dto';

export class SessionListDto {
  @ApiProperty({ type: [SessionDto] }) sessions: SessionDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

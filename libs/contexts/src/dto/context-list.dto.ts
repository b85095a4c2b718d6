import { ApiProperty } from '@nestjs/swagger';
import { PaginationDto } from '@app/core';
import { ContextDto } from './context.dto';

export class ContextListDto {
  @ApiProperty({ type: [ContextDto] }) contexts: ContextDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

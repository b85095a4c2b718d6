import { ApiProperty } from '@nestjs/swagger';
import { PaginationDto } from '@app/core';
import { ToolDto } from './tool.dto';

export class ToolListDto {
  @ApiProperty({ type: [ToolDto] }) tools: ToolDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

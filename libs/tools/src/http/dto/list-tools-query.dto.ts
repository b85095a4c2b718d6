import { ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional } from 'class-validator';
import { PaginationQueryDto } from '@app/core';
import { TOOL_CATEGORIES, ToolCategory } from '../../provider/tool-provider';

export class ListToolsQueryDto extends PaginationQueryDto {
  @ApiPropertyOptional({ enum: TOOL_CATEGORIES })
  @IsOptional()
  @IsIn(TOOL_CATEGORIES)
  category?: ToolCategory;

  @ApiPropertyOptional({ type: 'boolean' })
  @IsOptional()
  // Query strings are text: only the exact words count, anything else fails IsBoolean.
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean({ message: 'enabled must be true or false' })
  enabled?: boolean;
}

import { ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';
import { PERMISSION_PATTERN, RATE_WINDOW_PATTERN } from '@app/core';

export class RateLimitInputDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 1_000_000, example: 60 })
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  requests: number;

  @ApiPropertyOptional({ example: '1m', description: '<n>s, <n>m, <n>h or <n>d, at most 7d' })
  @IsString()
  @Matches(RATE_WINDOW_PATTERN, { message: 'window must look like 30s, 1m, 1h or 1d' })
  window: string;
}

/**
 * PUT /admin/tools/{id}. Each field given replaces the admin override; `null` drops it (back to
 * the provider's default); absent leaves it as it is. Overrides survive restarts and provider
 * updates.
 */
@ApiSchema({ name: 'ToolUpdate' })
export class UpdateToolDto {
  @ApiPropertyOptional({ type: 'boolean', nullable: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean | null;

  @ApiPropertyOptional({ type: RateLimitInputDto, nullable: true })
  @IsOptional()
  @ValidateNested()
  @Type(() => RateLimitInputDto)
  rateLimit?: RateLimitInputDto | null;

  @ApiPropertyOptional({ type: [String], nullable: true, description: "Permissions a caller must hold, replacing the provider's" })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @ArrayUnique()
  @IsString({ each: true })
  @Matches(PERMISSION_PATTERN, { each: true, message: 'each permission must look like resource:action (e.g. tools:execute)' })
  permissions?: string[] | null;
}

import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const MAX_PAGE_SIZE = 100;
/** Far beyond any real listing, and small enough that page × limit stays an exact integer in SQL. */
export const MAX_PAGE = 1_000_000;

/** `page` and `limit` query parameters; values out of range are a 400, not silently capped. */
export class PaginationQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE)
  page: number = 1;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_PAGE_SIZE)
  limit: number = 20;
}

/**
 * Rows to skip. A function, not a getter on the DTO: class-transformer would assign a query's
 * `offset=` to a getter-only property and throw before validation could refuse the unknown key.
 */
export function pageOffset(query: { page: number; limit: number }): number {
  return (query.page - 1) * query.limit;
}

@ApiSchema({ name: 'Pagination' })
export class PaginationDto {
  @ApiProperty({ type: 'integer' }) page: number;
  @ApiProperty({ type: 'integer' }) limit: number;
  @ApiProperty({ type: 'integer' }) total: number;
  @ApiProperty({ type: 'integer' }) pages: number;
}

export function paginationOf(query: { page: number; limit: number }, total: number): PaginationDto {
  return { page: query.page, limit: query.limit, total, pages: Math.ceil(total / query.limit) };
}

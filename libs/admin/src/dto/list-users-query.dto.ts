import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { PaginationQueryDto, ROLES, Role } from '@app/core';
import type { UserStatus } from '@app/users';

export class ListUsersQueryDto extends PaginationQueryDto {
  @ApiPropertyOptional({ enum: ROLES })
  @IsOptional()
  @IsIn(ROLES)
  role?: Role;

  @ApiPropertyOptional({ enum: ['active', 'suspended', 'deleted'] })
  @IsOptional()
  @IsIn(['active', 'suspended', 'deleted'])
  status?: UserStatus;

  @ApiPropertyOptional({ description: 'Case-insensitive part of the email or name' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  search?: string;
}

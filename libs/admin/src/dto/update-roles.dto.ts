import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsIn, IsOptional, IsString, Matches } from 'class-validator';
import { PERMISSION_PATTERN, Role, ROLES } from '@app/core';

/** PUT /admin/users/{id}/roles. `permissions`, when given, replaces the user's own grants. */
export class UpdateRolesDto {
  @ApiProperty({ type: 'array', items: { type: 'string', enum: [...ROLES] } })
  @IsArray()
  @ArrayMinSize(1, { message: 'roles must contain at least one role' })
  @ArrayUnique()
  @IsIn(ROLES, { each: true, message: `each role must be one of ${ROLES.join(', ')}` })
  roles: Role[];

  @ApiPropertyOptional({ type: [String], description: "Grants on top of the roles' defaults, e.g. tools:write" })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @ArrayUnique()
  @IsString({ each: true })
  @Matches(PERMISSION_PATTERN, { each: true, message: 'each permission must look like resource:action (e.g. tools:write)' })
  permissions?: string[];
}

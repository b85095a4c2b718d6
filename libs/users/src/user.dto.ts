import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { ROLES, Role } from '@app/core';
import type { User, UserStatus } from './users.repository';

/** The contract's User: what any client may see of an account. Never the hash or lockout state. */
@ApiSchema({ name: 'User' })
export class UserDto {
  @ApiProperty({ example: 'usr_8Jk2mQ0vXbYt1s4p' }) id: string;
  @ApiProperty({ format: 'email' }) email: string;
  @ApiProperty() name: string;
  @ApiProperty({ type: 'array', items: { type: 'string', enum: [...ROLES] } }) roles: Role[];
  /** The user's own grants; the roles' defaults come on top (see the permission catalogue). */
  @ApiProperty({ type: [String] }) permissions: string[];
  @ApiProperty() mfaEnabled: boolean;
  @ApiProperty({ enum: ['active', 'suspended', 'deleted'] }) status: UserStatus;
  /** Absent until the first login. */
  @ApiPropertyOptional({ format: 'date-time' }) lastLogin?: string;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;

  static from(user: User): UserDto {
    const dto = new UserDto();
    dto.id = user.id;
    dto.email = user.email;
    dto.name = user.name;
    dto.roles = [...user.roles];
    dto.permissions = [...user.permissions];
    dto.mfaEnabled = user.mfaEnabled;
    dto.status = user.status;
    if (user.lastLogin) dto.lastLogin = user.lastLogin.toISOString();
    dto.createdAt = user.createdAt.toISOString();
    dto.updatedAt = user.updatedAt.toISOString();
    return dto;
  }
}

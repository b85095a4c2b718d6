import { ApiProperty } from '@nestjs/swagger';
import { PaginationDto } from '@app/core';
import { UserDto } from '@app/users';

export class UserListDto {
  @ApiProperty({ type: [UserDto] }) users: UserDto[];
  @ApiProperty({ type: PaginationDto }) pagination: PaginationDto;
}

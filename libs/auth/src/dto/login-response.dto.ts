import { ApiProperty } from '@nestjs/swagger';
import { UserDto } from '@app/users';

export class LoginResponseDto {
  @ApiProperty() accessToken: string;
  @ApiProperty() refreshToken: string;
  @ApiProperty({ type: 'integer', description: 'Access token lifetime in seconds' }) expiresIn: number;
  @ApiProperty({ example: 'Bearer' }) tokenType: 'Bearer';
  @ApiProperty({ type: UserDto }) user: UserDto;
}

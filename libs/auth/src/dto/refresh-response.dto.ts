import { ApiProperty } from '@nestjs/swagger';

/** POST /auth/refresh. `refreshToken` (the rotated one) is our documented extension. */
export class RefreshResponseDto {
  @ApiProperty() accessToken: string;
  @ApiProperty({ description: 'The new refresh token; the presented one is now used up (extension).' })
  refreshToken: string;
  @ApiProperty({ type: 'integer', description: 'Access token lifetime in seconds' }) expiresIn: number;
  @ApiProperty({ example: 'Bearer' }) tokenType: 'Bearer';
}

import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsBoolean, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export class CreateOAuthClientDto {
  @ApiProperty({ description: 'Shown on the consent page', maxLength: 100 })
  @IsString()
  @MaxLength(100)
  clientName: string;

  @ApiProperty({
    type: [String],
    description: 'Exact redirect URIs (https, or http on a loopback address for native clients); matched exactly',
  })
  @ArrayMinSize(1)
  @ArrayMaxSize(10)
  @IsString({ each: true })
  @MaxLength(2000, { each: true })
  @Matches(/^(https:\/\/|http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?\/)[^\s#]*$/, {
    each: true,
    message: 'redirectUris must be https URLs, or http URLs on localhost / 127.0.0.1 / [::1], without fragment',
  })
  redirectUris: string[];

  @ApiPropertyOptional({ description: 'A confidential client gets a client secret (shown once); default: a public client (PKCE only)' })
  @IsOptional()
  @IsBoolean()
  confidential?: boolean;
}

export class OAuthClientDto {
  @ApiProperty() clientId: string;
  @ApiProperty() clientName: string;
  @ApiProperty({ type: [String] }) redirectUris: string[];
  @ApiProperty({ enum: ['none', 'client_secret_basic'] }) tokenEndpointAuthMethod: string;
  @ApiProperty({ format: 'date-time', nullable: true }) createdAt: string | null;
}

export class CreatedOAuthClientDto extends OAuthClientDto {
  @ApiPropertyOptional({ description: 'Confidential clients only: shown once, never again' })
  clientSecret?: string;
}

export class OAuthClientListDto {
  @ApiProperty({ type: [OAuthClientDto] }) clients: OAuthClientDto[];
}

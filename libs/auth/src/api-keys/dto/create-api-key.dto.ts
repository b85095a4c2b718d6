import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsDateString, IsOptional, IsString, Length, Matches } from 'class-validator';

@ApiSchema({ name: 'CreateApiKeyRequest' })
export class CreateApiKeyDto {
  @ApiProperty({ example: 'nightly-report-agent', minLength: 1, maxLength: 100 })
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiPropertyOptional({ format: 'date-time', description: 'When the key stops working (default: never)' })
  @IsOptional()
  @IsDateString({ strict: true })
  expiresAt?: string;

  @ApiPropertyOptional({ description: "Bind the key to one of your contexts: it then reaches only that context's tools" })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  contextId?: string;

  @ApiPropertyOptional({
    type: [String],
    description: 'A subset of your permissions (default: all of them, as they are at each use)',
    example: ['tools:read', 'tools:execute'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(64)
  @IsString({ each: true })
  @Matches(/^[a-z][a-z0-9_:-]{0,127}$/, { each: true, message: 'each permission must look like tools:execute' })
  permissions?: string[];
}

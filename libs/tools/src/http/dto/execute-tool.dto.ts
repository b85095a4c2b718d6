import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsInt, IsObject, IsOptional, IsString, Length, Matches, Min, ValidateNested } from 'class-validator';

export class ExecutionContextDto {
  @ApiPropertyOptional({ description: "One of your own active sessions to count the call against (default: the token's)" })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  sessionId?: string;

  @ApiPropertyOptional({ description: 'Idempotency key: the same key from the same caller returns the same execution' })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  @Matches(/^[\x21-\x7e]+$/, { message: 'requestId must be printable ASCII without spaces' })
  requestId?: string;

  @ApiPropertyOptional({
    description: 'Extension: run in this context (yours, or any for admins): only its tools, with its settings; archived contexts refuse',
  })
  @IsOptional()
  @IsString()
  @Length(1, 128)
  contextId?: string;
}

export class ExecutionOptionsDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: "Milliseconds; capped at the server's maximum" })
  @IsOptional()
  @IsInt()
  @Min(1)
  timeout?: number;

  @ApiPropertyOptional({ description: 'Return at once with status pending; fetch the outcome from GET /tools/executions/{id}' })
  @IsOptional()
  @IsBoolean()
  async?: boolean;
}

export class ExecuteToolDto {
  @ApiProperty({ type: 'object', additionalProperties: true, description: "Checked against the tool's input schema" })
  @IsObject()
  parameters: Record<string, unknown>;

  @ApiPropertyOptional({ type: ExecutionContextDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => ExecutionContextDto)
  context?: ExecutionContextDto;

  @ApiPropertyOptional({ type: ExecutionOptionsDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => ExecutionOptionsDto)
  options?: ExecutionOptionsDto;
}

import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';

@ApiSchema({ name: 'ErrorDetail' })
export class ErrorDetailDto {
  @ApiPropertyOptional() field?: string;
  @ApiProperty() message: string;
  @ApiPropertyOptional() code?: string;
}

/** The contract's Error body. */
@ApiSchema({ name: 'Error' })
export class ErrorResponseDto {
  @ApiProperty({ example: 'VALIDATION_ERROR' }) error: string;
  @ApiProperty({ example: 'Invalid request parameters' }) message: string;
  @ApiPropertyOptional({ type: [ErrorDetailDto] }) details?: ErrorDetailDto[];
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty({ example: 'req_abc123' }) requestId: string;
  @ApiPropertyOptional({ example: 'trace_xyz789' }) traceId?: string;
}

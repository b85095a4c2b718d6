import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import type { ExecutionStatus, ToolExecution } from '../../execution/tool-execution';

@ApiSchema({ name: 'ToolExecutionError' })
export class ExecutionErrorDto {
  @ApiProperty({ example: 'TIMEOUT' }) code: string;
  @ApiProperty() message: string;
  @ApiPropertyOptional({
    type: 'array',
    items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } } },
  })
  details?: Array<{ field?: string; message: string; code?: string }>;
}

@ApiSchema({ name: 'ToolExecutionMetrics' })
export class ExecutionMetricsDto {
  @ApiProperty({ type: 'number', nullable: true, description: 'Run time in milliseconds (null until it has run)' })
  durationMs: number | null;
  @ApiProperty({ type: 'integer', description: 'The timeout the call ran under, in milliseconds' }) timeoutMs: number;
  @ApiProperty({ type: 'integer', description: 'Runs started (async calls may be retried after a crash)' }) attempts: number;
}

/** POST /tools/{id}/execute's body and GET /tools/executions/{id}'s. */
@ApiSchema({ name: 'ToolExecution' })
export class ToolExecutionDto {
  @ApiProperty({ example: 'exe_3kTq9vY2mW8bXc1a' }) executionId: string;
  @ApiProperty({ example: 'tool_echo' }) toolId: string;
  @ApiProperty({ enum: ['pending', 'running', 'completed', 'failed'] }) status: ExecutionStatus;
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: "The tool's output (completed only; a federated tool's own error result, content blocks included, also when failed)",
  })
  result: unknown;
  @ApiPropertyOptional({ type: ExecutionErrorDto, description: 'Why the call failed (failed only)' })
  error?: ExecutionErrorDto;
  @ApiProperty({ type: ExecutionMetricsDto }) metrics: ExecutionMetricsDto;
  @ApiProperty() async: boolean;
  @ApiPropertyOptional({ nullable: true }) sessionId: string | null;
  @ApiPropertyOptional({ nullable: true }) requestId: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiPropertyOptional({ format: 'date-time', nullable: true }) startedAt: string | null;
  @ApiPropertyOptional({ format: 'date-time', nullable: true }) finishedAt: string | null;

  static from(execution: ToolExecution): ToolExecutionDto {
    const dto = new ToolExecutionDto();
    dto.executionId = execution.id;
    dto.toolId = execution.toolId;
    dto.status = execution.status;
    // A failed call has no result, except a content-format tool's own error result (kept whole).
    dto.result = execution.status === 'completed' || execution.status === 'failed' ? (execution.result ?? null) : null;
    if (execution.error) {
      // The upstream's JSON-RPC error is for MCP agents; REST states it in code and message.
      const { rpc: _rpc, ...error } = execution.error;
      dto.error = error;
    }
    dto.metrics = { durationMs: execution.durationMs, timeoutMs: execution.timeoutMs, attempts: execution.attempts };
    dto.async = execution.async;
    dto.sessionId = execution.sessionId;
    dto.requestId = execution.requestId;
    dto.createdAt = execution.createdAt.toISOString();
    dto.startedAt = execution.startedAt?.toISOString() ?? null;
    dto.finishedAt = execution.finishedAt?.toISOString() ?? null;
    return dto;
  }
}

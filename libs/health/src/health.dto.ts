import { ApiProperty } from '@nestjs/swagger';

const STATUSES = ['healthy', 'degraded', 'unhealthy'];

export class HealthDto {
  @ApiProperty({ enum: STATUSES }) status: string;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty() version: string;
}

export class DetailedHealthDto extends HealthDto {
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Per component: status and figures' })
  components: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Process figures' })
  metrics: Record<string, unknown>;
}

export class ReadinessDto {
  @ApiProperty() ready: boolean;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

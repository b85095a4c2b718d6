import { ApiProperty } from '@nestjs/swagger';

const STATUSES = ['healthy', 'degraded', 'unhealthy'];

export class HealthDto {
  @ApiProperty({ enum: STATUSES }) status: string;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
  @ApiProperty() version: string;
}

export class DetailedHealthDto extends HealthDto {
  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description:
      'Per component: status and figures. Extension on `upstream:<name>` components: `era` (the protocol era spoken to the ' +
      'upstream while connected: `2026-07-28` or `2025`) and `eraFallback` (null, or `{ reason, at }` when an upstream ' +
      'declared `protocol: "auto"` answered 2026-07-28 out of spec and the gateway speaks the 2025 era to it until restarted)',
  })
  components: Record<string, unknown>;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Process figures' })
  metrics: Record<string, unknown>;
}

export class ReadinessDto {
  @ApiProperty() ready: boolean;
  @ApiProperty({ format: 'date-time' }) timestamp: string;
}

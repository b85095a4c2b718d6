export * from './audit-entry';
export * from './audit-hash';
export * from './audit-sanitizer';
export * from './audit.service';
export * from './audit.module';

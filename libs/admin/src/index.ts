export * from './admin.module';
export * from './admin-users.service';
export * from './admin-provisioning.service';

export { AdminModule } from './admin.module';
export { AdminProvisioningService } from './admin-provisioning.service';

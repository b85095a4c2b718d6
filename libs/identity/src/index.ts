export { IdentityModule } from './identity.module';
export { IdentityProviders } from './identity-providers';
export { IDENTITY_LINK_TABLE_COLUMNS } from './identity-link.repository';
export { IdentityErrorCode } from './identity.errors';
export { claimValues, mappedAccess } from './claims-mapping';

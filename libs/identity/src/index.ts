export { IdentityModule } from './identity.module';
export { IDENTITY_LINK_TABLE_COLUMNS } from './identity-link.repository';
export { IdentityErrorCode } from './identity.errors';
export { InteractionIdpSignIn } from './oidc/interaction-sign-in';

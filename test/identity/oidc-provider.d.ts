// oidc-provider ships no type declarations (and @types/oidc-provider is for older majors): the
// suites use it untyped, through CorporateIdp.
declare module 'oidc-provider';

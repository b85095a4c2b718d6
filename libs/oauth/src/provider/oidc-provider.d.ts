// oidc-provider ships no type declarations; the few members used are typed where they are used.
declare module 'oidc-provider' {
  export const Provider: any;
  export const errors: any;
}

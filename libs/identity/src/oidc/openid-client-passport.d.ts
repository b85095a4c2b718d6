// openid-client publishes its Passport strategy as the `openid-client/passport` export; TypeScript's
// node10 resolution (this repository's) does not read `exports`, so name the declaration file here.
declare module 'openid-client/passport' {
  export * from 'openid-client/build/passport';
}

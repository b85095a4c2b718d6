// Unit tests live beside the code (*.spec.ts); end-to-end suites live in test/ (*.e2e-spec.ts)
// and boot the real AppModule against real databases. The @app/* aliases come from tsconfig.json
// so there is one list of them.
const { compilerOptions } = require('./tsconfig.json');

const moduleNameMapper = {};
for (const [alias, [target]] of Object.entries(compilerOptions.paths)) {
  moduleNameMapper[`^${alias.replace('/*', '/(.*)')}$`] = `<rootDir>/${target.replace('/*', '/$1')}`;
}

const ESM_ONLY = ['content-disposition', 'openid-client', 'oauth4webapi', 'jose', 'oidc-provider'];
const swc = ['@swc/jest', JSON.parse(require('fs').readFileSync(`${__dirname}/.swcrc`, 'utf8'))];
const common = {
  rootDir: __dirname,
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: {
    '^.+\\.ts$': swc,
    // A few dependencies ship ESM only; Node 20 requires them natively, Jest needs them compiled.
    '^.+\\.js$': ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${ESM_ONLY.join('|')})/)`],
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/.dist-', '<rootDir>/libs/database/pglite-template'],
  moduleNameMapper,
  testEnvironment: 'node',
};

const e2e = {
  ...common,
  testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  // 180 s per test and hook (a hang guard; see the file).
  setupFilesAfterEnv: ['<rootDir>/test/support/e2e-timeout.ts'],
};
/** Fault and load suites: run serially, after the rest (see the e2e projects below). */
const SERIAL_E2E = ['test/faults/', 'test/bench/'];

module.exports = {
  // End-to-end suites boot real servers and databases; unit tests finish long before this.
  testTimeout: 60000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'] },
    // Each e2e suite has its own database, data directory, ports and Redis prefix, so suites run in
    // parallel workers (`npm test` passes --maxWorkers). The serial group holds the suites whose
    // subject is behaviour under load or faults (they drive the CPU themselves, spawn load
    // generators and cut connections): they run afterwards, one at a time (--runInBand).
    { ...e2e, displayName: 'e2e', testPathIgnorePatterns: SERIAL_E2E.map((dir) => `<rootDir>/${dir}`) },
    { ...e2e, displayName: 'e2e-serial', testMatch: SERIAL_E2E.map((dir) => `<rootDir>/${dir}**/*.e2e-spec.ts`) },
  ],
};

// The lib-boundaries lint rule fails where it should: run by `npm run lint` before eslint itself,
// so a change that silently disarms the rule (or the layer list) fails CI.
import path from 'node:path';
import { describe, it } from 'node:test';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import { libBoundaries } from '../eslint.config.mjs';

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const ROOT = path.resolve(import.meta.dirname, '..');
const at = (file) => path.join(ROOT, file);
const tester = new RuleTester({ languageOptions: { parser: tseslint.parser } });

tester.run('lib-boundaries', libBoundaries, {
  valid: [
    { filename: at('libs/auth/src/auth.service.ts'), code: "import { SessionService } from '@app/sessions';" },
    { filename: at('libs/auth/src/mfa/mfa.service.ts'), code: "import { AuthService } from '../auth.service';" },
    { filename: at('libs/contexts/src/contexts.service.ts'), code: "import { ToolCatalogService } from '@app/tools';" },
    { filename: at('apps/server/src/app.module.ts'), code: "import { McpGatewayModule } from '@app/mcp-gateway';" },
    { filename: at('apps/server/src/main.ts'), code: "import { version } from '../../../package.json';" },
    { filename: at('test/x.e2e-spec.ts'), code: "import { AuthService } from '@app/auth'; jest.mock('@app/redis');" },
    { filename: at('test/x.e2e-spec.ts'), code: "import { createApp } from '../apps/server/src/create-app';" },
    { filename: at('bench/run.ts'), code: "const { UsersService } = await import('@app/users');" },
    { filename: at('libs/core/src/x.ts'), code: "import { Injectable } from '@nestjs/common';" },
  ],
  invalid: [
    // deep imports, by alias or relative path, from anywhere
    {
      filename: at('libs/admin/src/x.ts'),
      code: "import { A } from '@app/users/users.service';",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('test/x.e2e-spec.ts'),
      code: "import { A } from '@app/core/errors/error-code';",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('bench/run.ts'),
      code: "import { A } from '../libs/users/src/users.service';",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('apps/server/src/x.ts'),
      code: "export { A } from '@app/auth/auth.service';",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('libs/admin/src/x.ts'),
      code: "import { A } from '../../sessions/src/session.service';",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('libs/admin/src/x.ts'),
      code: "type T = import('@app/auth/auth.service').AuthService;",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('test/x.e2e-spec.ts'),
      code: "jest.mock('@app/redis/redis-connection.service');",
      errors: [{ messageId: 'deep' }],
    },
    {
      filename: at('test/x.e2e-spec.ts'),
      code: "const r = require('@app/redis/redis-script');",
      errors: [{ messageId: 'deep' }],
    },
    // upward and sideways imports (a cycle needs one of these)
    {
      filename: at('libs/core/src/x.ts'),
      code: "import { UsersService } from '@app/users';",
      errors: [{ messageId: 'layer' }],
    },
    {
      filename: at('libs/sessions/src/x.ts'),
      code: "import type { AuthService } from '@app/auth';",
      errors: [{ messageId: 'layer' }],
    },
    {
      filename: at('libs/tools/src/x.ts'),
      code: "import { ContextsModule } from '@app/contexts';",
      errors: [{ messageId: 'layer' }],
    },
    {
      filename: at('libs/admin/src/x.ts'),
      code: "import { ToolsModule } from '@app/tools';",
      errors: [{ messageId: 'layer' }],
    },
    { filename: at('libs/database/src/x.ts'), code: "export * from '@app/redis';", errors: [{ messageId: 'layer' }] },
    {
      filename: at('libs/auth/src/x.ts'),
      code: "const m = () => import('@app/mcp-gateway');",
      errors: [{ messageId: 'layer' }],
    },
    // own index, outside the lib, unplaced libs
    { filename: at('libs/core/src/x.ts'), code: "import { Clock } from '@app/core';", errors: [{ messageId: 'self' }] },
    {
      filename: at('libs/auth/src/x.ts'),
      code: "import { x } from '../../../test/support/kit';",
      errors: [{ messageId: 'outside' }],
    },
    {
      filename: at('libs/auth/src/x.ts'),
      code: "import { x } from '@app/billing';",
      errors: [{ messageId: 'unlisted' }],
    },
    {
      filename: at('libs/billing/src/x.ts'),
      code: "import { x } from '@app/core';",
      errors: [{ messageId: 'unlisted' }],
    },
  ],
});

import { DynamicModule, Global, Module } from '@nestjs/common';
import { AppConfig } from './config/app-config';
import { APP_CONFIG } from './config/config.tokens';
import { Clock } from './clock/clock';
import { BackgroundJobs } from './jobs/background-jobs';
import { BearerTokenVerifiers } from './auth/bearer-verifiers';
import { InteractionSignIns } from './auth/interaction-sign-ins';
import { BrowserSignIns } from './auth/browser-sign-ins';

/** Configuration and cross-cutting services every other module may inject. */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: CoreModule,
      providers: [
        { provide: APP_CONFIG, useValue: config },
        Clock,
        BackgroundJobs,
        BearerTokenVerifiers,
        InteractionSignIns,
        BrowserSignIns,
      ],
      exports: [APP_CONFIG, Clock, BackgroundJobs, BearerTokenVerifiers, InteractionSignIns, BrowserSignIns],
    };
  }
}

import { Injectable } from '@nestjs/common';

/** Time source. Injected wherever time decides behaviour, so tests can move it instead of sleeping. */
@Injectable()
export class Clock {
  now(): Date {
    return new Date();
  }

  nowMs(): number {
    return Date.now();
  }
}

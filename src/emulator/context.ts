import type { Clock } from './clock.js';
import type { Faults } from './faults.js';
import type { IdGen } from './ids.js';
import type { ResolvedOptions } from './options.js';
import type { RateLimiter } from './ratelimit.js';
import type { State } from './state.js';
import type { WebhookDispatcher } from './webhooks.js';

/** Everything a route or service needs; one per emulator instance. `state` is swapped on reset(). */
export interface Ctx {
  state: State;
  clock: Clock;
  ids: IdGen;
  opts: ResolvedOptions;
  limiter: RateLimiter;
  webhooks: WebhookDispatcher;
  faults: Faults;
}

import { makeCounterProvider } from '@willsoto/nestjs-prometheus';

export const UPSTREAM_FEATURE_REQUESTS_METRIC = 'upstream_feature_requests_total';

/** prompts/get and resources/read of federated upstreams, by kind (prompt | resource), upstream and outcome. */
export const upstreamFeatureRequestsCounter = makeCounterProvider({
  name: UPSTREAM_FEATURE_REQUESTS_METRIC,
  help: 'Federated prompts/get and resources/read requests, by kind, upstream and status (completed | failed | refused)',
  labelNames: ['kind', 'upstream', 'status'],
});

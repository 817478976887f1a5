/**
 * Where to log. Priority: the CLI flag, then the spec's `tracking.uri`, then MLFLOW_TRACKING_URI.
 * None of them (or the value `none`/`local`/empty at a higher level) means local only: the run
 * log is still written and can be synced later with `metadd sync`.
 */
export type TrackingUriSource = 'cli' | 'spec' | 'env';

export interface ResolvedTrackingUri {
  uri: string;
  source: TrackingUriSource;
}

const LOCAL_ONLY = new Set(['', 'none', 'local', 'off']);

export function resolveTrackingUri(opts: {
  specUri?: string;
  cliUri?: string;
  env?: Record<string, string | undefined>;
}): ResolvedTrackingUri | null {
  const env = opts.env ?? process.env;
  const candidates: [string | undefined, TrackingUriSource][] = [
    [opts.cliUri, 'cli'],
    [opts.specUri, 'spec'],
    [env.MLFLOW_TRACKING_URI, 'env'],
  ];
  for (const [value, source] of candidates) {
    if (value === undefined) continue;
    const v = value.trim();
    // An explicit "none" at a higher level switches off what a lower level would enable.
    if (LOCAL_ONLY.has(v.toLowerCase())) return null;
    return { uri: v, source };
  }
  return null;
}

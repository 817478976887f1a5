import { MlflowClient } from '../tracking/mlflow-client.js';
import { resolveTrackingUri } from '../tracking/uri.js';
import { syncRun, pendingCount, type SyncSummary } from '../tracking/sync.js';

export interface TrackingTarget {
  uri: string;
  experiment: string;
}

/** Where a run logs, or null for local only (CLI flag > spec > MLFLOW_TRACKING_URI). */
export function trackingTarget(spec: { name: string; tracking?: { mlflow?: { uri?: string; experiment?: string } } }, cliUri?: string): TrackingTarget | null {
  const resolved = resolveTrackingUri({ cliUri, specUri: spec.tracking?.mlflow?.uri });
  if (!resolved) return null;
  return { uri: resolved.uri, experiment: spec.tracking?.mlflow?.experiment ?? spec.name };
}

/**
 * Syncs a run to MLflow while it runs: `poke()` after each finished stage starts a sync unless one
 * is in flight (then one more follows it), so dashboards fill in as stages finish; `finish()` runs a
 * last sync. Server problems never fail the run: the records stay pending for `metadd sync`.
 */
export class LiveSync {
  private inFlight: Promise<SyncSummary | undefined> | undefined;
  private again = false;
  private readonly client: MlflowClient;

  constructor(
    private readonly root: string,
    private readonly runId: string,
    private readonly target: TrackingTarget,
  ) {
    // Short retries while the run goes on; `metadd sync` retries longer.
    this.client = MlflowClient.fromEnv(target.uri, process.env, { retry: { maxAttempts: 3 } });
  }

  private once(): Promise<SyncSummary | undefined> {
    return syncRun({ root: this.root, runId: this.runId, client: this.client, experimentName: this.target.experiment }).catch(() => undefined);
  }

  poke(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = this.once().then(async (s) => {
      while (this.again) {
        this.again = false;
        s = await this.once();
      }
      this.inFlight = undefined;
      return s;
    });
  }

  async finish(): Promise<{ summary?: SyncSummary; pending: number }> {
    if (this.inFlight) await this.inFlight;
    const summary = await this.once();
    const pending = summary?.pending ?? (await pendingCount(this.root, this.runId).catch(() => NaN));
    return { summary, pending };
  }
}

export function describeSync(target: TrackingTarget, result: { summary?: SyncSummary; pending: number }): string {
  const s = result.summary;
  if (s?.complete) {
    const reused = s.reused.length ? `, ${s.reused.length} cached stage(s) linked to earlier runs` : '';
    return `MLflow: logged to ${target.uri} (experiment '${target.experiment}'${reused})`;
  }
  const why = s?.unavailable ? `server unreachable (${s.unavailable.split('\n')[0]})` : s?.errors.length ? s.errors.join('; ') : 'sync failed';
  return `MLflow: ${why}; ${Number.isNaN(result.pending) ? 'all' : result.pending} record(s) pending — run \`metadd sync\` later, nothing is lost`;
}

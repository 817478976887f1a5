import { MlflowClient } from '../tracking/mlflow-client.js';
import { listRunLogs, type RunLog } from '../tracking/run-log.js';
import { syncRun } from '../tracking/sync.js';
import { resolveTrackingUri } from '../tracking/uri.js';

function experimentOf(log: RunLog): string {
  const tracking = log.resolvedSpec.tracking as { mlflow?: { experiment?: string } } | undefined;
  return tracking?.mlflow?.experiment ?? log.spec.name;
}

/**
 * Sends every run log of a store (or the given ones) to an MLflow server, idempotently: what is
 * already there is not sent again. Returns one line per run.
 */
export async function syncStore(root: string, options: { uri?: string; runIds?: string[]; retry?: number } = {}): Promise<{ lines: string[]; ok: boolean }> {
  const logs = (await listRunLogs(root)).filter((l) => !options.runIds?.length || options.runIds.includes(l.runId));
  const lines: string[] = [];
  let ok = true;
  for (const log of logs) {
    const specUri = (log.resolvedSpec.tracking as { mlflow?: { uri?: string } } | undefined)?.mlflow?.uri;
    const target = resolveTrackingUri({ cliUri: options.uri, specUri });
    if (!target) {
      lines.push(`${log.runId} ${log.spec.name}: no tracking URI (pass --tracking-uri or set MLFLOW_TRACKING_URI)`);
      ok = false;
      continue;
    }
    const client = MlflowClient.fromEnv(target.uri, process.env, options.retry ? { retry: { maxAttempts: options.retry } } : {});
    let s;
    try {
      s = await syncRun({ root, runId: log.runId, client, experimentName: experimentOf(log) });
    } catch (err) {
      // A local problem with this run (e.g. a live run is syncing it right now): report, go on.
      ok = false;
      lines.push(`${log.runId} ${log.spec.name}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const sent = `${s.sent.metrics} metric points, ${s.sent.params} params, ${s.sent.artifacts} artifacts sent`;
    if (s.complete) lines.push(`${log.runId} ${log.spec.name}: in sync (${sent})`);
    else {
      ok = false;
      lines.push(`${log.runId} ${log.spec.name}: ${s.pending} record(s) pending${s.unavailable ? `, server unreachable: ${s.unavailable.split('\n')[0]}` : ''}${s.errors.length ? `; ${s.errors.join('; ')}` : ''}`);
    }
  }
  if (logs.length === 0) lines.push(`no run logs in ${root}`);
  return { lines, ok };
}

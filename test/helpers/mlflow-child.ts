import { MlflowClient } from '../../src/tracking/mlflow-client.js';

/**
 * Child process for the cross-process get-or-create test (forked by mlflow-client.test.ts).
 * Inert unless started with the `get-or-create` argument, because the test runner also loads
 * every file under test/.
 *
 * argv: get-or-create <trackingUri> <startAtEpochMs> <name>...
 */
async function main(): Promise<void> {
  const [uri, startAt, ...names] = process.argv.slice(3);
  const client = new MlflowClient({ trackingUri: uri, retry: { maxAttempts: 3, initialDelayMs: 50, maxDelayMs: 200 } });
  // Both processes wait for the same instant so that their first requests overlap.
  const wait = Number(startAt) - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const ids = await Promise.all(names.map(async (n) => (await client.getOrCreateExperiment(n)).experiment_id));
  process.stdout.write(`${JSON.stringify(Object.fromEntries(names.map((n, i) => [n, ids[i]])))}\n`);
}

if (process.argv[2] === 'get-or-create') {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { SpecError, formatIssue } from '../spec/errors.js';
import { runStageWorker } from '../exec/worker.js';
import { Store } from '../store/store.js';
import { findProjectRoot } from '../spec/load.js';
import { planSpec, type Plan, type PlanOptions } from '../exec/plan-spec.js';
import { runPlan } from '../exec/run-spec.js';
import { METADD_VERSION } from '../util/version.js';
import { syncStore } from '../exec/sync-cmd.js';
import { startLocalUi } from '../tracking/local-ui.js';
import { renderPlan, renderRunHeader, renderStatus, renderStoreStatus, renderSummary, renderCacheList, renderGc } from './render.js';
import { describePublish, publishReport, rebuildReport } from '../report/publish.js';


const collect = (value: string, previous: string[]): string[] => [...previous, value];
const setOption = (): Option => new Option('--set <key=value>', 'override a spec value (repeatable), e.g. --set distill.ipc=10').argParser(collect).default([]);
const backendOption = (): Option => new Option('--backend <name>', 'tensor backend').choices(['auto', 'tensorflow', 'wasm', 'cpu']);

function parseTaus(value: string): number[] {
  const parts = value.split(',').map((t) => t.trim());
  const bad = parts.find((t) => t === '' || !(Number(t) >= 0 && Number(t) <= 1));
  if (bad !== undefined) throw new InvalidArgumentError(`'${bad}' is not a threshold in [0, 1] (e.g. --tau 0.3,0.5,0.7)`);
  return parts.map(Number);
}

interface SpecFlags {
  set: string[];
  backend?: string;
  store?: string;
}

function planOptions(flags: SpecFlags): PlanOptions {
  return { sets: flags.set, backend: flags.backend, store: flags.store };
}

/** Specs errors exit 2, failures 1; everything else propagates as a crash with its stack. */
async function guard(fn: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (err) {
    if (err instanceof SpecError) {
      for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
      process.stderr.write(`${err.issues.length} problem${err.issues.length === 1 ? '' : 's'} found\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`metadd: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}

function storeFor(flags: { store?: string }): Store {
  return new Store(resolve(flags.store ?? resolve(findProjectRoot(resolve('metadd.yaml')), '.metadd')));
}

/**
 * For the commands that only read a store (report, diagnose, cache, sync, ui): a store folder that does
 * not exist is a mistyped --store or a spec never run, and answering "nothing there" would, for report,
 * overwrite the spec's report with an empty one.
 */
function existingStore(store: Store, flags: { store?: string }, byDefault = '.metadd in the project'): Store {
  if (!existsSync(store.root)) {
    const which = flags.store === undefined ? byDefault : '--store';
    throw new Error(`no store at ${resolve(store.root)} (${which}): nothing has run there; run a spec with \`metadd run\` first, or give --store the folder it ran in`);
  }
  return store;
}

function readPlan(spec: string, flags: SpecFlags): Plan {
  const plan = planSpec(spec, planOptions(flags));
  existingStore(plan.store, flags, "the spec's store");
  return plan;
}

const program = new Command();
program.name('metadd').description('Declarative dataset-distillation experiments with MetaDD alignment').version(METADD_VERSION);

program
  .command('validate')
  .description('check a spec (schema and semantics); exit 0 if valid, 2 if not')
  .argument('<spec>', 'experiment YAML file')
  .addOption(setOption())
  .action((spec: string, flags: SpecFlags) =>
    guard(() => {
      const plan = planSpec(spec, planOptions(flags));
      process.stdout.write(`${spec}: valid (${plan.resolved.cells.length} cell${plan.resolved.cells.length === 1 ? '' : 's'}, ${plan.dag.order.length} stages)\n`);
      return 0;
    }),
  );

program
  .command('plan')
  .description('show the stage DAG of a spec: stages per kind, which are cached, which will run')
  .argument('<spec>', 'experiment YAML file')
  .addOption(setOption())
  .addOption(backendOption())
  .option('--store <dir>', 'artifact store (default: the spec\'s store)')
  .option('--json', 'machine-readable output')
  .action((spec: string, flags: SpecFlags & { json?: boolean }) =>
    guard(async () => {
      process.stdout.write(await renderPlan(planSpec(spec, planOptions(flags)), flags.json === true));
      return 0;
    }),
  );

program
  .command('run')
  .description('run a spec: compute every stage not in the store, in parallel worker processes')
  .argument('<spec>', 'experiment YAML file')
  .addOption(setOption())
  .addOption(backendOption())
  .option('--store <dir>', 'artifact store (default: the spec\'s store)')
  .option('-j, --jobs <n>', 'parallel worker processes (default: number of cores)', (v) => Number.parseInt(v, 10))
  .option('--force', 'recompute every stage even if it is cached')
  .addOption(new Option('--executor <kind>', "where stages run (default: the spec's executor.kind): worker processes here, or Slurm jobs").choices(['local', 'slurm']))
  .option('--tracking-uri <uri>', "MLflow server (overrides the spec and MLFLOW_TRACKING_URI; 'none' to log locally only)")
  .action((spec: string, flags: SpecFlags & { jobs?: number; force?: boolean; trackingUri?: string; executor?: 'local' | 'slurm' }) =>
    guard(async () => {
      const plan = planSpec(spec, planOptions(flags));
      const startedAt = Date.now();
      process.stderr.write(await renderRunHeader(plan));
      const controller = new AbortController();
      // Stays registered (not `once`): execa's signal-exit re-raises a signal nobody else listens to,
      // which would kill us before the workers are stopped. A second Ctrl-C exits at once.
      const stop = (): void => {
        if (controller.signal.aborted) process.exit(130);
        process.stderr.write('\nmetadd: stopping (finished stages are kept; run again to resume; Ctrl-C again to quit now)\n');
        controller.abort();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      const summary = await runPlan(plan, { jobs: flags.jobs, force: flags.force, signal: controller.signal, trackingUri: flags.trackingUri, executorKind: flags.executor });
      process.stdout.write(renderSummary(plan, summary, (Date.now() - startedAt) / 1000));
      if (!summary.interrupted) process.stdout.write(describePublish(await publishReport(plan)));
      process.stdout.write(`${summary.tracking}\n`);
      if (summary.interrupted) return 130;
      return summary.results.some((r) => r.status === 'failed' || r.status === 'skipped') ? 1 : 0;
    }),
  );

program
  .command('status')
  .description('which stages of a spec are done, running elsewhere, or still to compute; without a spec, what is under way in the whole store')
  .argument('[spec]', 'experiment YAML file (left out: every running, paused or stopped stage of the store, whichever spec it belongs to)')
  .addOption(setOption())
  .addOption(backendOption())
  .option('--store <dir>', 'artifact store')
  .option('--json', 'machine-readable output')
  .action((spec: string | undefined, flags: SpecFlags & { json?: boolean }) => guard(async () => {
    process.stdout.write(spec === undefined ? await renderStoreStatus(storeFor(flags), flags.json === true) : await renderStatus(planSpec(spec, planOptions(flags)), flags.json === true));
    return 0;
  }));

program
  .command('report')
  .description('rebuild reports/<spec name>/ from whatever the store holds, computing nothing (missing results are listed)')
  .argument('<spec>', 'experiment YAML file')
  .addOption(setOption())
  .addOption(backendOption())
  .option('--store <dir>', 'artifact store (default: the spec\'s store)')
  .option('--out <dir>', 'report folder (default: reports/<spec name> in the project)')
  .action((spec: string, flags: SpecFlags & { out?: string }) =>
    guard(async () => {
      const result = await rebuildReport(readPlan(spec, flags), { outDir: flags.out === undefined ? undefined : resolve(flags.out) });
      process.stdout.write(describePublish(result));
      return 0;
    }),
  );

program
  .command('diagnose')
  .description("what the MetaDD auxiliary networks see in a spec's sets: meta- and heterogeneous-feature ratios and their accuracy, on real images, the base sets and the aligned sets in the store")
  .argument('<spec>', 'experiment YAML file')
  .addOption(setOption())
  .addOption(backendOption())
  .option('--store <dir>', "artifact store (default: the spec's store)")
  .option('--tau <list>', "thresholds, comma-separated (default: the spec's metadd.tau)", parseTaus)
  .option('--json', 'machine-readable output')
  .action((spec: string, flags: SpecFlags & { tau?: number[]; json?: boolean }) =>
    guard(async () => {
      const { diagnosePlan } = await import('../report/diagnose.js');
      const { renderDiagnosis } = await import('./render-diagnose.js');
      process.stdout.write(renderDiagnosis(await diagnosePlan(readPlan(spec, flags), { taus: flags.tau }), flags.json === true));
      return 0;
    }),
  );

const cache = program.command('cache').description('inspect and clean the artifact store');
cache
  .command('ls')
  .description('list the artifacts in the store')
  .option('--store <dir>', 'store directory (default: .metadd in the project)')
  .action((flags: { store?: string }) => guard(() => {
    process.stdout.write(renderCacheList(existingStore(storeFor(flags), flags)));
    return 0;
  }));
cache
  .command('gc')
  .description('remove artifacts no run log references, and leftovers of killed stages')
  .option('--store <dir>', 'store directory (default: .metadd in the project)')
  .option('--dry-run', 'only show what would be removed')
  .action((flags: { store?: string; dryRun?: boolean }) =>
    guard(async () => {
      process.stdout.write(renderGc(await existingStore(storeFor(flags), flags).gc(flags.dryRun === true), flags.dryRun === true));
      return 0;
    }),
  );

program
  .command('sync')
  .description('send the run logs of a store to MLflow (idempotent: nothing is sent twice)')
  .option('--store <dir>', 'store directory (default: .metadd in the project)')
  .option('--tracking-uri <uri>', 'MLflow server (default: the spec\'s tracking.mlflow.uri, then MLFLOW_TRACKING_URI)')
  .option('--run <id...>', 'only these run ids')
  .action((flags: { store?: string; trackingUri?: string; run?: string[] }) =>
    guard(async () => {
      const { lines, ok } = await syncStore(existingStore(storeFor(flags), flags).root, { uri: flags.trackingUri, runIds: flags.run });
      process.stdout.write(`${lines.join('\n')}\n`);
      return ok ? 0 : 1;
    }),
  );

program
  .command('ui')
  .description('start a local MLflow server over the store, sync every run into it, and print its URL')
  .option('--store <dir>', 'store directory (default: .metadd in the project)')
  .option('--port <n>', 'port on 127.0.0.1', (v) => Number.parseInt(v, 10), 5000)
  .action((flags: { store?: string; port: number }) =>
    guard(async () => {
      const root = existingStore(storeFor(flags), flags).root;
      const ui = await startLocalUi(root, flags.port);
      const { lines } = await syncStore(root, { uri: ui.url });
      process.stdout.write(`${lines.join('\n')}\nMLflow UI: ${ui.url}  (Ctrl-C to stop)\n`);
      await new Promise<void>((resolveStop) => {
        process.once('SIGINT', () => resolveStop());
        process.once('SIGTERM', () => resolveStop());
      });
      await ui.stop();
      return 0;
    }),
  );

program
  .command('exec-stage', { hidden: true })
  .description('run one planned stage over a store (used by the executors)')
  .requiredOption('--store <dir>', 'store directory')
  .option('--force', 'recompute even if cached')
  .argument('<key>', 'stage cache key')
  .action((key: string, flags: { store: string; force?: boolean }) =>
    guard(async () => {
      await runStageWorker(flags.store, key, { force: flags.force });
      return 0;
    }),
  );

await program.parseAsync(process.argv);

import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dag, StageNode } from '../../dag/compile.js';
import type { Store } from '../../store/store.js';
import { EVENT_PREFIX, parseEvent } from '../events.js';
import { CLI_ENTRY } from '../local.js';
import type { DagExecutor, DagRunOptions } from '../run-spec.js';
import { recordedCpu, type ScheduleSummary, type StageResult, type StageStatus } from '../scheduler.js';
import { isTerminal, sacct, sbatch, scancel, scontrolShowJob, SlurmError, squeue, type JobInfo } from './commands.js';
import { jobName, jobScript, resourceFlags, resourcesFor, type SlurmConfig } from './job.js';
import { createSlurmView, type SlurmView } from './progress.js';
import { appendSubmission, latestSubmission, scriptPath, slurmDir } from './records.js';

export interface SlurmExecutorOptions {
  /** The spec's `executor.slurm` block: resources per stage kind, poll interval, job setup lines. */
  config?: SlurmConfig;
  /** Overrides `config.poll_seconds` (tests poll fast). */
  pollMs?: number;
  /** Recompute stages even if they are in the store (`exec-stage --force`). */
  force?: boolean;
  /** Node.js binary the jobs run (default: `config.node`, else this process's). */
  node?: string;
  /** CLI entry the jobs run (default: this installation's dist/src/cli/main.js). */
  cli?: string;
  /** Working directory of the jobs: the spec's project (default: the metadd installation holding the CLI). */
  cwd?: string;
  /**
   * How long a job that ended successfully may take for its artifact to become visible here: on a
   * shared filesystem another node's writes can appear late on the submitting host.
   */
  settleMs?: number;
  /** How long squeue may keep failing (controller restart, network) before the run gives up. */
  lostAfterMs?: number;
  /** Where the live summary goes (default: stderr). */
  stream?: NodeJS.WriteStream;
}

/** One store-wide lock while a run decides what to submit, so two runs never submit the same stage. */
const SUBMIT_LOCK = 'slurm-submit';

interface Track {
  node: StageNode;
  ups: string[];
  status: StageStatus;
  jobId?: string;
  /** Submitted by this run (cancelled on interrupt), as opposed to adopted from an earlier run. */
  own: boolean;
  adopted: boolean;
  /** Where this job's output starts in the stage's log, and how far it has been read. */
  logStart: number;
  logPos: number;
  logRest: string;
  cachedByWorker: boolean;
  missingSince?: number;
  resubmitted: boolean;
}

/**
 * Runs a DAG as Slurm jobs: one `sbatch` per stage that is not in the store, each depending
 * (`afterok`) on the jobs of its inputs, so the cluster orders and runs them without this process
 * dispatching anything. This process then only watches: squeue for states, the stages' logs for
 * the workers' events, the store for the final word on success.
 */
export class SlurmExecutor implements DagExecutor {
  readonly name = 'slurm';
  private readonly config: SlurmConfig;

  constructor(private readonly options: SlurmExecutorOptions = {}) {
    this.config = options.config ?? {};
  }

  async runDag(dag: Dag, store: Store, options: DagRunOptions): Promise<ScheduleSummary> {
    const run = new SlurmRun(dag, store, this.options, this.config, options);
    return run.execute();
  }
}

class SlurmRun {
  private readonly tracks = new Map<string, Track>();
  private readonly dependents = new Map<string, string[]>();
  private readonly results = new Map<string, StageResult>();
  private readonly view?: SlurmView;
  private readonly signal: AbortSignal;
  private readonly force: boolean;
  private readonly pollMs: number;
  private readonly storeRoot: string;

  constructor(
    private readonly dag: Dag,
    private readonly store: Store,
    private readonly opts: SlurmExecutorOptions,
    private readonly config: SlurmConfig,
    private readonly runOptions: DagRunOptions,
  ) {
    this.signal = runOptions.signal ?? new AbortController().signal;
    this.force = runOptions.force ?? opts.force ?? false;
    this.pollMs = opts.pollMs ?? (config.poll_seconds ?? 5) * 1000;
    // Jobs run elsewhere: every path they get must be absolute.
    this.storeRoot = resolve(store.root);
    this.view = runOptions.quiet ? undefined : createSlurmView(opts.stream);
    for (const key of dag.order) {
      const node = dag.nodes.get(key) as StageNode;
      const ups = [...new Set(Object.values(node.inputs).filter((k) => dag.nodes.has(k)))];
      this.tracks.set(key, { node, ups, status: 'pending', own: false, adopted: false, logStart: 0, logPos: 0, logRest: '', cachedByWorker: false, resubmitted: false });
      for (const up of ups) this.dependents.set(up, [...(this.dependents.get(up) ?? []), key]);
    }
  }

  private track(key: string): Track {
    return this.tracks.get(key) as Track;
  }

  async execute(): Promise<ScheduleSummary> {
    try {
      for (const key of this.dag.order) {
        if (!this.force && this.store.has(key)) this.finish(key, { status: 'cached' });
      }
      if (this.dag.order.some((k) => !this.results.has(k))) {
        await this.submitAll();
        await this.monitor();
      }
      if (this.signal.aborted) await this.interrupt();
    } finally {
      this.view?.stop();
    }
    const results = this.dag.order.map((key) => {
      const t = this.track(key);
      return this.results.get(key) ?? { key, kind: t.node.kind, label: t.node.label, status: t.status };
    });
    return { results, interrupted: this.signal.aborted };
  }

  // --- results -----------------------------------------------------------------------------------

  /** Records a final status; a failure skips every dependent still open and returns their jobs. */
  private finish(key: string, r: Omit<StageResult, 'key' | 'kind' | 'label'>): string[] {
    if (this.results.has(key)) return [];
    const t = this.track(key);
    const result: StageResult = { key, kind: t.node.kind, label: t.node.label, ...r };
    this.record(key, result);
    if (result.status !== 'failed' && result.status !== 'skipped') return [];
    const doomed: string[] = [];
    const stack = [...(this.dependents.get(key) ?? [])];
    while (stack.length > 0) {
      const d = stack.pop() as string;
      if (this.results.has(d)) continue;
      const dt = this.track(d);
      if (dt.jobId) doomed.push(dt.jobId);
      this.record(d, { key: d, kind: dt.node.kind, label: dt.node.label, status: 'skipped', because: result.because ?? key });
      stack.push(...(this.dependents.get(d) ?? []));
    }
    return doomed;
  }

  private record(key: string, result: StageResult): void {
    const t = this.track(key);
    t.status = result.status;
    this.results.set(key, result);
    this.runOptions.onEvent?.({ type: 'result', result });
    this.view?.result(result, this.dag.order.length, this.results.size, t.jobId);
  }

  /** With afterok, Slurm would keep the dependents of a failed job pending for ever: cancel them. */
  private async cancelDoomed(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const complaint = await scancel(ids).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (complaint) this.view?.note(`slurm: scancel ${ids.join(' ')}: ${complaint}`);
  }

  private async fail(key: string, r: Omit<StageResult, 'key' | 'kind' | 'label'>): Promise<void> {
    await this.cancelDoomed(this.finish(key, r));
  }

  // --- submission --------------------------------------------------------------------------------

  private async submitAll(): Promise<void> {
    const release = await this.submitLock();
    if (!release) return;
    let submitted = 0;
    let adopted = 0;
    try {
      const open = this.dag.order.filter((k) => !this.results.has(k));
      const latest = new Map(open.map((k) => [k, latestSubmission(this.store, k)]));
      const ids = [...latest.values()].flatMap((s) => (s ? [s.jobId] : []));
      const live = ids.length > 0 ? await squeue(ids) : new Map<string, JobInfo>();
      for (const key of open) {
        if (this.signal.aborted) break;
        // A failed submission upstream has already skipped this one.
        if (this.results.has(key)) continue;
        const t = this.track(key);
        const sub = latest.get(key);
        // Job ids restart when a cluster's state is wiped: a live job of that id must also bear the key.
        const found = sub ? live.get(sub.jobId) : undefined;
        const info = found?.name?.includes(`-${key.slice(0, 10)}-`) ? found : undefined;
        if (sub && info && !isTerminal(info.state)) {
          if (this.adoptable(t, info, sub.force)) {
            t.jobId = sub.jobId;
            t.adopted = true;
            t.logStart = sub.logOffset;
            t.logPos = sub.logOffset;
            t.status = info.state === 'PENDING' ? 'pending' : 'running';
            adopted++;
            continue;
          }
          // Queued by an earlier run, but waiting on jobs this run will not reuse: it could never start.
          await this.cancelDoomed([sub.jobId]);
        }
        // Its earlier job may have finished since the store was first looked at.
        if (!this.force && this.store.has(key)) {
          this.finish(key, { status: 'cached' });
          continue;
        }
        if (await this.submit(key)) submitted++;
      }
    } catch (err) {
      if (!(err instanceof SlurmError)) throw err;
      // Slurm refused or is unreachable: nothing more can be submitted; what was submitted is watched.
      for (const key of this.dag.order) {
        if (!this.results.has(key) && !this.track(key).jobId) await this.fail(key, { status: 'failed', error: err.message });
      }
    } finally {
      await release();
    }
    const parts = [`submitted ${submitted} job${submitted === 1 ? '' : 's'}`];
    if (adopted > 0) parts.push(`adopted ${adopted} still queued or running from an earlier run`);
    const cached = [...this.results.values()].filter((r) => r.status === 'cached').length;
    if (cached > 0) parts.push(`${cached} cached`);
    this.view?.note(`slurm: ${parts.join(', ')}`);
  }

  /**
   * An earlier run's live job is reused when it will run the same thing this run would submit: one
   * already running always does; a pending one only if its inputs are done or are themselves
   * adopted (its afterok points at those jobs), it is not stuck on a failed dependency, and it is
   * not an unforced job where this run forces a recompute.
   */
  private adoptable(t: Track, info: JobInfo, forced: boolean): boolean {
    if (info.state !== 'PENDING') return true;
    if (info.reason === 'DependencyNeverSatisfied') return false;
    if (this.force && !forced) return false;
    return t.ups.every((u) => this.results.get(u)?.status === 'cached' || this.track(u).adopted);
  }

  private async submitLock(): Promise<(() => Promise<void>) | undefined> {
    let told = false;
    for (;;) {
      const release = await this.store.tryLock(SUBMIT_LOCK);
      if (release) return release;
      if (!told) this.view?.note('slurm: another metadd run is submitting to this store; waiting for it');
      told = true;
      try {
        await sleep(500, undefined, { signal: this.signal });
      } catch {
        return undefined;
      }
    }
  }

  /** Submits one stage's job; false (and the stage failed) when sbatch refuses it. */
  private async submit(key: string): Promise<boolean> {
    const t = this.track(key);
    const node = t.node;
    const log = this.store.logPath(key);
    const logOffset = existsSync(log) ? statSync(log).size : 0;
    const deps = t.ups.flatMap((u) => {
      const ut = this.track(u);
      return ut.jobId && ut.status !== 'computed' && ut.status !== 'cached' ? [ut.jobId] : [];
    });
    const cwd = this.opts.cwd ?? resolve(dirname(CLI_ENTRY), '../../..');
    const flags = [
      `--job-name=${jobName(this.config.job_prefix ?? 'metadd', key, node.label)}`,
      // `%` starts a Slurm filename pattern (%j, %u); a literal one is doubled.
      `--output=${resolve(log).replace(/%/g, '%%')}`,
      '--open-mode=append',
      `--chdir=${cwd}`,
      // The job sees the submitting shell's environment (PATH, TF/WASM settings), whatever the site default.
      '--export=ALL',
      ...resourceFlags(resourcesFor(node.kind, this.config)),
    ];
    const script = scriptPath(this.store, key);
    mkdirSync(slurmDir(this.store), { recursive: true });
    writeFileSync(
      script,
      jobScript({
        key,
        label: node.label,
        storeRoot: this.storeRoot,
        node: this.opts.node ?? this.config.node ?? process.execPath,
        cli: this.opts.cli ?? CLI_ENTRY,
        cwd,
        setup: this.config.setup ?? [],
        force: this.force,
        flags,
      }),
      { mode: 0o755 },
    );
    const args = [...flags, ...(deps.length > 0 ? [`--dependency=afterok:${deps.join(':')}`] : [])];
    let jobId: string;
    try {
      jobId = await sbatch(args, script);
    } catch (err) {
      if (!(err instanceof SlurmError) || /not found on PATH/.test(err.message)) throw err;
      await this.fail(key, { status: 'failed', error: `${err.message}\nscript: ${script}` });
      return false;
    }
    appendSubmission(this.store, key, node.label, {
      jobId,
      submittedAt: new Date().toISOString(),
      logOffset,
      force: this.force,
      dependsOn: deps,
      host: hostname(),
      pid: process.pid,
    });
    Object.assign(t, { jobId, own: true, adopted: false, logStart: logOffset, logPos: logOffset, logRest: '', cachedByWorker: false, missingSince: undefined, status: 'pending' });
    return true;
  }

  // --- monitoring --------------------------------------------------------------------------------

  private async monitor(): Promise<void> {
    const lostAfterMs = this.opts.lostAfterMs ?? 600_000;
    const settleMs = this.opts.settleMs ?? 60_000;
    let lostSince: number | undefined;
    while (!this.signal.aborted) {
      const open = this.dag.order.filter((k) => !this.results.has(k) && this.track(k).jobId);
      if (open.length === 0) break;
      let infos: Map<string, JobInfo> | undefined;
      try {
        infos = await squeue(open.map((k) => this.track(k).jobId as string));
        lostSince = undefined;
      } catch (err) {
        if (!(err instanceof SlurmError)) throw err;
        const now = Date.now();
        if (lostSince === undefined) this.view?.note(`slurm: ${err.message} (retrying)`);
        lostSince ??= now;
        if (now - lostSince >= lostAfterMs) {
          for (const key of open) await this.fail(key, { status: 'failed', error: `lost contact with Slurm: ${err.message}; job ${this.track(key).jobId} may still run` });
          break;
        }
      }
      if (infos) {
        for (const key of open) {
          if (this.results.has(key)) continue;
          this.readLog(key);
          await this.check(key, infos.get(this.track(key).jobId as string), settleMs);
        }
      }
      this.showCounts();
      try {
        await sleep(this.pollMs, undefined, { signal: this.signal });
      } catch {
        break;
      }
    }
  }

  private async check(key: string, known: JobInfo | undefined, settleMs: number): Promise<void> {
    const t = this.track(key);
    const id = t.jobId as string;
    // Forgotten by the controller (past MinJobAge, or a restarted controller): accounting may know.
    const info = known ?? (await sacct(id));
    if (info && !isTerminal(info.state)) {
      t.status = info.state === 'PENDING' ? 'pending' : 'running';
      if (info.state === 'PENDING' && info.reason === 'DependencyNeverSatisfied') await this.neverSatisfied(key);
      return;
    }
    const log = this.store.logPath(key);
    const seconds = info?.start && info.end ? Math.max(0, (info.end.getTime() - info.start.getTime()) / 1000) : undefined;
    if (this.store.has(key)) {
      if (t.cachedByWorker) this.finish(key, { status: 'cached', seconds });
      else this.finish(key, { status: 'computed', seconds, ...recordedCpu(this.store, key) });
      return;
    }
    if (!info || info.state === 'COMPLETED') {
      t.missingSince ??= Date.now();
      if (Date.now() - t.missingSince < settleMs) return;
      const what = info ? `completed` : 'is no longer known to Slurm (no accounting record either)';
      await this.fail(key, { status: 'failed', seconds, error: `slurm job ${id} ${what} but left no artifact; log: ${log}${jobTail(log, t.logStart)}` });
      return;
    }
    const detail = (await scontrolShowJob(id)) ?? info;
    const reason = detail.reason && detail.reason !== 'None' ? ` (${detail.reason})` : '';
    const exit = detail.exitCode && detail.exitCode !== '0:0' ? `, exit code ${detail.exitCode}` : '';
    await this.fail(key, { status: 'failed', seconds, error: `slurm job ${id} ${detail.state}${reason}${exit}; log: ${log}${jobTail(log, t.logStart)}` });
  }

  /**
   * A job whose afterok can no longer be met. When its inputs are done after all (an adopted job that
   * waited on an earlier run's failed job, the input since produced by another run), it is
   * resubmitted once without that dependency; while an input is still open the answer waits for it.
   */
  private async neverSatisfied(key: string): Promise<void> {
    const t = this.track(key);
    const id = t.jobId as string;
    const ups = t.ups.map((u) => this.results.get(u));
    if (ups.some((r) => r === undefined)) return;
    await this.cancelDoomed([id]);
    if (!t.resubmitted && ups.every((r) => r?.status === 'computed' || r?.status === 'cached')) {
      t.resubmitted = true;
      this.view?.note(`slurm: job ${id} of ${t.node.label} waited on a failed job of an earlier run; its inputs exist now, resubmitting`);
      await this.submit(key);
      return;
    }
    const failed = ups.find((r) => r?.status === 'failed' || r?.status === 'skipped');
    await this.fail(key, {
      status: 'skipped',
      because: failed ? (failed.because ?? failed.key) : undefined,
      error: `slurm job ${id}: dependency never satisfied`,
    });
  }

  /** Forwards the worker's `@@metadd` events written to the stage's log since the job's own offset. */
  private readLog(key: string): void {
    const t = this.track(key);
    const log = this.store.logPath(key);
    if (!existsSync(log)) return;
    const fd = openSync(log, 'r');
    let text: string;
    try {
      const size = fstatSync(fd).size;
      if (size < t.logPos) t.logPos = size;
      if (size === t.logPos) return;
      const buf = Buffer.alloc(size - t.logPos);
      const n = readSync(fd, buf, 0, buf.length, t.logPos);
      t.logPos += n;
      text = t.logRest + buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(fd);
    }
    const lines = text.split('\n');
    t.logRest = lines.pop() ?? '';
    for (const line of lines) {
      const event = parseEvent(line);
      if (!event || event.key !== key) continue;
      if (event.type === 'status' && event.status === 'cached') t.cachedByWorker = true;
      if (event.type === 'progress') this.view?.progress(t.node.label, event.done, event.total, event.message);
      this.runOptions.onEvent?.(event);
    }
  }

  private showCounts(): void {
    const c = { pending: 0, running: 0, done: 0, failed: 0, skipped: 0 };
    const running: string[] = [];
    for (const key of this.dag.order) {
      const t = this.track(key);
      if (t.status === 'computed' || t.status === 'cached') c.done++;
      else if (t.status === 'failed' || t.status === 'skipped') c[t.status]++;
      else if (t.status === 'running') {
        c.running++;
        running.push(t.node.label);
      } else c.pending++;
    }
    this.view?.counts(c, running);
  }

  /** Ctrl-C: cancel what this run submitted; jobs adopted from an earlier run are left to it. */
  private async interrupt(): Promise<void> {
    const own = this.dag.order.filter((k) => !this.results.has(k) && this.track(k).own);
    const ids = own.map((k) => this.track(k).jobId as string);
    if (ids.length === 0) return;
    const complaint = await scancel(ids).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    this.view?.note(`slurm: cancelled ${ids.length} job${ids.length === 1 ? '' : 's'} of this run${complaint ? ` (${complaint})` : ''}`);
    for (const key of own) {
      if (this.results.has(key)) continue;
      const t = this.track(key);
      // A job that was running is an interrupted attempt (as under the local executor); pending ones never started.
      if (t.status === 'running') this.finish(key, { status: 'interrupted', error: `slurm job ${t.jobId} cancelled` });
    }
  }
}

/** The last lines this job wrote to the stage's log, without the workers' event lines. */
function jobTail(log: string, from: number, lines = 20): string {
  if (!existsSync(log)) return '';
  const text = readFileSync(log).subarray(from).toString('utf8');
  const kept = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(EVENT_PREFIX));
  return kept.length > 0 ? `\n${kept.slice(-lines).join('\n')}` : '';
}

import { repeatedCells } from '../dag/repeats.js';
import { describeSpentRefines, spentRefineSchedules } from '../dag/spent-schedule.js';
import type { Plan } from '../exec/plan-spec.js';
import { planCounts } from '../exec/plan-spec.js';
import { estimatePlan, formatDuration, type PlanEstimate } from '../exec/estimate.js';
import { describeLiveProgress, describeStoppedProgress, leftFraction, secondsLeft } from '../exec/live-progress.js';
import type { ScheduleSummary } from '../exec/scheduler.js';
import type { Store, Manifest, StageProgress } from '../store/store.js';

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export async function renderPlan(plan: Plan, json: boolean): Promise<string> {
  const stages = [];
  for (const key of plan.dag.order) {
    const n = plan.dag.nodes.get(key);
    if (!n) throw new Error(`DAG lost node ${key}`);
    const cached = plan.store.has(key);
    // Held: another process is computing it now (a run of this plan would wait for it, then use it).
    const held = !cached && (await plan.store.isLocked(key));
    const partial = !cached && !held && plan.store.hasPartial(key);
    stages.push({ key, kind: n.kind, label: n.label, cached, partial, held, inputs: n.inputs, cells: n.cells });
  }
  const partial = stages.filter((s) => s.partial).length;
  const held = stages.filter((s) => s.held).length;
  const repeated = repeatedCells(plan.dag);
  const spent = spentRefineSchedules(plan.dag);
  // How much a stopped stage's last attempt, or a held stage's holder, has left: both files say.
  const stopped = fractionsLeft(plan, stages.filter((s) => s.partial || s.held).map((s) => s.key));
  const estimate = estimatePlan(plan, stages.filter((s) => !s.cached).map((s) => s.key), stopped);
  if (json) {
    return `${JSON.stringify(
      {
        spec: plan.resolved.base.name,
        backend: plan.backend,
        store: plan.store.root,
        cells: plan.resolved.cells.map((c) => c.coords),
        repeated_cells: repeated,
        spent_refines: spent,
        counts: planCounts(plan),
        estimate: { stages_to_run: estimate.toRun, estimated: estimate.estimated, worker_seconds: estimate.seconds },
        stages: stages.map((s) => {
          const e = estimate.stages.get(s.key);
          const left = stopped.get(s.key);
          return { ...s, estimate_seconds: e?.seconds ?? null, estimate_twins: e?.twins ?? 0, ...(left === undefined ? {} : { left_fraction: left }) };
        }),
      },
      null,
      2,
    )}\n`;
  }
  const lines = [
    `spec ${plan.resolved.base.name}: ${plan.resolved.cells.length} cell(s), ${stages.length} stage(s), backend ${plan.backend}, store ${plan.store.root}`,
    ...(repeated.count > 0
      ? [
          `note: ${repeated.count} cell(s) repeat the stages of another cell: they differ only in ${repeated.paths.join(', ')}, ` +
            'which their method does not read; they add no work and the report counts their results once (list the combinations under sweep.exclude to drop them)',
        ]
      : []),
    ...describeSpentRefines(spent),
    '',
    'kind       total  cached  to run',
    ...planCounts(plan).map((c) => `${c.kind.padEnd(10)} ${String(c.total).padStart(5)}  ${String(c.cached).padStart(6)}  ${String(c.toRun).padStart(6)}`),
    ...(partial > 0 ? ['', `${partial} stage(s) to run saved progress in an earlier attempt and resume from it (marked resume)`] : []),
    ...(held > 0 ? ['', `${held} stage(s) to run are being computed by another process now (marked held): a run waits for them and uses their results`] : []),
    ...(estimate.toRun > 0 ? ['', describeEstimate(estimate, 'to run', { running: stages.some((s) => s.held && stopped.has(s.key)), resuming: stages.some((s) => s.partial && stopped.has(s.key)) })] : []),
    '',
    ...stages.map((s) => {
      const seconds = estimate.stages.get(s.key)?.seconds;
      const left = stopped.get(s.key);
      const time = seconds === undefined || seconds === null ? '' : ` (~${formatDuration(seconds * (left ?? 1))}${left === undefined ? '' : ' left'})`;
      return `${s.cached ? 'cached' : s.held ? 'held  ' : s.partial ? 'resume' : 'run   '}  ${s.key.slice(0, 12)}  ${s.label}${time}`;
    }),
  ];
  return `${lines.join('\n')}\n`;
}

/** What `metadd run` says before it starts: how much of the plan is to run and, from finished twins, how long. */
export async function renderRunHeader(plan: Plan): Promise<string> {
  const toRun = plan.dag.order.filter((k) => !plan.store.has(k));
  const held: string[] = [];
  const resuming: string[] = [];
  for (const k of toRun) {
    if (await plan.store.isLocked(k)) held.push(k);
    else if (plan.store.hasPartial(k)) resuming.push(k);
  }
  const head =
    `spec ${plan.resolved.base.name}: ${plan.dag.order.length} stage(s), ${plan.dag.order.length - toRun.length} cached, ${toRun.length} to run` +
    `${resuming.length > 0 ? ` (${resuming.length} resume from saved progress)` : ''}` +
    `${held.length > 0 ? `; ${held.length} being computed by another process now, which this run waits for` : ''}, store ${plan.store.root}`;
  // Without a twin there is nothing to say about time here (`plan` says so; a first run needs no reminder).
  const stopped = fractionsLeft(plan, resuming);
  const holding = fractionsLeft(plan, held);
  const estimate = toRun.length > 0 ? estimatePlan(plan, toRun, new Map([...stopped, ...holding])) : undefined;
  const lines = [head, ...describeSpentRefines(spentRefineSchedules(plan.dag))];
  if (estimate && estimate.estimated > 0) lines.push(describeEstimate(estimate, 'to run', { running: holding.size > 0, resuming: stopped.size > 0 }));
  return `${lines.join('\n')}\n`;
}

/**
 * The fraction left of each given stage (unfinished, and with saved progress or held by another
 * process: the caller checked) from its progress file: how far the attempt that stopped part-way got,
 * or the holder's latest report; stages without one are left out and count in full.
 */
function fractionsLeft(plan: Plan, keys: string[]): Map<string, number> {
  const left = new Map<string, number>();
  for (const key of keys) {
    const p = plan.store.readProgress(key);
    const f = p ? leftFraction(p) : undefined;
    if (f !== undefined) left.set(key, f);
  }
  return left;
}

/** The `time:` line; `which` names the stages the estimate covers: those to run (plan) or those not finished (status). */
function describeEstimate(e: PlanEstimate, which: string, counted: { running?: boolean; resuming?: boolean } = {}): string {
  const partly =
    (counted.running ? '; a running stage counts the part it has left' : '') +
    (counted.resuming ? '; a stage that resumes counts the part its last attempt left' : '');
  if (e.estimated === 0) return `time: none of the ${e.toRun} stage(s) ${which} has a finished twin in this store (the same stage with another seed), so there is no estimate`;
  const rest = e.toRun - e.estimated;
  return (
    `time: ${e.estimated} of the ${e.toRun} stage(s) ${which} have finished twins in this store (the same stage with another seed): ` +
    `about ${formatDuration(e.seconds)} of worker time for those (medians of the twins' times, wall or CPU where less${partly})` +
    (rest > 0 ? `; ${rest} ${rest === 1 ? 'has' : 'have'} none and ${rest === 1 ? 'is' : 'are'} not counted` : '')
  );
}

/** `paused`: held by a process on this host that a signal stopped (SIGSTOP, Ctrl-Z); it goes on when continued. */
type StageState = 'done' | 'running' | 'paused' | 'partial' | 'todo';

/** Where a stage stands: done, held (running, or paused with the pid of its holder), stopped with saved progress, or to compute. */
interface Whereabouts {
  state: StageState;
  /** The stopped process holding a paused stage. */
  pid?: number;
  /** What a held stage's worker last wrote, or how far a stopped one got. */
  progress?: StageProgress;
}

interface StatusRow extends Whereabouts {
  key: string;
  kind: string;
  label: string;
}

async function unfinishedState(store: Store, key: string): Promise<Whereabouts> {
  let state: StageState = 'todo';
  const lock = await store.lockState(key);
  const pid = lock.pausedPid;
  if (lock.held) state = pid === undefined ? 'running' : 'paused';
  else if (store.hasPartial(key)) state = 'partial';
  // A held stage's file is its live progress; a partial one's, how far its stopped attempt got.
  const progress = state === 'todo' ? undefined : store.readProgress(key);
  return { state, ...(pid === undefined ? {} : { pid }), ...(progress ? { progress } : {}) };
}

/** Where every stage of a plan stands in the store now, with the live progress of the running ones. */
async function collectStatus(plan: Plan): Promise<{ stages: StatusRow[]; estimate: PlanEstimate; running: boolean; resuming: boolean }> {
  const stages: StatusRow[] = [];
  const left = new Map<string, number>();
  let running = false;
  let resuming = false;
  for (const key of plan.dag.order) {
    const n = plan.dag.nodes.get(key);
    if (!n) continue;
    const where: Whereabouts = plan.store.has(key) ? { state: 'done' } : await unfinishedState(plan.store, key);
    const f = where.progress ? leftFraction(where.progress) : undefined;
    if (f !== undefined) {
      left.set(key, f);
      if (where.state === 'partial') resuming = true;
      else running = true;
    }
    stages.push({ key, kind: n.kind, label: n.label, ...where });
  }
  const unfinished = stages.filter((s) => s.state !== 'done').map((s) => s.key);
  return { stages, estimate: estimatePlan(plan, unfinished, left), running, resuming };
}

/** What a status row says after its label: where a held or stopped stage has got, and who holds a paused one. */
function describeWhere(s: Whereabouts, now: number): string {
  if (s.pid !== undefined) {
    const at = s.progress ? `; ${describeStoppedProgress(s.progress)}` : '';
    return `: process ${s.pid} is stopped by a signal (\`kill -CONT ${s.pid}\` or \`fg\` in its terminal lets it go on)${at}`;
  }
  if (!s.progress) return '';
  return `: ${s.state === 'running' ? describeLiveProgress(s.progress, now) : describeStoppedProgress(s.progress)}`;
}

/**
 * The stages of a whole store that are under way, whichever spec they belong to: running, paused, or
 * stopped with saved progress (the spec that planned each first names it; its `metadd run` resumes it).
 */
export async function renderStoreStatus(store: Store, json = false): Promise<string> {
  const now = Date.now();
  const rows: (Whereabouts & { key: string; kind: string; label: string; spec: string })[] = [];
  for (const key of store.keysUnderWay()) {
    const where = await unfinishedState(store, key);
    if (where.state === 'todo') continue;
    const def = store.readStageDef(key);
    rows.push({ key, kind: def.kind, label: def.label, spec: def.spec.name, ...where });
  }
  if (json) {
    const stages = rows.map((r) => ({ ...r, ...(r.progress && r.state === 'running' ? { seconds_left_at_pace: secondsLeft(r.progress, now) ?? null } : {}) }));
    return `${JSON.stringify({ store: store.root, stages }, null, 2)}\n`;
  }
  if (rows.length === 0) return `nothing under way in ${store.root}: no stage is running, paused or stopped with saved progress\n`;
  const count = (state: StageState): number => rows.filter((r) => r.state === state).length;
  const lines = rows.map((r) => `${r.state.padEnd(8)} ${r.key.slice(0, 12)}  ${r.spec}: ${r.label}${describeWhere(r, now)}`);
  const partial = count('partial');
  const resume = partial > 0 ? ` (\`metadd run\` of their spec resumes them)` : '';
  return `${lines.join('\n')}\n\n${count('running')} running, ${count('paused')} paused, ${partial} stopped with saved progress${resume}; store ${store.root}\n`;
}

export async function renderStatus(plan: Plan, json = false): Promise<string> {
  const { stages, estimate, running, resuming } = await collectStatus(plan);
  const count = (state: StageState): number => stages.filter((s) => s.state === state).length;
  const now = Date.now();
  if (json) {
    return `${JSON.stringify(
      {
        spec: plan.resolved.base.name,
        store: plan.store.root,
        counts: { done: count('done'), running: count('running'), paused: count('paused'), partial: count('partial'), todo: count('todo') },
        // Worker seconds of the unfinished stages with finished twins, running ones for the part they have left.
        estimate: { stages_not_finished: estimate.toRun, estimated: estimate.estimated, worker_seconds: estimate.seconds },
        stages: stages.map((s) => ({
          ...s,
          ...(s.progress && s.state === 'running' ? { seconds_left_at_pace: secondsLeft(s.progress, now) ?? null } : {}),
          estimate_seconds: estimate.stages.get(s.key)?.seconds ?? null,
        })),
      },
      null,
      2,
    )}\n`;
  }
  const rows = stages.map((s) => `${s.state.padEnd(8)} ${s.key.slice(0, 12)}  ${s.label}${describeWhere(s, now)}`);
  const total = stages.length;
  const done = count('done');
  const busy = count('running');
  const paused = count('paused');
  const partial = count('partial');
  const pausedText = paused > 0 ? `, ${paused} paused` : '';
  const saved = partial > 0 ? ` (${partial} of them resume from saved progress)` : '';
  const time = estimate.toRun > 0 ? `${describeEstimate(estimate, 'not finished', { running, resuming })}\n` : '';
  return `${rows.join('\n')}\n\n${done}/${total} done, ${busy} running${pausedText}, ${total - done - busy - paused} to compute${saved}\n${time}`;
}

/** `time: 7 min wall; the 20 computed stage(s) took 12 min of worker time (11 min of CPU)`, or '' when nothing was computed. */
function describeRunTime(results: ScheduleSummary['results'], wallSeconds: number): string {
  const computed = results.filter((r) => r.status === 'computed');
  if (computed.length === 0) return '';
  const worker = computed.reduce((t, r) => t + (r.seconds ?? 0), 0);
  const cpu = computed.every((r) => r.cpuSeconds !== undefined) ? computed.reduce((t, r) => t + (r.cpuSeconds ?? 0), 0) : undefined;
  return (
    `time: ${formatDuration(wallSeconds)} wall; the ${computed.length} computed stage(s) took ${formatDuration(worker)} of worker time` +
    (cpu === undefined ? '' : ` (${formatDuration(cpu)} of CPU)`)
  );
}

export function renderSummary(plan: Plan, summary: ScheduleSummary, wallSeconds?: number): string {
  const count = (s: string): number => summary.results.filter((r) => r.status === s).length;
  const time = wallSeconds === undefined ? '' : describeRunTime(summary.results, wallSeconds);
  const lines = [
    '',
    `${plan.resolved.base.name}: ${count('computed')} computed, ${count('cached')} cached, ${count('failed')} failed, ${count('skipped')} skipped, ` +
      `${count('interrupted') > 0 ? `${count('interrupted')} interrupted, ` : ''}${count('pending')} not started`,
    ...(time ? [time] : []),
  ];
  for (const r of summary.results.filter((x) => x.status === 'failed')) lines.push(`  FAILED ${r.label}: ${r.error ?? ''}`);
  for (const r of summary.results.filter((x) => x.status === 'skipped')) {
    lines.push(`  skipped ${r.label} (needs ${plan.dag.nodes.get(r.because ?? '')?.label ?? r.because})`);
  }
  if (summary.interrupted) lines.push('  interrupted: run the same command again to resume');
  return `${lines.join('\n')}\n`;
}

export function renderCacheList(store: Store): string {
  const list: Manifest[] = store.listManifests().sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const total = list.reduce((n, m) => n + m.totalBytes, 0);
  const rows = list.map((m) => `${m.key.slice(0, 12)}  ${m.kind.padEnd(8)} ${bytes(m.totalBytes).padStart(10)}  ${m.createdAt}  ${m.label}`);
  return `${rows.join('\n')}${rows.length ? '\n' : ''}${list.length} artifact(s), ${bytes(total)} in ${store.root}\n`;
}

export function renderGc(result: Awaited<ReturnType<Store['gc']>>, dryRun: boolean): string {
  const verb = dryRun ? 'would remove' : 'removed';
  const lines = result.objects.map((m) => `${verb} ${m.key.slice(0, 12)} ${m.kind} ${m.label} (${bytes(m.totalBytes)})`);
  for (const p of result.tmp) lines.push(`${verb} temporary ${p}`);
  for (const p of result.scratch) lines.push(`${verb} scratch ${p}`);
  for (const p of result.locks) lines.push(`${verb} leftover ${p}`);
  lines.push(
    `${verb} ${result.objects.length} artifact(s), ${bytes(result.bytes)}; ${result.tmp.length} temporary, ${result.scratch.length} scratch, ` +
      `${result.locks.length} leftover lock file(s)`,
  );
  return `${lines.join('\n')}\n`;
}

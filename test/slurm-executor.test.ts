import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { DagBuilder, type Dag, type StageNode } from '../src/dag/compile.js';
import { schedule } from '../src/exec/scheduler.js';
import { LocalExecutor } from '../src/exec/local.js';
import { SlurmExecutor } from '../src/exec/slurm/executor.js';
import { jobMarks, type SlurmConfig } from '../src/exec/slurm/job.js';
import { appendSubmission, readSlurmRecord } from '../src/exec/slurm/records.js';
import type { WorkerEvent } from '../src/exec/events.js';
import type { StageResult } from '../src/exec/scheduler.js';
import { Store } from '../src/store/store.js';
import { hashJson } from '../src/store/hash.js';
import { writeNpyDataset } from './helpers/npy-dataset.js';
import { CLI_ENTRY } from '../src/exec/local.js';

// These tests drive a real Slurm cluster (scripts/setup-slurm.sh starts a single-node one). They
// fail, rather than skip, when none answers, so that CI cannot pass them silently.
const SETUP = 'run `sudo bash scripts/setup-slurm.sh` (installs and starts a single-node Slurm cluster)';

function clusterProblem(): string | undefined {
  const r = spawnSync('sinfo', ['--noheader', '--format=%T'], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return `sinfo is not available (${r.error.message})`;
  if (r.status !== 0) return `sinfo failed: ${r.stderr.trim()}`;
  const states = r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  if (!states.some((s) => /^(idle|mixed|allocated|completing)/.test(s))) return `no Slurm node is up (sinfo: ${states.join(', ') || 'nothing'})`;
  return undefined;
}

const problem = process.argv[2] === 'slurm-child' ? undefined : clusterProblem();
const suite: { skip?: string; timeout: number } = {
  timeout: 240_000,
  ...(problem && process.env.METADD_SKIP_SLURM === '1' ? { skip: `METADD_SKIP_SLURM=1 and ${problem}` } : {}),
};

function requireCluster(): void {
  if (problem) throw new Error(`${problem}: ${SETUP}, or set METADD_SKIP_SLURM=1 to skip the Slurm tests`);
}

function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * dataset -> distill (random, per ipc) for each dataset dir; with `chain`, a third level that reads
 * the first distill's output as an extra input, so failures must skip transitively.
 */
function buildDag(store: Store, dirs: string[], ipcs: number[], chain = false): Dag {
  const b = new DagBuilder('cpu', { name: 'slurm-test', file: 'slurm-test.yaml' });
  dirs.forEach((dir, i) => {
    const ds = b.add('dataset', { name: 'npy', digest: hashJson(dir) }, {}, `dataset ${i}`, false, i, { path: dir });
    const sets = ipcs.map((ipc) => b.add('distill', { method: 'random', ipc, seed: i }, { dataset: ds }, `random ${i} ipc=${ipc}`, false, i));
    if (chain) b.add('distill', { method: 'random', ipc: 1, seed: 100 + i }, { dataset: ds, base: sets[0] }, `random ${i} after ipc=${ipcs[0]}`, false, i);
  });
  const dag: Dag = { nodes: b.nodes, order: b.order, cells: [], reportKey: '' };
  for (const key of dag.order) {
    const { cells: _cells, ...def } = dag.nodes.get(key) as StageNode;
    store.writeStageDef(def);
  }
  return dag;
}

function datasets(n: number): string[] {
  const root = tmp('metadd-slurm-data-');
  return Array.from({ length: n }, (_, i) => writeNpyDataset(join(root, `d${i}`), { seed: i + 1 }));
}

/** Captures the live summary as a non-terminal stream would get it. */
class Capture extends Writable {
  text = '';
  readonly isTTY = false;
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function slurmExecutor(config: SlurmConfig, stream?: Capture): SlurmExecutor {
  // The view only writes and asks isTTY; Capture provides both (a Writable is not a tty.WriteStream).
  return new SlurmExecutor({ config, pollMs: 250, stream: stream as unknown as NodeJS.WriteStream | undefined });
}

function prefix(): string {
  return `mdt${randomBytes(3).toString('hex')}`;
}

function jobOf(store: Store, key: string): string {
  const id = readSlurmRecord(store, key)?.submissions.at(-1)?.jobId;
  assert.ok(id, `no submission recorded for ${key}`);
  return id;
}

function submissions(store: Store, key: string): string[] {
  return (readSlurmRecord(store, key)?.submissions ?? []).map((s) => s.jobId);
}

/** Straight from scontrol, independent of the executor's own parsing. */
function scontrolJob(id: string): Map<string, string> {
  const out = execFileSync('scontrol', ['--oneliner', 'show', 'job', id], { encoding: 'utf8' });
  return new Map([...out.matchAll(/(\w+)=(\S*)/g)].map((m) => [m[1], m[2]]));
}

/** Jobs Slurm knows (finished ones included) whose name starts with the prefix. */
function jobsNamed(prefixText: string): { id: string; name: string; state: string }[] {
  const out = execFileSync('squeue', ['--noheader', '--states=all', '--format=%i|%j|%T'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split('|'))
    .filter(([id, name]) => id && name?.startsWith(`${prefixText}-`))
    .map(([id, name, state]) => ({ id, name, state }));
}

/**
 * A job-name prefix of the test's own, and a signal that stops its runs: whatever way the test
 * ends, its runs stop and its jobs leave the queue (held ones would otherwise stay for ever).
 */
function scoped(t: TestContext): { jobPrefix: string; signal: AbortSignal } {
  const jobPrefix = prefix();
  const controller = new AbortController();
  t.after(() => {
    controller.abort();
    const open = jobsNamed(jobPrefix).filter((j) => j.state === 'PENDING' || j.state === 'RUNNING');
    if (open.length > 0) spawnSync('scancel', open.map((j) => j.id));
  });
  return { jobPrefix, signal: controller.signal };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function statuses(results: StageResult[]): Record<string, string> {
  return Object.fromEntries(results.map((r) => [r.label, r.status]));
}

/** The child of the crash test: submits a held DAG and watches it until the parent kills it. */
async function childMain(): Promise<void> {
  const [storeRoot, dirsJson, jobPrefix] = process.argv.slice(3);
  const store = new Store(storeRoot);
  const dag = buildDag(store, JSON.parse(dirsJson) as string[], [1]);
  await slurmExecutor({ job_prefix: jobPrefix, stages: { dataset: { extra: ['--hold'] } } }).runDag(dag, store, { quiet: true });
}

if (process.argv[2] === 'slurm-child') {
  await childMain();
} else {
  test('a sweep runs end to end through sbatch, each job after its inputs\' jobs, with the workers\' events', suite, async (t) => {
    requireCluster();
    const { jobPrefix, signal } = scoped(t);
    const store = new Store(tmp('metadd-slurm-store-'));
    const dag = buildDag(store, datasets(2), [1, 2]);
    const events: WorkerEvent[] = [];
    const stream = new Capture();
    const summary = await slurmExecutor({ job_prefix: jobPrefix, defaults: { cpus: 1, mem: '500M', time: '10:00' } }, stream).runDag(dag, store, {
      signal,
      onEvent: (e) => {
        if (e.type !== 'result') events.push(e);
      },
    });
    assert.equal(summary.interrupted, false);
    assert.deepEqual(
      summary.results.map((r) => r.status),
      dag.order.map(() => 'computed'),
      JSON.stringify(summary.results, null, 1),
    );
    assert.equal(jobsNamed(jobPrefix).length, dag.order.length, 'one job per stage');
    for (const r of summary.results) {
      // The CPU time the worker inside the job recorded reaches the result and its log line.
      assert.ok(r.cpuSeconds !== undefined && r.cpuSeconds > 0, JSON.stringify(r));
      assert.equal(r.cpuSeconds, store.manifest(r.key).compute?.cpuSeconds);
    }
    assert.match(stream.text, /computed +\S.* \(\d+\.\ds CPU\)/);
    for (const key of dag.order) {
      assert.deepEqual(await store.verify(key), []);
      const kinds = events.filter((e) => e.key === key && e.type === 'status').map((e) => (e.type === 'status' ? e.status : ''));
      assert.ok(kinds.includes('started') && kinds.includes('done'), `events of ${key} read from its log: ${kinds.join(',')}`);
      const node = dag.nodes.get(key) as StageNode;
      const id = jobOf(store, key);
      const job = scontrolJob(id);
      assert.equal(job.get('JobState'), 'COMPLETED');
      assert.equal(job.get('MinMemoryNode'), '500M', 'resources from the config reach sbatch');
      assert.ok(job.get('JobName')?.includes(key.slice(0, 10)), 'job name carries the short key');
      const log = readFileSync(store.logPath(key), 'utf8');
      const own = jobMarks(log, id);
      assert.ok(own.start !== undefined && own.end !== undefined && own.exit === 0, `start/end marks in ${store.logPath(key)}`);
      for (const up of Object.values(node.inputs)) {
        const upId = jobOf(store, up);
        assert.ok(readSlurmRecord(store, key)?.submissions[0].dependsOn.includes(upId), 'submitted with afterok on the input\'s job');
        const upMarks = jobMarks(readFileSync(store.logPath(up), 'utf8'), upId);
        assert.ok(upMarks.end !== undefined && upMarks.end <= own.start, `${node.label} started ${own.start} after its input ended ${upMarks.end}`);
        const upJob = scontrolJob(upId);
        assert.ok((job.get('StartTime') ?? '') >= (upJob.get('EndTime') ?? 'z'), 'Slurm\'s own times agree');
        assert.ok(Date.parse(store.manifest(up).createdAt) <= own.start, 'the input was committed before the job started');
      }
    }
    assert.match(stream.text, /slurm: submitted 6 jobs/);
    assert.match(stream.text, /slurm: 0 pending, 0 running, 6 done, 0 failed/);

    // A second run finds everything in the store and submits nothing.
    const before = dag.order.map((k) => submissions(store, k));
    const again = await slurmExecutor({ job_prefix: jobPrefix }).runDag(dag, store, { quiet: true, signal });
    assert.deepEqual(again.results.map((r) => r.status), dag.order.map(() => 'cached'));
    assert.deepEqual(dag.order.map((k) => submissions(store, k)), before);
  });

  test('outputs are identical to the local executor\'s for the same DAG', suite, async (t) => {
    requireCluster();
    const { jobPrefix, signal } = scoped(t);
    const dirs = datasets(1);
    const viaSlurm = new Store(tmp('metadd-slurm-store-'));
    const viaLocal = new Store(tmp('metadd-local-store-'));
    const dag = buildDag(viaSlurm, dirs, [1, 3], true);
    buildDag(viaLocal, dirs, [1, 3], true);
    const s = await slurmExecutor({ job_prefix: jobPrefix }).runDag(dag, viaSlurm, { quiet: true, signal });
    const l = await schedule(dag, viaLocal, new LocalExecutor(viaLocal), { jobs: 2 });
    assert.deepEqual(s.results.map((r) => r.status), dag.order.map(() => 'computed'));
    assert.deepEqual(l.results.map((r) => r.status), dag.order.map(() => 'computed'));
    for (const key of dag.order) {
      const files = (st: Store): string[] => st.manifest(key).files.map((f) => `${f.path} ${f.size} ${f.sha256}`);
      assert.ok(files(viaSlurm).length > 0);
      assert.deepEqual(files(viaSlurm), files(viaLocal), `artifact ${dag.nodes.get(key)?.label}`);
    }
  });

  test('a job cancelled with scancel fails its dependents (their jobs cancelled); a re-run completes them', suite, async (t) => {
    requireCluster();
    const { jobPrefix, signal } = scoped(t);
    const store = new Store(tmp('metadd-slurm-store-'));
    const dag = buildDag(store, datasets(2), [1], true);
    const [ds0, , , ds1] = dag.order;
    const label = (k: string): string => (dag.nodes.get(k) as StageNode).label;
    // Dataset jobs are submitted held, so the test decides when (and whether) they run.
    const running = slurmExecutor({ job_prefix: jobPrefix, stages: { dataset: { extra: ['--hold'] } } }).runDag(dag, store, { quiet: true, signal });
    await waitFor('all six submissions', () => dag.order.every((k) => readSlurmRecord(store, k) !== undefined));
    const cancelled = jobOf(store, ds0);
    execFileSync('scancel', [cancelled]);
    execFileSync('scontrol', ['release', jobOf(store, ds1)]);
    const summary = await running;
    assert.deepEqual(statuses(summary.results), {
      'dataset 0': 'failed',
      'random 0 ipc=1': 'skipped',
      'random 0 after ipc=1': 'skipped',
      'dataset 1': 'computed',
      'random 1 ipc=1': 'computed',
      'random 1 after ipc=1': 'computed',
    });
    const failed = summary.results.find((r) => r.key === ds0) as StageResult;
    assert.match(failed.error ?? '', new RegExp(`slurm job ${cancelled} CANCELLED`));
    assert.ok(failed.error?.includes(store.logPath(ds0)), `the summary names the log: ${failed.error}`);
    for (const r of summary.results.filter((x) => x.status === 'skipped')) {
      assert.equal(r.because, ds0);
      // Left alone, afterok would keep them pending for ever (DependencyNeverSatisfied).
      await waitFor(`job of ${r.label} cancelled`, () => scontrolJob(jobOf(store, r.key)).get('JobState') === 'CANCELLED', 30_000);
    }

    const rerun = await slurmExecutor({ job_prefix: jobPrefix }).runDag(dag, store, { quiet: true, signal });
    assert.deepEqual(statuses(rerun.results), {
      'dataset 0': 'computed',
      'random 0 ipc=1': 'computed',
      'random 0 after ipc=1': 'computed',
      'dataset 1': 'cached',
      'random 1 ipc=1': 'cached',
      'random 1 after ipc=1': 'cached',
    });
    assert.equal(submissions(store, ds0).length, 2, 'the cancelled stage was submitted again');
    assert.equal(submissions(store, ds1).length, 1, 'the finished one was not');
    for (const key of dag.order) assert.deepEqual(await store.verify(key), [], label(key));
  });

  test('jobs of a crashed run that are still queued are adopted by the next run, never submitted twice', suite, async (t) => {
    requireCluster();
    const { jobPrefix, signal } = scoped(t);
    const store = new Store(tmp('metadd-slurm-store-'));
    const dirs = datasets(1);
    const dag = buildDag(store, dirs, [1]);
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'slurm-child', store.root, JSON.stringify(dirs), jobPrefix], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let childErr = '';
    child.stderr.on('data', (c: Buffer) => (childErr += c.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    t.after(() => child.kill('SIGKILL'));
    await waitFor(`the child's submissions (${childErr})`, () => dag.order.every((k) => readSlurmRecord(store, k) !== undefined));
    // The crash: the submitting process dies without cancelling anything.
    child.kill('SIGKILL');
    await exited;
    const ids = dag.order.map((k) => jobOf(store, k));
    assert.equal(scontrolJob(ids[0]).get('Reason'), 'JobHeldUser');
    assert.equal(scontrolJob(ids[1]).get('JobState'), 'PENDING');

    const stream = new Capture();
    const running = slurmExecutor({ job_prefix: jobPrefix }, stream).runDag(dag, store, { signal });
    await waitFor('the re-run to adopt the queued jobs', () => /adopted 2/.test(stream.text));
    execFileSync('scontrol', ['release', ids[0]]);
    const summary = await running;
    assert.deepEqual(summary.results.map((r) => r.status), ['computed', 'computed'], stream.text);
    assert.match(stream.text, /submitted 0 jobs/);
    assert.deepEqual(dag.order.map((k) => submissions(store, k)), ids.map((id) => [id]), 'one submission per stage, the crashed run\'s');
    assert.deepEqual(jobsNamed(jobPrefix).map((j) => j.id).sort(), [...ids].sort(), 'no other job was submitted');
    for (const id of ids) assert.equal(scontrolJob(id).get('JobState'), 'COMPLETED');
  });

  test('a recorded job id that now belongs to another job (cluster state reset) is not adopted', suite, async (t) => {
    requireCluster();
    const { jobPrefix, signal } = scoped(t);
    const store = new Store(tmp('metadd-slurm-store-'));
    const dag = buildDag(store, datasets(1), [1]);
    const key = dag.order[0];
    const foreign = execFileSync('sbatch', ['--parsable', '--hold', `--job-name=${jobPrefix}-foreign`, '--output=/dev/null', '--wrap=true'], { encoding: 'utf8' }).trim();
    appendSubmission(store, key, 'dataset 0', { jobId: foreign, submittedAt: new Date().toISOString(), logOffset: 0, force: false, dependsOn: [], host: 'elsewhere', pid: 1 });
    const summary = await slurmExecutor({ job_prefix: jobPrefix }).runDag(dag, store, { quiet: true, signal });
    assert.deepEqual(summary.results.map((r) => r.status), ['computed', 'computed']);
    assert.equal(submissions(store, key).length, 2);
    assert.notEqual(jobOf(store, key), foreign);
    assert.equal(scontrolJob(foreign).get('JobState'), 'PENDING', 'the other job was left alone');
  });

  test('two runs at once share the queued jobs instead of submitting them twice', suite, async (t) => {
    requireCluster();
    const { jobPrefix, signal } = scoped(t);
    const store = new Store(tmp('metadd-slurm-store-'));
    const dag = buildDag(store, datasets(1), [1, 2]);
    const first = slurmExecutor({ job_prefix: jobPrefix, stages: { dataset: { extra: ['--hold'] } } }).runDag(dag, store, { quiet: true, signal });
    await waitFor('the first run\'s submissions', () => dag.order.every((k) => readSlurmRecord(store, k) !== undefined));
    const stream = new Capture();
    const second = slurmExecutor({ job_prefix: jobPrefix }, stream).runDag(dag, store, { signal });
    await waitFor('the second run to adopt', () => /adopted 3/.test(stream.text));
    execFileSync('scontrol', ['release', jobOf(store, dag.order[0])]);
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual(a.results.map((r) => r.status), ['computed', 'computed', 'computed']);
    assert.deepEqual(b.results.map((r) => r.status), ['computed', 'computed', 'computed']);
    for (const key of dag.order) assert.equal(submissions(store, key).length, 1);
    assert.equal(jobsNamed(jobPrefix).length, 3);
  });

  test('an interrupted run (Ctrl-C) cancels the jobs it submitted', suite, async (t) => {
    requireCluster();
    const { jobPrefix } = scoped(t);
    const store = new Store(tmp('metadd-slurm-store-'));
    const dag = buildDag(store, datasets(1), [1]);
    const controller = new AbortController();
    const running = slurmExecutor({ job_prefix: jobPrefix, stages: { dataset: { extra: ['--hold'] } } }).runDag(dag, store, {
      quiet: true,
      signal: controller.signal,
    });
    await waitFor('submissions', () => dag.order.every((k) => readSlurmRecord(store, k) !== undefined));
    controller.abort();
    const summary = await running;
    assert.equal(summary.interrupted, true);
    assert.deepEqual(summary.results.map((r) => r.status), ['pending', 'pending']);
    for (const key of dag.order) {
      const id = jobOf(store, key);
      await waitFor(`job ${id} cancelled`, () => scontrolJob(id).get('JobState') === 'CANCELLED', 30_000);
    }
    assert.equal(existsSync(store.objectDir(dag.order[0])), false);
  });

  test('`metadd run --executor slurm` submits a spec\'s DAG with the spec\'s resources per stage kind', suite, async (t) => {
    requireCluster();
    const { jobPrefix } = scoped(t);
    const project = tmp('metadd-slurm-proj-');
    writeFileSync(join(project, 'package.json'), '{"name":"fixture","private":true}\n');
    writeNpyDataset(join(project, 'data', 'toy'));
    const store = join(project, 'store');
    // executor.kind stays local: the flag must win over it.
    writeFileSync(
      join(project, 'spec.yaml'),
      [
        'name: slurm-cli',
        'data_root: data',
        'dataset: { name: npy, path: toy }',
        'distill: { method: random, ipc: 1 }',
        'eval: { architectures: [mlp], models: 1, epochs: 1 }',
        'executor:',
        '  kind: local',
        '  slurm:',
        `    job_prefix: ${jobPrefix}`,
        '    poll_seconds: 0.25',
        '    defaults: { mem: 400M, time: "5:00" }',
        '    stages:',
        '      eval: { cpus: 2 }',
        '',
      ].join('\n'),
    );
    const env = { ...process.env };
    delete env.MLFLOW_TRACKING_URI;
    const r = spawnSync(process.execPath, [CLI_ENTRY, 'run', 'spec.yaml', '--store', store, '--executor', 'slurm'], { cwd: project, env, encoding: 'utf8', timeout: 180_000 });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /slurm: submitted 4 jobs/);
    assert.match(r.stdout, /4 computed/);
    const jobs = jobsNamed(jobPrefix);
    assert.equal(jobs.length, 4, JSON.stringify(jobs));
    for (const j of jobs) {
      const job = scontrolJob(j.id);
      assert.equal(job.get('JobState'), 'COMPLETED');
      assert.equal(job.get('MinMemoryNode'), '400M');
      assert.equal(job.get('TimeLimit'), '00:05:00');
      assert.equal(job.get('NumCPUs'), j.name.includes('-eval_') ? '2' : '1', j.name);
      assert.equal(job.get('WorkDir'), project, 'jobs run in the spec\'s project');
    }
  });
}

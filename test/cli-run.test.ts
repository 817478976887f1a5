import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatDuration } from '../src/exec/estimate.js';
import { CLI_ENTRY } from '../src/exec/local.js';
import { planSpec } from '../src/exec/plan-spec.js';
import { Store, type Manifest } from '../src/store/store.js';
import { makeProject, yaml } from './helpers/project.js';
import { writeNpyDataset } from './helpers/npy-dataset.js';

const SPEC = yaml`
  name: tiny
  dataset: {name: npy, path: data}
  distill: {method: random, ipc: 2}
  eval:
    architectures: [{name: mlp, width: 16}]
    models: 2
    epochs: 3
    batch: 16
  sweep:
    axes:
      distill.ipc: [2, 4]
      seed: [0, 1]
`;

function project(): string {
  const root = makeProject({ 'spec.yaml': SPEC });
  writeNpyDataset(join(root, 'data'), { classes: 3, trainPerClass: 12, testPerClass: 6, size: 8 });
  return root;
}

function cli(root: string, args: string[]) {
  return spawnSync(process.execPath, [CLI_ENTRY, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, MLFLOW_TRACKING_URI: '' } });
}

/**
 * Every file's sha256 per artifact, without the files that legitimately differ between runs:
 * records.jsonl (timestamps) and stage.json (the spec file and dataset paths on this machine).
 */
function contentDigest(storeRoot: string): Record<string, Record<string, string>> {
  const store = new Store(storeRoot);
  const out: Record<string, Record<string, string>> = {};
  for (const m of store.listManifests()) {
    out[m.key] = Object.fromEntries(m.files.filter((f) => f.path !== 'records.jsonl' && f.path !== 'stage.json').map((f) => [f.path, f.sha256]));
  }
  return out;
}

test('validate exits 0 for a valid spec and 2 with located errors for an invalid one', () => {
  const root = project();
  const ok = cli(root, ['validate', 'spec.yaml']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /valid \(4 cells, 10 stages\)/);
  const bad = cli(root, ['validate', 'spec.yaml', '--set', 'eval.epochz=3']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--set eval\.epochz=3.*unknown key 'epochz' \(did you mean 'epochs'\?\)/);
});

test('run computes everything, a re-run is fully cached, and the same spec gives the same bytes', () => {
  const a = project();
  const first = cli(a, ['run', 'spec.yaml', '-j', '2']);
  assert.equal(first.status, 0, first.stderr + first.stdout);
  assert.match(first.stdout, /tiny: 10 computed, 0 cached, 0 failed.*\ntime: \d+ s wall; the 10 computed stage\(s\) took \d+ s of worker time \(\d+ s of CPU\)\n/);
  const again = cli(a, ['run', 'spec.yaml']);
  assert.equal(again.status, 0);
  assert.match(again.stdout, /tiny: 0 computed, 10 cached/);
  assert.doesNotMatch(again.stdout, /^time:/m, 'nothing computed, nothing to time');
  const runs = readdirSync(join(a, '.metadd', 'runs'));
  assert.equal(runs.length, 2);
  const log = JSON.parse(readFileSync(join(a, '.metadd', 'runs', runs.sort()[0], 'run.json'), 'utf8')) as { status: string; stages: unknown[] };
  assert.equal(log.status, 'finished');
  assert.equal(log.stages.length, 10);

  const b = project();
  assert.equal(cli(b, ['run', 'spec.yaml', '-j', '1']).status, 0);
  assert.deepEqual(contentDigest(join(b, '.metadd')), contentDigest(join(a, '.metadd')));
});

test('plan and status mark the stages that resume from saved progress', () => {
  const root = project();
  const planned = cli(root, ['plan', 'spec.yaml', '--json']);
  assert.equal(planned.status, 0, planned.stderr);
  const stages = (JSON.parse(planned.stdout) as { stages: { key: string; kind: string; partial: boolean }[] }).stages;
  assert.ok(stages.every((s) => !s.partial));
  const evalKey = stages.find((s) => s.kind === 'eval')?.key ?? assert.fail('no eval stage');
  // What an interrupted eval leaves: its definition (`metadd run` writes every stage's before it starts
  // one) and its checkpoint in the stage's scratch folder.
  const spec = planSpec(join(root, 'spec.yaml'));
  const { cells: _cells, ...def } = spec.dag.nodes.get(evalKey) ?? assert.fail('no eval node');
  spec.store.writeStageDef(def);
  writeFileSync(join(spec.store.scratchDir(evalKey), 'latest.json'), '{}');
  const plan = cli(root, ['plan', 'spec.yaml']).stdout.split('\n');
  assert.ok(plan.includes('1 stage(s) to run saved progress in an earlier attempt and resume from it (marked resume)'), plan.join('\n'));
  assert.deepEqual(plan.filter((l) => l.startsWith('resume')).map((l) => l.split(/ +/)[1]), [evalKey.slice(0, 12)]);
  assert.equal(plan.filter((l) => l.startsWith('run ')).length, stages.length - 1);
  const status = cli(root, ['status', 'spec.yaml']).stdout;
  assert.match(status, new RegExp(`^partial  ${evalKey.slice(0, 12)} `, 'm'));
  assert.match(status, /0\/\d+ done, 0 running, \d+ to compute \(1 of them resume from saved progress\)/);
  // Without a spec: what is under way in the whole store (here the project's), with the spec that planned it.
  const inStore = cli(root, ['status']);
  assert.equal(inStore.status, 0, inStore.stderr);
  assert.match(
    inStore.stdout,
    new RegExp(`^partial  ${evalKey.slice(0, 12)}  tiny: eval mlp-w16 <- random ipc=\\d seed=\\d\n\n0 running, 0 paused, 1 stopped with saved progress \\(\`metadd run\` of their spec resumes them\\); store ${join(root, '.metadd')}\n$`),
    inStore.stdout,
  );
  const empty = cli(root, ['status', '--store', 'elsewhere']).stdout;
  assert.equal(empty, `nothing under way in ${join(root, 'elsewhere')}: no stage is running, paused or stopped with saved progress\n`);
});

test('a run killed with SIGKILL resumes where it stopped and ends with the same results', async () => {
  const root = project();
  const child = spawn(process.execPath, [CLI_ENTRY, 'run', 'spec.yaml', '-j', '2'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  // Kill the whole process group (the run and its workers) once some evals are done.
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if ((err.match(/computed +eval/g) ?? []).length >= 2) {
        clearInterval(timer);
        process.kill(-(child.pid as number), 'SIGKILL');
        resolve();
      }
    }, 50);
  });
  await new Promise((r) => child.on('exit', r));
  const resumed = cli(root, ['run', 'spec.yaml', '-j', '2']);
  assert.equal(resumed.status, 0, resumed.stderr);
  const m = /tiny: (\d+) computed, (\d+) cached/.exec(resumed.stdout);
  assert.ok(m, resumed.stdout);
  assert.ok(Number(m[2]) >= 4, `the resumed run reused the finished stages (${m[0]})`);
  assert.equal(Number(m[1]) + Number(m[2]), 10);
  const clean = project();
  assert.equal(cli(clean, ['run', 'spec.yaml']).status, 0);
  assert.deepEqual(contentDigest(join(root, '.metadd')), contentDigest(join(clean, '.metadd')));
});

test('status shows how far a held stage has got (its worker writes it beside the lock) and that its holder is paused; the file goes with the lock', async () => {
  const root = project();
  // One IPC, evaluations long enough (seconds) that the worker writes its progress more than once.
  const set = ['--set', 'eval.epochs=2000', '--set', 'sweep.axes.distill.ipc=[2]'];
  const first = cli(root, ['run', 'spec.yaml', ...set, '--set', 'sweep.axes.seed=[0]']);
  assert.equal(first.status, 0, first.stderr);
  // Seed 0's stages are the twins of seed 1's: give them a known time to check the estimate's arithmetic.
  const store = new Store(join(root, '.metadd'));
  for (const m of store.listManifests()) writeFileSync(join(store.objectDir(m.key), 'manifest.json'), JSON.stringify({ ...m, compute: { seconds: 600, resumed: false } }));

  const start = () => {
    const c = spawn(process.execPath, [CLI_ENTRY, 'run', 'spec.yaml', '-j', '1', ...set], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MLFLOW_TRACKING_URI: '' },
    });
    const run = { child: c, err: '', exited: new Promise<number | null>((r) => c.on('exit', (code) => r(code))) };
    c.stderr.on('data', (d: Buffer) => (run.err += d.toString()));
    return run;
  };
  const runA = start();
  const { child, exited } = runA;
  // Pause the run (workers included) once the evaluation's file says it is a fifth of the way through
  // (the random subset's one-unit distillation is done once it reports at all).
  const locks = join(store.root, 'locks');
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const files = existsSync(locks) ? readdirSync(locks).filter((f) => f.endsWith('.progress.json')) : [];
      const p = files.length === 1 ? store.readProgress(files[0].replace('.progress.json', '')) : undefined;
      if (p && p.done >= 0.2 * p.total && p.done < p.total) {
        clearInterval(timer);
        process.kill(-(child.pid as number), 'SIGSTOP');
        resolve();
      }
    }, 20);
  });
  try {
    const status = cli(root, ['status', 'spec.yaml', ...set]).stdout;
    // The worker is stopped by a signal: status names it and how to let it go on, not a pace it is not keeping.
    const paused = status.split('\n').filter((l) => l.startsWith('paused'));
    assert.equal(paused.length, 1, status);
    const pid = Number(/process (\d+) is stopped by a signal/.exec(paused[0])?.[1]);
    assert.ok(pid > 0 && pid !== child.pid, `the worker, not the run: ${paused[0]}`);
    assert.match(
      paused[0],
      new RegExp(`eval mlp-w16 <- random ipc=2 seed=1: process ${pid} is stopped by a signal \\(\`kill -CONT ${pid}\` or \`fg\` in its terminal lets it go on\\); stopped at \\d+/\\d+ model \\d/2 epoch \\d+ loss [\\d.]+ \\(\\d{4}-`),
      status,
    );
    assert.match(status, /\n4\/6 done, 0 running, 1 paused, 1 to compute\n/);
    const inStore = cli(root, ['status']).stdout;
    assert.match(inStore, new RegExp(`^paused   ${paused[0].split(/ +/)[1]}  tiny: eval mlp-w16 <- random ipc=2 seed=1: process ${pid} is stopped by a signal`), inStore);
    assert.match(inStore, /\n0 running, 1 paused, 0 stopped with saved progress; store /, inStore);
    // The paused worker's file holds still: the held stage counts the part of its twin's 600 s it has left.
    const files = readdirSync(locks).filter((f) => f.endsWith('.progress.json'));
    assert.equal(files.length, 1, files.join(', '));
    const key = files[0].replace('.progress.json', '');
    assert.ok(key.startsWith(paused[0].split(/ +/)[1]), `${key} is the paused stage`);
    const progress = store.readProgress(key);
    assert.ok(progress && progress.total > 0, JSON.stringify(progress));
    const expected = 600 * ((progress.total - progress.done) / progress.total);
    assert.ok(progress.done < progress.total && formatDuration(expected) !== formatDuration(600), JSON.stringify(progress));
    assert.match(status, new RegExp(`about ${formatDuration(expected)} of worker time for those \\(.*a running stage counts the part it has left\\); 1 has none`), status);
    // plan marks it held (a run would wait for it and use its result), with the part its holder has left.
    const planned = cli(root, ['plan', 'spec.yaml', ...set]).stdout;
    assert.match(planned, new RegExp(`\\nheld +${key.slice(0, 12)}  eval mlp-w16 <- random ipc=2 seed=1 \\(~${formatDuration(expected)} left\\)\\n`), planned);
    assert.match(planned, /\n1 stage\(s\) to run are being computed by another process now \(marked held\)/, planned);
    const plannedJson = JSON.parse(cli(root, ['plan', 'spec.yaml', ...set, '--json']).stdout) as { stages: { key: string; held: boolean; left_fraction?: number }[] };
    assert.deepEqual(
      plannedJson.stages.filter((st) => st.held).map((st) => [st.key, st.left_fraction]),
      [[key, (progress.total - progress.done) / progress.total]],
    );
    // The same for scripts.
    type StatusJson = {
      counts: Record<string, number>;
      estimate: { stages_not_finished: number; estimated: number; worker_seconds: number };
      stages: { key: string; state: string; pid?: number; progress?: { done: number; total: number }; estimate_seconds: number | null }[];
    };
    const asJson = JSON.parse(cli(root, ['status', 'spec.yaml', ...set, '--json']).stdout) as StatusJson;
    assert.deepEqual(asJson.counts, { done: 4, running: 0, paused: 1, partial: 0, todo: 1 });
    const held = asJson.stages.find((st) => st.state === 'paused');
    assert.equal(held?.key, key);
    assert.deepEqual([held?.pid, held?.progress?.done, held?.progress?.total, held?.estimate_seconds], [pid, progress.done, progress.total, 600]);
    assert.deepEqual(asJson.estimate, { stages_not_finished: 2, estimated: 1, worker_seconds: expected });

    // A second run of the same spec waits for that stage, says who holds it, once (then every 30 s),
    // not at every poll, and does not take it over, however long the pause.
    const second = start();
    const t0 = Date.now();
    while (!/waiting +eval/.test(second.err) && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 20));
    assert.match(second.err, new RegExp(`waiting +eval mlp-w16 <- random ipc=2 seed=1: process ${pid} holds this stage and is stopped by a signal: \`kill -CONT ${pid}\``), second.err);
    // Its opening lines count that stage as held, for the part its holder has left.
    assert.match(second.err, /^spec tiny: 6 stage\(s\), 4 cached, 2 to run; 1 being computed by another process now, which this run waits for, store /m, second.err);
    assert.match(second.err, new RegExp(`about ${formatDuration(expected)} of worker time for those \\(.*a running stage counts the part it has left\\)`), second.err);
    process.kill(-(child.pid as number), 'SIGCONT');
    // Going on, it is running again, with its live progress.
    const after = cli(root, ['status', 'spec.yaml', ...set]).stdout;
    if (!store.has(key)) {
      assert.match(after, /\nrunning +\w+ +eval mlp-w16 <- random ipc=2 seed=1: \d+\/\d+ model \d\/2 epoch \d+ loss [\d.]+; \d+ s in/, after);
    }
    assert.equal(await second.exited, 0, second.err);
    const notes = second.err.split('\n').filter((l) => /waiting +eval/.test(l)).length;
    assert.ok(notes <= 1 + Math.floor((Date.now() - t0) / 30_000), `${notes} waiting notes:\n${second.err}`);
    assert.match(second.err, /cached +eval mlp-w16 <- random ipc=2 seed=1/);
  } finally {
    // Continued above unless an assertion failed first; by now it may have finished.
    try {
      process.kill(-(child.pid as number), 'SIGCONT');
    } catch {
      // Already exited.
    }
  }
  assert.equal(await exited, 0, runA.err);
  assert.deepEqual(readdirSync(locks).filter((f) => f.endsWith('.progress.json')), [], 'every progress file went with its lock');
});

test('two runs of the same spec on one store compute each stage once', async () => {
  const root = project();
  const start = () =>
    new Promise<string>((resolve) => {
      const c = spawn(process.execPath, [CLI_ENTRY, 'run', 'spec.yaml', '-j', '2'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('exit', (code) => resolve(`${code}\n${out}`));
    });
  const [a, b] = await Promise.all([start(), start()]);
  const computed = [a, b].map((o) => {
    assert.match(o, /^0\n/);
    return Number(/tiny: (\d+) computed/.exec(o)?.[1]);
  });
  assert.equal(computed[0] + computed[1], 10, `${a}\n${b}`);
  assert.ok(existsSync(join(root, '.metadd', 'objects')));
});

test('Ctrl-C (SIGINT) stops the run cleanly with exit 130; the next run completes it', async () => {
  const root = project();
  const child = spawn(process.execPath, [CLI_ENTRY, 'run', 'spec.yaml', '-j', '2'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      if (/started +eval/.test(err)) {
        clearInterval(timer);
        child.kill('SIGINT');
        resolve();
      }
    }, 50);
  });
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130, err + out);
  assert.match(out, /interrupted: run the same command again to resume/);
  // The stage the run stopped is interrupted, not failed, and what depends on it is not started, not skipped.
  assert.match(out, /tiny: \d+ computed, \d+ cached, 0 failed, 0 skipped, [12] interrupted, \d+ not started/);
  assert.doesNotMatch(out, /FAILED|skipped .*needs/);
  const store = new Store(join(root, '.metadd'));
  assert.equal(readdirSync(join(store.root, 'tmp')).length, 0, 'interrupted workers removed their partial output');
  // A stopped worker leaves its owner file (and its progress file); `cache gc` removes them unless the
  // stage saved progress to resume from, whose progress file the next plan reads.
  const lockFiles = () => readdirSync(join(store.root, 'locks')).filter((f) => f.endsWith('.json')).sort();
  const left = lockFiles();
  assert.ok(left.some((f) => f.endsWith('.owner.json')), left.join(', '));
  const gc = cli(root, ['cache', 'gc']);
  assert.equal(gc.status, 0, gc.stderr);
  const kept = left.filter((f) => f.endsWith('.progress.json') && store.hasPartial(f.replace('.progress.json', '')));
  assert.deepEqual(lockFiles(), kept, gc.stdout);
  assert.ok(gc.stdout.endsWith(`scratch, ${left.length - kept.length} leftover lock file(s)\n`), gc.stdout);
  const resumed = cli(root, ['run', 'spec.yaml']);
  assert.equal(resumed.status, 0, resumed.stderr);
});

test('plan estimates the stages still to run from their finished twins (the same stage with another seed)', () => {
  const root = project();
  const first = cli(root, ['run', 'spec.yaml', '--set', 'sweep.axes.seed=[0, 1]']);
  assert.equal(first.status, 0, first.stderr + first.stdout);
  // A first run has no twins to estimate from, and its opening line says only what it will compute.
  assert.match(first.stderr, /^spec tiny: 10 stage\(s\), 0 cached, 10 to run, store \S+\n(?!time:)/);
  // The run log gives each computed stage's wall time and the CPU time its worker recorded.
  assert.match(first.stderr, /computed +distill random ipc=2 seed=0 +in \d+\.\ds \(\d+\.\ds CPU\)/);
  const store = new Store(join(root, '.metadd'));
  type Planned = { key: string; kind: string; label: string; cached: boolean; estimate_seconds: number | null; estimate_twins: number };
  const plan = (args: string[]) => JSON.parse(cli(root, ['plan', 'spec.yaml', '--json', ...args]).stdout) as { estimate: { stages_to_run: number; estimated: number; worker_seconds: number }; stages: Planned[] };
  const done = plan(['--set', 'sweep.axes.seed=[0, 1]']);
  assert.ok(done.stages.every((s) => s.cached && s.estimate_seconds === null));
  assert.deepEqual(done.estimate, { stages_to_run: 0, estimated: 0, worker_seconds: 0 });

  // Every finished stage recorded how long its attempt took; give them known times to check the arithmetic.
  const seconds = (label: string): number => (label.includes('ipc=4') ? 400 : 100) * (label.includes('seed=1') ? 3 : 1) + (label.startsWith('eval') ? 10 : 0);
  for (const m of store.listManifests()) {
    assert.ok(m.compute && m.compute.seconds >= 0 && !m.compute.resumed, `${m.label}: ${JSON.stringify(m.compute)}`);
    assert.ok(m.compute.cpuSeconds !== undefined && m.compute.cpuSeconds > 0, `${m.label}: ${JSON.stringify(m.compute)}`);
    writeFileSync(join(store.objectDir(m.key), 'manifest.json'), JSON.stringify({ ...m, compute: { seconds: seconds(m.label), resumed: false } }));
  }
  const wide = plan(['--set', 'sweep.axes.seed=[0, 1, 2]']);
  const toRun = wide.stages.filter((s) => !s.cached);
  // Seed 2's random subsets and their evaluations, and the report (its parameters list every cell: no twin).
  assert.deepEqual(toRun.map((s) => s.kind).sort(), ['distill', 'distill', 'eval', 'eval', 'report']);
  const byLabel = Object.fromEntries(toRun.map((s) => [s.label.replace(/ +/g, ' '), s.estimate_seconds]));
  // Medians of the seed-0 and seed-1 twins; the IPC-4 stages are not twins of the IPC-2 ones, and an
  // evaluation's twins are those of sets distilled alike.
  assert.equal(byLabel['distill random ipc=2 seed=2'], 200);
  assert.deepEqual(toRun.map((s) => s.estimate_twins).sort(), [0, 2, 2, 2, 2]);
  assert.equal(byLabel['distill random ipc=4 seed=2'], 800);
  const evals = toRun.filter((s) => s.kind === 'eval').map((s) => s.estimate_seconds).sort();
  assert.deepEqual(evals, [210, 810]);
  assert.equal(toRun.find((s) => s.kind === 'report')?.estimate_seconds, null);
  assert.deepEqual(wide.estimate, { stages_to_run: 5, estimated: 4, worker_seconds: 2020 });
  const text = cli(root, ['plan', 'spec.yaml', '--set', 'sweep.axes.seed=[0, 1, 2]']).stdout;
  assert.match(text, /time: 4 of the 5 stage\(s\) to run have finished twins in this store \(the same stage with another seed\): about 34 min of worker time for those .*; 1 has none and is not counted/);
  assert.match(text, /^run {5}\S{12} {2}distill random ipc=4 seed=2 \(~13 min\)$/m);
  const status = cli(root, ['status', 'spec.yaml', '--set', 'sweep.axes.seed=[0, 1, 2]']).stdout;
  assert.match(status, /\n\d+\/\d+ done, 0 running, 5 to compute\ntime: 4 of the 5 stage\(s\) not finished have finished twins .*about 34 min of worker time/);

  // A twin that resumed from saved progress measured only part of its work: it does not count.
  for (const m of store.listManifests()) {
    if (m.label.startsWith('distill') && m.label.includes('ipc=2') && m.label.includes('seed=1')) {
      writeFileSync(join(store.objectDir(m.key), 'manifest.json'), JSON.stringify({ ...m, compute: { seconds: 300, resumed: true } }));
    }
  }
  const after = plan(['--set', 'sweep.axes.seed=[0, 1, 2]']).stages.find((s) => /distill random ipc=2 seed=2/.test(s.label.replace(/ +/g, ' ')));
  assert.equal(after?.estimate_seconds, 100);

  // A twin whose worker was paused or shared its core counts its CPU time; one whose backend ran
  // several threads (more CPU than wall time) counts its wall time.
  const ipc4 = (seed: number): Manifest | undefined =>
    store.listManifests().find((m) => m.label.startsWith('distill') && m.label.includes('ipc=4') && m.label.includes(`seed=${seed}`));
  const rewrite = (m: Manifest | undefined, compute: Manifest['compute']): void => {
    assert.ok(m);
    writeFileSync(join(store.objectDir(m.key), 'manifest.json'), JSON.stringify({ ...m, compute }));
  };
  rewrite(ipc4(0), { seconds: 900, cpuSeconds: 300, resumed: false });
  rewrite(ipc4(1), { seconds: 500, cpuSeconds: 1900, resumed: false });
  const mixed = plan(['--set', 'sweep.axes.seed=[0, 1, 2]']).stages.find((s) => /distill random ipc=4 seed=2/.test(s.label.replace(/ +/g, ' ')));
  assert.equal(mixed?.estimate_seconds, 400);

  const opening = (r: ReturnType<typeof cli>): string => r.stderr.split('\n').slice(0, 2).join('\n');

  // An evaluation an earlier attempt stopped three quarters of the way (saved progress in its scratch
  // folder, its last report beside its lock) counts the quarter it has left: 810 s becomes 202.5 s.
  const evalIpc4 = wide.stages.find((s) => s.kind === 'eval' && s.estimate_seconds === 810) ?? assert.fail('no IPC-4 evaluation to run');
  writeFileSync(join(store.scratchDir(evalIpc4.key), 'stopped.txt'), 'not a checkpoint the evaluation reads');
  store.writeProgress(evalIpc4.key, { startedAt: '2026-12-05T22:00:00.000Z', updatedAt: '2026-12-05T22:30:00.000Z', done: 3, total: 4, message: 'model 2/2' });
  const stopped = plan(['--set', 'sweep.axes.seed=[0, 1, 2]']);
  assert.equal(stopped.estimate.worker_seconds, 100 + 400 + 210 + 202.5);
  assert.deepEqual(
    stopped.stages.filter((s) => !s.cached).map((s) => (s as Planned & { left_fraction?: number }).left_fraction),
    toRun.map((s) => (s.key === evalIpc4.key ? 0.25 : undefined)),
  );
  const stoppedText = cli(root, ['plan', 'spec.yaml', '--set', 'sweep.axes.seed=[0, 1, 2]']).stdout;
  assert.match(stoppedText, /about 15 min of worker time for those \(.*; a stage that resumes counts the part its last attempt left\); 1 has none/);
  assert.match(stoppedText, new RegExp(`^resume  ${evalIpc4.key.slice(0, 12)}  eval .* \\(~3 min left\\)$`, 'm'));
  const stoppedStatus = cli(root, ['status', 'spec.yaml', '--set', 'sweep.axes.seed=[0, 1, 2]']).stdout;
  assert.match(stoppedStatus, new RegExp(`^partial  ${evalIpc4.key.slice(0, 12)}  eval .*: stopped at 3/4 model 2/2 \\(2026-12-05 22:30 UTC\\)$`, 'm'));
  assert.match(stoppedStatus, /about 15 min of worker time .*a stage that resumes counts the part its last attempt left/);

  // `run` opens with the same estimate: 100 + 400 s for the distillations, 210 + 202.5 s for the evaluations.
  const widened = cli(root, ['run', 'spec.yaml', '--set', 'sweep.axes.seed=[0, 1, 2]']);
  assert.equal(widened.status, 0, widened.stderr);
  assert.match(opening(widened), /^spec tiny: 14 stage\(s\), 9 cached, 5 to run \(1 resume from saved progress\), store \S+\ntime: 4 of the 5 stage\(s\) to run have finished twins .*: about 15 min of worker time .*a stage that resumes counts the part its last attempt left/);
  assert.equal(store.readProgress(evalIpc4.key), undefined, 'the progress file went with the finished stage');
});

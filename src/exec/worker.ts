import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store, type StageDef } from '../store/store.js';
import { loadStage } from '../stages/registry.js';
import type { StageContext, StageKind } from '../stages/contract.js';
import { FileTracker } from '../tracking/file-tracker.js';
import { createRng } from '../util/rng.js';
import { cpuSecondsSince } from '../util/cpu.js';
import { describeLiveProgress, liveProgressWriter } from './live-progress.js';
import { emit } from './events.js';

export interface WorkerOptions {
  force?: boolean;
  /** How often to look again while another process holds the stage's lock. */
  pollMs?: number;
}

export type WorkerOutcome = 'computed' | 'cached';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function initTensors(def: StageDef): Promise<string> {
  const { initBackend } = await import('../engine/backend.js');
  const name = await initBackend(def.backend ?? 'auto');
  if (def.backend !== null && name !== def.backend) {
    throw new Error(`stage ${def.key} was planned for backend '${def.backend}' but '${name}' loaded; re-plan with --backend ${name}`);
  }
  return name;
}

/**
 * The WASM backend reports an exhausted heap as a bare `Aborted()` or an out-of-bounds access, which
 * names nothing the user can change: say what usually causes it and what to lower.
 */
export function explainWasmAbort(err: unknown, kind?: StageKind): unknown {
  if (!(err instanceof Error) || !/^Aborted\(|memory access out of bounds|out of memory/i.test(err.message)) return err;
  // A network's training: chunking its batches keeps the protocol, where a smaller batch changes it.
  const chunks =
    kind === 'eval'
      ? '; eval.micro_batch trains at the same batch in chunks (docs/models.md)'
      : kind === 'pretrain'
        ? '; metadd.pretrain.micro_batch trains an auxiliary network at the same batch in chunks (docs/models.md)'
        : '';
  return new Error(
    `${err.message.split('.')[0]}: the WebAssembly backend aborted, almost always because its 4 GB heap is full; ` +
      `lower what this stage holds at once (batch sizes; for MTT syn_steps or batch_syn; for MetaDD the number or width of the auxiliary networks)${chunks}`,
  );
}

/** How often a worker waiting for another process's stage says so again (the plain log's progress interval). */
const WAIT_NOTE_MS = 30_000;

/** Who this worker waits for: a process computing the stage, or one that a signal stopped (which waits for a person). */
async function describeOtherHolder(store: Store, key: string, now: number): Promise<string> {
  const paused = (await store.lockState(key)).pausedPid;
  if (paused !== undefined) {
    return `process ${paused} holds this stage and is stopped by a signal: \`kill -CONT ${paused}\` (or \`fg\` in its terminal) lets it go on; once it has ended, this run takes the stage over`;
  }
  const theirs = store.readProgress(key);
  return `another process is computing this stage${theirs ? ` (${describeLiveProgress(theirs, now)})` : ''}`;
}

/**
 * Runs one stage over the store: the unit of work of every executor. Takes the stage's lock (or
 * waits while another process computes it), runs the implementation into a temporary directory and
 * commits it atomically. An interrupted run leaves its checkpoints in the scratch directory.
 */
export async function runStageWorker(storeRoot: string, key: string, options: WorkerOptions = {}): Promise<WorkerOutcome> {
  const store = new Store(storeRoot);
  const def = store.readStageDef(key);
  if (store.has(key) && !options.force) {
    emit({ type: 'status', key, status: 'cached' });
    return 'cached';
  }
  let release = await store.tryLock(key);
  let lastWaitNote = -Infinity;
  while (!release) {
    // Said once, then every WAIT_NOTE_MS with how far the other process has got: a plain log prints each note.
    const now = Date.now();
    if (now - lastWaitNote >= WAIT_NOTE_MS) {
      lastWaitNote = now;
      emit({ type: 'status', key, status: 'waiting', detail: await describeOtherHolder(store, key, now) });
    }
    await sleep(options.pollMs ?? 500);
    if (store.has(key) && !options.force) {
      emit({ type: 'status', key, status: 'cached' });
      return 'cached';
    }
    release = await store.tryLock(key);
  }
  const controller = new AbortController();
  let tmp: string | undefined;
  // Stop at once rather than when the stage next looks at its signal: the output so far is in tmp/
  // (removed here) and checkpoints in scratch/ are written atomically, so nothing is lost or torn.
  // The lock needs no release: its owner file names this pid, which the next holder sees is dead.
  const onSignal = (): void => {
    controller.abort(new Error('interrupted'));
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (store.has(key) && !options.force) {
      emit({ type: 'status', key, status: 'cached' });
      return 'cached';
    }
    tmp = store.newTmpDir(key);
    const started = Date.now();
    const cpuAtStart = process.cpuUsage();
    const resumed = store.hasPartial(key);
    const recordProgress = liveProgressWriter(store, key);
    emit({ type: 'status', key, status: 'started' });
    const impl = await loadStage(def.kind);
    const backend = def.needsTensors ? await initTensors(def) : 'none';
    const inputs = Object.fromEntries(Object.entries(def.inputs).map(([name, k]) => [name, store.view(k)]));
    let lastEmit = 0;
    const ctx: StageContext = {
      key,
      kind: def.kind,
      params: { ...def.params, ...def.locations },
      inputs,
      outDir: tmp,
      scratchDir: store.scratchDir(key),
      rng: createRng(def.seedKey),
      progress: {
        update: (done, total, message) => {
          recordProgress(done, total, message);
          const now = Date.now();
          if (now - lastEmit < 200 && done < total) return;
          lastEmit = now;
          emit({ type: 'progress', key, done, total, message });
        },
      },
      track: new FileTracker(tmp),
      backend,
      signal: controller.signal,
      log: (message) => process.stderr.write(`[${def.label}] ${message}\n`),
    };
    ctx.track.tag('metadd.stage_kind', def.kind);
    ctx.track.tag('metadd.cache_key', key);
    ctx.track.tag('metadd.backend', backend);
    try {
      await impl.run(ctx);
    } catch (err) {
      throw explainWasmAbort(err, def.kind);
    }
    if (controller.signal.aborted) throw controller.signal.reason as Error;
    writeFileSync(join(tmp, 'stage.json'), `${JSON.stringify(def, null, 2)}\n`);
    await store.commit(key, def.kind, def.label, tmp, options.force === true, {
      seconds: (Date.now() - started) / 1000,
      cpuSeconds: cpuSecondsSince(cpuAtStart),
      resumed,
    });
    tmp = undefined;
    rmSync(store.scratchDir(key), { recursive: true, force: true });
    emit({ type: 'status', key, status: 'done' });
    return 'computed';
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await release();
  }
}

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import lockfile from 'proper-lockfile';
import { flattenParams, scalarToString } from './flatten.js';
import { readJsonIfExists, writeJsonAtomic } from './fs-atomic.js';
import { assertSafeId, objectDir, runDir, stageSyncDir } from './layout.js';
import {
  BatchBuilder,
  MlflowClient,
  MlflowError,
  MlflowValidationError,
  backoffDelay,
  batchProblems,
  isTransient,
  type BatchItem,
  type KeyValue,
  type Run,
  type RunStatusName,
  type WireMetric,
} from './mlflow-client.js';
import type { TrackRecord } from './records.js';
import { readRecords } from './records-io.js';
import { readRunLog, runRecordsPath, RUN_SPEC_DIR, type RunLog, type RunLogStage, type StageRunStatus } from './run-log.js';

/**
 * Offline-first sync: `metadd run` writes everything locally (stage artifacts with their
 * `records.jsonl`, the run log); this module projects that onto an MLflow server, as often as
 * needed, sending each thing once.
 *
 * - One parent MLflow run per metadd run id, one child run per stage the run computed.
 * - A stage that was cached is not logged again: the parent lists the child run that logged it.
 * - What was sent is kept per destination (tracking URI + experiment name) in
 *   `<root>/runs/<runId>/sync-state.json` and `<root>/sync/<destination>/<key>.json`, rewritten
 *   atomically after every acknowledged request. Records are sent in file order and acknowledged
 *   by index.
 * - runs/create has no idempotency key, so every create is preceded by a search on the identifying
 *   tags (set in the create call itself), and a create that failed ambiguously is never retried
 *   blindly: the search runs again first.
 * - Metric points are sent exactly once: before a metric request is sent the state records that
 *   the range may be on the server; any later attempt on that range (a retry, or the next sync
 *   after a crash) first reads the metric history and drops points already there. Identity of a
 *   point is (key, step, timestamp, value), the same as the SQL store's primary key.
 */

export interface SyncDestination {
  trackingUri: string;
  experimentName: string;
}

export type SyncProgress =
  | { type: 'parent'; mlflowRunId: string; action: 'created' | 'adopted' | 'resumed' }
  | { type: 'stage'; key: string; label: string; mlflowRunId: string; action: 'created' | 'adopted' | 'resumed' | 'reused' | 'failed-logged' }
  | { type: 'records'; target: 'run' | 'stage'; key?: string; label: string; acked: number; total: number }
  | { type: 'artifact'; target: 'run' | 'stage'; key?: string; label: string; path: string };

export interface SyncOptions {
  root: string;
  runId: string;
  client: MlflowClient;
  experimentName: string;
  /** Awaited: a slow callback slows the sync (the tests use this to stop the server mid-sync). */
  onProgress?: (event: SyncProgress) => void | Promise<void>;
}

export interface SyncStageOutcome {
  key: string;
  label: string;
  status: StageRunStatus;
  mlflowRunId?: string;
  outcome: 'logged' | 'reused' | 'failed-logged' | 'skipped' | 'error' | 'not-reached';
}

export interface SyncSummary {
  runId: string;
  destination: SyncDestination;
  experimentId?: string;
  parentRunId?: string;
  stages: SyncStageOutcome[];
  /** Cached stages and the child runs (logged by earlier runs) they point to. */
  reused: { key: string; label: string; mlflowRunId: string }[];
  /** Sent by this call. */
  sent: { metrics: number; params: number; tags: number; artifacts: number };
  /** Records not yet acknowledged by the server for this destination, after this call. */
  pending: number;
  /** Problems with the data (a bad key, a missing artifact file): these need a fix, not a retry. */
  errors: string[];
  /** Set when the server could not be reached (after retries): run the sync again later. */
  unavailable?: string;
  complete: boolean;
}

// -------------------------------------------------------------------------------------------
// State files

const STATE_VERSION = 1;
/** Verify every batch: used for a run found on the server that the local state does not know. */
const VERIFY_ALL = Number.MAX_SAFE_INTEGER;

interface StreamState {
  /** Records [0, acked) are on the server. */
  acked: number;
  /** Batches starting before this index may already be (partly) on the server: check first. */
  verifyBefore: number;
}

interface TargetState extends StreamState {
  mlflowRunId: string;
  paramsSent: boolean;
  filesSent: boolean;
  /** The terminal status that was last sent with runs/update. */
  statusSent?: string;
  /** Of the parent's status tags and run.json as last sent. */
  summaryDigest?: string;
}

interface StageSyncState extends TargetState {
  version: number;
  destination: SyncDestination;
  key: string;
  experimentId: string;
  /** The metadd run that logged this stage; other runs only reference it. */
  metaddRunId: string;
  /** Logged by another metadd run or another store (found by its cache key): reference only. */
  external: boolean;
}

interface RunDestinationState {
  destination: SyncDestination;
  experimentId?: string;
  parent?: TargetState;
  failedChildren: Record<string, string>;
  reused: Record<string, string>;
}

interface RunSyncFile {
  version: number;
  lastDestination?: string;
  destinations: Record<string, RunDestinationState>;
}

export const RUN_SYNC_STATE_FILE = 'sync-state.json';

export function destinationId(dest: SyncDestination): string {
  return createHash('sha256').update(`${dest.trackingUri}\n${dest.experimentName}`).digest('hex').slice(0, 16);
}

function runSyncStatePath(root: string, runId: string): string {
  return join(runDir(root, runId), RUN_SYNC_STATE_FILE);
}

function stageStatePath(root: string, destId: string, key: string): string {
  return join(stageSyncDir(root, destId), `${key}.json`);
}

async function readRunSyncFile(root: string, runId: string): Promise<RunSyncFile> {
  const f = await readJsonIfExists<RunSyncFile>(runSyncStatePath(root, runId));
  if (!f) return { version: STATE_VERSION, destinations: {} };
  if (f.version !== STATE_VERSION) throw new Error(`${runSyncStatePath(root, runId)}: unknown sync state version ${f.version}`);
  return f;
}

// -------------------------------------------------------------------------------------------
// Public entry points

/**
 * Send a run log and the stages it computed to MLflow. Never throws for server problems: an
 * unreachable server ends the call with `unavailable` set and the rest pending; a rejected item
 * (bad key, missing file) is listed in `errors` and the other stages go on. Throws for local
 * problems only (no run log, corrupt state, another sync of the same run holding the lock).
 */
export async function syncRun(opts: SyncOptions): Promise<SyncSummary> {
  const { root, runId, client, experimentName } = opts;
  assertSafeId(runId, 'run id');
  const log = await readRunLog(root, runId);
  const destination: SyncDestination = { trackingUri: client.baseUrl, experimentName };
  const destId = destinationId(destination);
  const statePath = runSyncStatePath(root, runId);

  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(statePath, {
      realpath: false,
      stale: 30_000,
      onCompromised: (err) => {
        compromised = err;
      },
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') throw new Error(`another sync of run ${runId} is in progress (lock ${statePath}.lock)`, { cause: err });
    throw err;
  }

  const summary: SyncSummary = {
    runId,
    destination,
    stages: log.stages.map((s) => ({ key: s.key, label: s.label, status: s.status, outcome: 'not-reached' })),
    reused: [],
    sent: { metrics: 0, params: 0, tags: 0, artifacts: 0 },
    pending: 0,
    errors: [],
    complete: false,
  };
  try {
    const file = await readRunSyncFile(root, runId);
    file.lastDestination = destId;
    const state = (file.destinations[destId] ??= { destination, failedChildren: {}, reused: {} });
    const saveRun = async (): Promise<void> => {
      if (compromised) throw new Error(`lost the sync lock of run ${runId}: ${compromised.message}`);
      await writeJsonAtomic(statePath, file);
    };
    const s = new RunSync(opts, log, destId, state, saveRun, summary, () => compromised);
    try {
      await s.run();
    } catch (err) {
      if (isTransient(err)) summary.unavailable = (err as Error).message;
      else if (err instanceof MlflowError) summary.errors.push((err as Error).message);
      else throw err;
    }
    summary.pending = await pendingFor(root, log, destId);
    summary.complete = summary.unavailable === undefined && summary.errors.length === 0 && summary.pending === 0;
    return summary;
  } finally {
    await release().catch(() => undefined);
  }
}

/**
 * Records not yet on the server, for the "N records pending" message. Counts the run's own
 * records and those of the stages it computed. `destination` defaults to the one the run was
 * last synced to; a run never synced has all its records pending.
 */
export async function pendingCount(root: string, runId: string, destination?: SyncDestination): Promise<number> {
  const log = await readRunLog(root, runId);
  const file = await readRunSyncFile(root, runId);
  const destId = destination ? destinationId(destination) : file.lastDestination;
  return pendingFor(root, log, destId);
}

async function pendingFor(root: string, log: RunLog, destId: string | undefined): Promise<number> {
  const file = await readRunSyncFile(root, log.runId);
  const state = destId ? file.destinations[destId] : undefined;
  const runRecords = await readRecords(runRecordsPath(root, log.runId));
  let pending = Math.max(0, runRecords.length - (state?.parent?.acked ?? 0));
  for (const stage of log.stages) {
    if (stage.status !== 'computed' && stage.status !== 'cached') continue;
    const st = destId ? await readJsonIfExists<StageSyncState>(stageStatePath(root, destId, stage.key)) : undefined;
    // A stage logged by another run is that run's business.
    if (st && (st.external || st.metaddRunId !== log.runId)) continue;
    // A cached stage with no state may well be on the server already (found at sync time).
    if (!st && stage.status === 'cached') continue;
    const records = await readRecords(join(objectDir(root, stage.key), 'records.jsonl'));
    pending += Math.max(0, records.length - (st?.acked ?? 0));
  }
  return pending;
}

// -------------------------------------------------------------------------------------------
// The sync of one run

const activeRuns = new WeakMap<MlflowClient, Set<string>>();

const TERMINAL_STATUS: Record<string, RunStatusName | undefined> = {
  finished: 'FINISHED',
  failed: 'FAILED',
  interrupted: 'KILLED',
  running: undefined,
};

type Where = { target: 'run' | 'stage'; key?: string; label: string };

interface StageDefinition {
  key: string;
  kind: string;
  version?: number;
  params?: Record<string, unknown>;
  inputs?: Record<string, string>;
  label?: string;
  spec?: unknown;
}

class RunSync {
  private experimentId = '';
  private parentId = '';

  constructor(
    private readonly opts: SyncOptions,
    private readonly log: RunLog,
    private readonly destId: string,
    private readonly state: RunDestinationState,
    private readonly saveRun: () => Promise<void>,
    private readonly summary: SyncSummary,
    private readonly lockLost: () => Error | undefined,
  ) {}

  private get client(): MlflowClient {
    return this.opts.client;
  }

  async run(): Promise<void> {
    const exp = await this.client.getOrCreateExperiment(this.opts.experimentName);
    if (this.state.experimentId !== undefined && this.state.experimentId !== exp.experiment_id) {
      // Same URL and name but another experiment: the server's database was replaced.
      this.state.parent = undefined;
      this.state.failedChildren = {};
      this.state.reused = {};
    }
    this.state.experimentId = exp.experiment_id;
    this.experimentId = exp.experiment_id;
    this.summary.experimentId = exp.experiment_id;
    await this.saveRun();

    const parent = await this.ensureParent();
    this.parentId = parent.mlflowRunId;
    this.summary.parentRunId = parent.mlflowRunId;

    for (const [i, stage] of this.log.stages.entries()) {
      const outcome = this.summary.stages[i];
      try {
        await this.syncStage(stage, outcome);
      } catch (err) {
        // Transient: the server is gone, stop here. MlflowError otherwise: the data was refused
        // (bad key, missing file, HTTP 400): report it and go on with the other stages.
        if (isTransient(err) || !(err instanceof MlflowError)) throw err;
        outcome.outcome = 'error';
        this.summary.errors.push(`stage ${stage.label} (${stage.key}): ${err.message}`);
      }
    }

    await this.syncParentContent(parent);
  }

  // -- parent --------------------------------------------------------------------------------

  private async ensureParent(): Promise<TargetState> {
    const existing = this.state.parent;
    if (existing) {
      if (await this.runIsActive(existing.mlflowRunId)) {
        await this.progress({ type: 'parent', mlflowRunId: existing.mlflowRunId, action: 'resumed' });
        return existing;
      }
      this.state.parent = undefined;
    }
    const filter = `tags.\`metadd.run_id\` = '${this.log.runId}' AND tags.\`metadd.role\` = 'run'`;
    const search = async (): Promise<Run | undefined> => (await this.search(filter))[0];
    const { spec } = this.log;
    const started = Date.parse(this.log.startedAt);
    const runName = `${spec.name} ${this.log.startedAt.replace('T', ' ').slice(0, 19)}`;
    const tags: KeyValue[] = [
      { key: 'metadd.run_id', value: this.log.runId },
      { key: 'metadd.role', value: 'run' },
      { key: 'mlflow.runName', value: runName },
      { key: 'mlflow.source.name', value: spec.path || spec.name },
      { key: 'mlflow.source.type', value: 'LOCAL' },
      { key: 'mlflow.user', value: safeUser() },
      { key: 'metadd.spec_name', value: spec.name },
      { key: 'metadd.version', value: this.log.metaddVersion },
      { key: 'metadd.backend', value: this.log.backend },
    ];
    if (this.log.gitCommit) tags.push({ key: 'mlflow.source.git.commit', value: this.log.gitCommit });
    const { run, created } = await this.createOnce(search, { runName, startTime: started, tags });
    const target: TargetState = {
      mlflowRunId: run.info.run_id,
      acked: 0,
      verifyBefore: created ? 0 : VERIFY_ALL,
      paramsSent: false,
      filesSent: false,
    };
    this.state.parent = target;
    await this.saveRun();
    await this.progress({ type: 'parent', mlflowRunId: target.mlflowRunId, action: created ? 'created' : 'adopted' });
    return target;
  }

  private async syncParentContent(parent: TargetState): Promise<void> {
    const runId = parent.mlflowRunId;
    const dir = runDir(this.opts.root, this.log.runId);
    const specParams = flattenParams(this.log.resolvedSpec);
    if (!parent.paramsSent) {
      const { params, skipped } = loggableParams(specParams, this.client);
      const tags: KeyValue[] = [];
      if (skipped.length) {
        // Explicit, not silent: the full spec is uploaded as spec/resolved.json anyway.
        tags.push({ key: 'metadd.params_not_logged', value: `${skipped.length} spec keys MLflow refuses as param names (see spec/resolved.json): ${skipped.join(', ')}` });
      }
      await this.sendSimple(runId, params, tags);
      parent.paramsSent = true;
      await this.saveRun();
    }

    const records = await readRecords(runRecordsPath(this.opts.root, this.log.runId));
    try {
      await this.syncStream('run', undefined, this.runWhere().label, runId, records, dir, parent, new Map(Object.entries(specParams)), () => this.saveRun());
    } catch (err) {
      // As for a stage: a refused record stays pending, the rest of the run is still sent.
      if (isTransient(err) || !(err instanceof MlflowError)) throw err;
      this.summary.errors.push(`run records: ${err.message}`);
    }

    if (!parent.filesSent) {
      const specDir = join(dir, RUN_SPEC_DIR);
      const specCopy = join(specDir, basename(this.log.spec.path || 'spec.yaml'));
      if (this.log.spec.path && existsSync(specCopy)) await this.upload(this.runWhere(), runId, `spec/${basename(specCopy)}`, { file: specCopy });
      await this.upload(this.runWhere(), runId, 'spec/resolved.json', { data: `${JSON.stringify(this.log.resolvedSpec, null, 2)}\n` });
      await this.upload(this.runWhere(), runId, 'spec/cells.json', { data: `${JSON.stringify(this.log.cells, null, 2)}\n` });
      parent.filesSent = true;
      await this.saveRun();
    }

    // These change while a run is in progress, so they are sent again whenever they change.
    const counts: Record<string, number> = {};
    for (const st of this.log.stages) counts[st.status] = (counts[st.status] ?? 0) + 1;
    const reusedIds = [...new Set(Object.values(this.state.reused))];
    const tags: KeyValue[] = [
      { key: 'metadd.status', value: this.log.status },
      { key: 'metadd.stages', value: Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(' ') || 'none' },
    ];
    if (reusedIds.length) tags.push({ key: 'metadd.reused_run_ids', value: reusedIds.join(',') });
    const reusedDetail = this.log.stages
      .filter((st) => this.state.reused[st.key])
      .map((st) => ({ key: st.key, kind: st.kind, label: st.label, mlflow_run_id: this.state.reused[st.key] }));
    const runJson = `${JSON.stringify(this.log, null, 2)}\n`;
    const digest = createHash('sha256').update(JSON.stringify([tags, reusedDetail, runJson])).digest('hex');
    if (parent.summaryDigest !== digest) {
      await this.sendSimple(runId, [], tags);
      if (reusedDetail.length) await this.upload(this.runWhere(), runId, 'metadd/reused_stages.json', { data: `${JSON.stringify(reusedDetail, null, 2)}\n` });
      await this.upload(this.runWhere(), runId, 'metadd/run.json', { data: runJson });
      parent.summaryDigest = digest;
      await this.saveRun();
    }

    const status = TERMINAL_STATUS[this.log.status];
    if (status && parent.statusSent !== status) {
      const end = this.log.finishedAt ? Date.parse(this.log.finishedAt) : Date.now();
      await this.client.updateRun(runId, { status, endTime: end });
      parent.statusSent = status;
      await this.saveRun();
    }
  }

  // -- stages ----------------------------------------------------------------------------------

  private async syncStage(stage: RunLogStage, outcome: SyncStageOutcome): Promise<void> {
    assertSafeId(stage.key, 'cache key');
    if (stage.status === 'skipped') {
      outcome.outcome = 'skipped';
      return;
    }
    if (stage.status === 'failed') {
      outcome.mlflowRunId = await this.syncFailedStage(stage);
      outcome.outcome = 'failed-logged';
      return;
    }
    const statePath = stageStatePath(this.opts.root, this.destId, stage.key);
    await mkdir(stageSyncDir(this.opts.root, this.destId), { recursive: true });
    let lost: Error | undefined;
    // Two runs that share a stage may sync at once; the stage lock makes one of them wait.
    const release = await lockfile.lock(statePath, {
      realpath: false,
      stale: 30_000,
      retries: { retries: 600, minTimeout: 100, maxTimeout: 1000 },
      onCompromised: (err) => {
        lost = err;
      },
    });
    try {
      const save = async (st: StageSyncState): Promise<void> => {
        const l = lost ?? this.lockLost();
        if (l) throw new Error(`lost the sync lock of stage ${stage.key}: ${l.message}`);
        await writeJsonAtomic(statePath, st);
      };
      const records = await readRecords(join(objectDir(this.opts.root, stage.key), 'records.jsonl'));
      const resolved = await this.resolveStageRun(stage, statePath, save, records);
      outcome.mlflowRunId = resolved.state.mlflowRunId;
      if (resolved.reused) {
        outcome.outcome = 'reused';
        this.state.reused[stage.key] = resolved.state.mlflowRunId;
        this.summary.reused.push({ key: stage.key, label: stage.label, mlflowRunId: resolved.state.mlflowRunId });
        await this.saveRun();
        await this.progress({ type: 'stage', key: stage.key, label: stage.label, mlflowRunId: resolved.state.mlflowRunId, action: 'reused' });
        return;
      }
      await this.progress({ type: 'stage', key: stage.key, label: stage.label, mlflowRunId: resolved.state.mlflowRunId, action: resolved.action });
      await this.syncStageContent(stage, resolved.def, resolved.state, records, () => save(resolved.state));
      outcome.outcome = 'logged';
    } finally {
      await release().catch(() => undefined);
    }
  }

  /**
   * Which MLflow run holds this stage: ours (create, adopt after a crash, resume) or another
   * run's (reuse). A computed stage found on the server under another metadd run was logged
   * from another store or by an earlier run: it is referenced, not duplicated.
   */
  private async resolveStageRun(
    stage: RunLogStage,
    statePath: string,
    save: (st: StageSyncState) => Promise<void>,
    records: TrackRecord[],
  ): Promise<{ state: StageSyncState; reused: boolean; action: 'created' | 'adopted' | 'resumed'; def: StageDefinition | undefined }> {
    let st = await readJsonIfExists<StageSyncState>(statePath);
    if (st && (st.version !== STATE_VERSION || st.experimentId !== this.experimentId)) st = undefined;
    if (st && !(await this.runIsActive(st.mlflowRunId))) st = undefined;
    const def = await this.readStageDefinition(stage);
    if (st) {
      const ours = !st.external && st.metaddRunId === this.log.runId;
      return { state: st, reused: !ours, action: 'resumed', def };
    }

    const keyFilter = `tags.\`metadd.cache_key\` = '${stage.key}' AND tags.\`metadd.role\` = 'stage' AND tags.\`metadd.stage_status\` = 'computed'`;
    const hits = await this.search(keyFilter, ['attributes.start_time ASC']);
    const mine = hits.find((r) => tagOf(r, 'metadd.run_id') === this.log.runId);
    const base = {
      version: STATE_VERSION,
      destination: { trackingUri: this.client.baseUrl, experimentName: this.opts.experimentName },
      key: stage.key,
      experimentId: this.experimentId,
      acked: 0,
      paramsSent: false,
      filesSent: false,
    };
    if (!mine && hits.length > 0) {
      const other = hits[0];
      const ref: StageSyncState = {
        ...base,
        mlflowRunId: other.info.run_id,
        metaddRunId: tagOf(other, 'metadd.run_id') ?? '',
        external: true,
        verifyBefore: 0,
        statusSent: 'FINISHED',
      };
      await save(ref);
      return { state: ref, reused: true, action: 'resumed', def };
    }
    if (!mine && stage.status === 'cached' && !def) {
      throw new MlflowValidationError([`stage was cached but neither its artifact (${objectDir(this.opts.root, stage.key)}) nor an MLflow run with its cache key exists`]);
    }
    if (!def) throw new MlflowValidationError([`stage artifact ${objectDir(this.opts.root, stage.key)} has no stage.json`]);

    let run: Run;
    let created = false;
    if (mine) {
      run = mine;
    } else {
      const ownFilter = `${keyFilter} AND tags.\`metadd.run_id\` = '${this.log.runId}'`;
      ({ run, created } = await this.createOnce(async () => (await this.search(ownFilter))[0], this.stageCreateRequest(stage, def, records)));
    }
    const fresh: StageSyncState = {
      ...base,
      mlflowRunId: run.info.run_id,
      metaddRunId: this.log.runId,
      external: false,
      verifyBefore: created ? 0 : VERIFY_ALL,
    };
    await save(fresh);
    return { state: fresh, reused: false, action: created ? 'created' : 'adopted', def };
  }

  private stageCreateRequest(stage: RunLogStage, def: StageDefinition, records: TrackRecord[]): { runName: string; startTime: number; tags: KeyValue[] } {
    const tags: KeyValue[] = [
      { key: 'mlflow.parentRunId', value: this.parentId },
      { key: 'metadd.cache_key', value: stage.key },
      { key: 'metadd.role', value: 'stage' },
      { key: 'metadd.stage_status', value: 'computed' },
      { key: 'metadd.stage_kind', value: stage.kind },
      { key: 'metadd.run_id', value: this.log.runId },
      { key: 'metadd.spec_name', value: this.log.spec.name },
      { key: 'mlflow.runName', value: stage.label },
      { key: 'mlflow.source.name', value: this.log.spec.path || this.log.spec.name },
      { key: 'mlflow.source.type', value: 'LOCAL' },
      { key: 'mlflow.user', value: safeUser() },
    ];
    if (def.version !== undefined) tags.push({ key: 'metadd.stage_version', value: String(def.version) });
    if (stage.status === 'cached') tags.push({ key: 'metadd.logged_from_cache', value: 'true' });
    if (this.log.gitCommit) tags.push({ key: 'mlflow.source.git.commit', value: this.log.gitCommit });
    for (const [name, key] of Object.entries(def.inputs ?? {})) {
      if (!batchProblems({ tags: [{ key: `metadd.input.${name}`, value: key }] }, this.client.limits).length) {
        tags.push({ key: `metadd.input.${name}`, value: key });
      }
    }
    // The stage's first metric is the best record of when it ran; the run's start otherwise.
    let start = Number.POSITIVE_INFINITY;
    for (const r of records) if (r.type === 'metric' && r.timestamp < start) start = r.timestamp;
    return { runName: stage.label, startTime: Number.isFinite(start) ? Math.round(start) : Date.parse(this.log.startedAt), tags };
  }

  private async syncStageContent(
    stage: RunLogStage,
    def: StageDefinition | undefined,
    st: StageSyncState,
    records: TrackRecord[],
    save: () => Promise<void>,
  ): Promise<void> {
    const dir = objectDir(this.opts.root, stage.key);
    const runId = st.mlflowRunId;
    const stageParams = flattenParams(def?.params ?? {});
    if (!st.paramsSent) {
      const { params, skipped } = loggableParams(stageParams, this.client);
      const tags: KeyValue[] = [];
      if (skipped.length) tags.push({ key: 'metadd.params_not_logged', value: `${skipped.length} parameter keys MLflow refuses (see metadd/stage.json): ${skipped.join(', ')}` });
      await this.sendSimple(runId, params, tags);
      st.paramsSent = true;
      await save();
    }
    await this.syncStream('stage', stage.key, stage.label, runId, records, dir, st, new Map(Object.entries(stageParams)), save);
    if (!st.filesSent) {
      const stageJson = join(dir, 'stage.json');
      if (existsSync(stageJson)) await this.upload({ target: 'stage', key: stage.key, label: stage.label }, runId, 'metadd/stage.json', { file: stageJson });
      st.filesSent = true;
      await save();
    }
    if (st.statusSent !== 'FINISHED') {
      let end = Number.NEGATIVE_INFINITY;
      for (const r of records) if (r.type === 'metric' && r.timestamp > end) end = r.timestamp;
      if (!Number.isFinite(end)) end = this.log.finishedAt ? Date.parse(this.log.finishedAt) : Date.parse(this.log.startedAt);
      await this.client.updateRun(runId, { status: 'FINISHED', endTime: Math.round(end) });
      st.statusSent = 'FINISHED';
      await save();
    }
  }

  private async readStageDefinition(stage: RunLogStage): Promise<StageDefinition | undefined> {
    const path = join(objectDir(this.opts.root, stage.key), 'stage.json');
    const def = await readJsonIfExists<StageDefinition>(path);
    if (def && def.key !== undefined && def.key !== stage.key) {
      throw new MlflowValidationError([`${path} says key ${def.key}, the run log says ${stage.key}`]);
    }
    return def;
  }

  /** A failed stage gets a FAILED child run carrying its error, under this run only. */
  private async syncFailedStage(stage: RunLogStage): Promise<string> {
    const known = this.state.failedChildren[stage.key];
    if (known) {
      const run = await this.client.findRun(known);
      if (run && run.info.lifecycle_stage === 'active') {
        if (run.info.status === 'FAILED') return known;
        await this.finishFailed(known, stage);
        return known;
      }
    }
    const filter = `tags.\`metadd.cache_key\` = '${stage.key}' AND tags.\`metadd.run_id\` = '${this.log.runId}' AND tags.\`metadd.stage_status\` = 'failed'`;
    const { run } = await this.createOnce(async () => (await this.search(filter))[0], {
      runName: stage.label,
      startTime: Date.parse(this.log.startedAt),
      tags: [
        { key: 'mlflow.parentRunId', value: this.parentId },
        { key: 'metadd.cache_key', value: stage.key },
        { key: 'metadd.role', value: 'stage' },
        { key: 'metadd.stage_status', value: 'failed' },
        { key: 'metadd.stage_kind', value: stage.kind },
        { key: 'metadd.run_id', value: this.log.runId },
        { key: 'metadd.spec_name', value: this.log.spec.name },
        { key: 'mlflow.runName', value: stage.label },
      ],
    });
    this.state.failedChildren[stage.key] = run.info.run_id;
    await this.saveRun();
    await this.finishFailed(run.info.run_id, stage);
    await this.progress({ type: 'stage', key: stage.key, label: stage.label, mlflowRunId: run.info.run_id, action: 'failed-logged' });
    return run.info.run_id;
  }

  private async finishFailed(runId: string, stage: RunLogStage): Promise<void> {
    const error = stage.error ?? 'failed (no error message recorded)';
    await this.sendSimple(runId, [], [
      { key: 'metadd.error', value: error },
      { key: 'mlflow.note.content', value: `Stage failed:\n\n${error}` },
    ]);
    const end = this.log.finishedAt ? Date.parse(this.log.finishedAt) : Date.now();
    await this.client.updateRun(runId, { status: 'FAILED', endTime: end });
  }

  // -- records -----------------------------------------------------------------------------------

  /**
   * Send records [acked, end) in order: params, tags and metrics in log-batch requests, each
   * artifact as its own upload. The index of the last acknowledged record is saved after every
   * request, so a crash or an outage resumes exactly where the server stopped acknowledging.
   */
  private async syncStream(
    target: 'run' | 'stage',
    key: string | undefined,
    label: string,
    runId: string,
    records: TrackRecord[],
    baseDir: string,
    stream: StreamState,
    knownParams: Map<string, string>,
    save: () => Promise<void>,
  ): Promise<void> {
    const seen = new Map(knownParams);
    const conflict = (r: { key: string; value: string }, at: number): MlflowValidationError | undefined => {
      const prev = seen.get(r.key);
      if (prev !== undefined && prev !== r.value) {
        return new MlflowValidationError([
          `record ${at + 1}: param ${JSON.stringify(r.key)} logged again with another value (${JSON.stringify(prev.slice(0, 80))} then ${JSON.stringify(r.value.slice(0, 80))}); MLflow params are write-once: use a metric or a tag`,
        ]);
      }
      seen.set(r.key, r.value);
      return undefined;
    };
    for (let i = 0; i < Math.min(stream.acked, records.length); i++) {
      const r = records[i];
      if (r.type === 'param') seen.set(r.key, r.value);
    }
    const history = new Map<string, Set<string>>();

    let i = stream.acked;
    while (i < records.length) {
      const first = records[i];
      if (first.type === 'artifact') {
        const file = resolveInside(baseDir, first.path);
        if (!existsSync(file) || !(await stat(file)).isFile()) {
          throw new MlflowValidationError([`record ${i + 1}: declared artifact ${JSON.stringify(first.path)} is not a file in ${baseDir}`]);
        }
        await this.upload({ target, key, label }, runId, relative(baseDir, file).split(sep).join('/'), { file });
        stream.acked = i + 1;
        await save();
        await this.progress({ type: 'records', target, key, label, acked: stream.acked, total: records.length });
        i++;
        continue;
      }
      const batch = new BatchBuilder(runId, this.client.limits);
      const counts = { metrics: 0, params: 0, tags: 0 };
      let j = i;
      for (; j < records.length; j++) {
        const r = records[j];
        if (r.type === 'artifact') break;
        if (r.type === 'param') {
          const c = conflict(r, j);
          if (c) {
            // Send what precedes the bad record first, so that only it stays pending.
            if (j === i) throw c;
            break;
          }
        }
        let item: BatchItem;
        try {
          item = await this.prepareItem(runId, r, j);
        } catch (err) {
          if (j === i || !(err instanceof MlflowValidationError)) throw err;
          break;
        }
        if (!batch.add(item)) break;
        counts[item.kind === 'metric' ? 'metrics' : item.kind === 'param' ? 'params' : 'tags']++;
      }
      if (batch.metrics.length > 0) {
        counts.metrics = await this.sendMetricsOnce(runId, batch, i, j, stream, history, save);
      } else {
        await this.client.sendBatch(batch);
      }
      this.summary.sent.metrics += counts.metrics;
      this.summary.sent.params += counts.params;
      this.summary.sent.tags += counts.tags;
      stream.acked = j;
      await save();
      await this.progress({ type: 'records', target, key, label, acked: j, total: records.length });
      i = j;
    }
    if (stream.verifyBefore > stream.acked) {
      // Everything the server may have had is now reconciled; later records were never sent.
      stream.verifyBefore = stream.acked;
      await save();
    }
  }

  private async prepareItem(runId: string, r: Exclude<TrackRecord, { type: 'artifact' }>, at: number): Promise<BatchItem> {
    try {
      if (r.type === 'metric') {
        const metric = { key: r.key, value: r.value, step: r.step, timestamp: r.timestamp };
        const problems = batchProblems({ metrics: [metric] }, this.client.limits);
        if (problems.length) throw new MlflowValidationError(problems);
        return { kind: 'metric', metric };
      }
      const kv = { key: r.key, value: r.value };
      const prepared = await this.client.prepareLongValues(runId, r.type === 'param' ? { params: [kv] } : { tags: [kv] });
      return r.type === 'param' ? { kind: 'param', param: prepared.params![0] } : { kind: 'tag', tag: prepared.tags![0] };
    } catch (err) {
      if (err instanceof MlflowValidationError) throw new MlflowValidationError(err.problems.map((p) => `record ${at + 1}: ${p}`));
      throw err;
    }
  }

  /**
   * One metric-bearing request, exactly once. The range is marked as possibly-sent before the
   * request; a retry (here, or in a later sync after a crash) first drops the points the server
   * already has. The request itself is never retried blindly by the client.
   */
  private async sendMetricsOnce(
    runId: string,
    batch: BatchBuilder,
    from: number,
    to: number,
    stream: StreamState,
    history: Map<string, Set<string>>,
    save: () => Promise<void>,
  ): Promise<number> {
    let current = batch;
    for (let attempt = 1; ; attempt++) {
      if (from < stream.verifyBefore) current = await this.withoutKnownPoints(runId, current, history);
      if (stream.verifyBefore < to) {
        stream.verifyBefore = to;
        await save();
      }
      try {
        await this.client.sendBatch(current, { retry: false });
        for (const m of current.metrics) history.get(m.key)?.add(pointId(m));
        return current.metrics.length;
      } catch (err) {
        // The failed request may have been stored in part: what we knew of these keys is stale.
        for (const m of current.metrics) history.delete(m.key);
        if (!isTransient(err) || attempt >= this.client.retry.maxAttempts) throw err;
        await sleep(backoffDelay(this.client.retry, attempt));
      }
    }
  }

  private async withoutKnownPoints(runId: string, batch: BatchBuilder, history: Map<string, Set<string>>): Promise<BatchBuilder> {
    for (const key of new Set(batch.metrics.map((m) => m.key))) {
      if (history.has(key)) continue;
      const points = await this.client.getMetricHistory(runId, key);
      history.set(key, new Set(points.map(pointId)));
    }
    const out = new BatchBuilder(runId, this.client.limits);
    for (const p of batch.params) out.add({ kind: 'param', param: p });
    for (const t of batch.tags) out.add({ kind: 'tag', tag: t });
    for (const m of batch.metrics) {
      if (history.get(m.key)?.has(pointId(m))) continue;
      out.add({ kind: 'metric', metric: { key: m.key, value: decodeValue(m.value), step: m.step, timestamp: m.timestamp } });
    }
    return out;
  }

  // -- helpers -----------------------------------------------------------------------------------

  private async sendSimple(runId: string, params: KeyValue[], tags: KeyValue[]): Promise<void> {
    if (params.length === 0 && tags.length === 0) return;
    await this.client.logBatch(runId, { params, tags });
    this.summary.sent.params += params.length;
    this.summary.sent.tags += tags.length;
  }

  private async upload(where: Where, runId: string, path: string, source: { file: string } | { data: string }): Promise<void> {
    await this.client.uploadArtifact(runId, path, source);
    this.summary.sent.artifacts++;
    await this.progress({ type: 'artifact', ...where, path });
  }

  /**
   * Whether a run the local state names still exists on the server (it may have been deleted, or
   * the server's database replaced). Remembered per client for the life of the process, because a
   * run in progress syncs after every stage and would otherwise re-check every earlier stage.
   */
  private async runIsActive(runId: string): Promise<boolean> {
    let known = activeRuns.get(this.client);
    if (!known) activeRuns.set(this.client, (known = new Set()));
    if (known.has(runId)) return true;
    const run = await this.client.findRun(runId);
    const active = run !== undefined && run.info.lifecycle_stage === 'active';
    if (active) known.add(runId);
    return active;
  }

  private async search(filter: string, orderBy?: string[]): Promise<Run[]> {
    return (await this.client.searchRuns({ experimentIds: [this.experimentId], filter, orderBy, maxResults: 100 })).runs;
  }

  /**
   * runs/create is not idempotent: after a failed attempt the run may exist anyway, so the
   * search runs again before every attempt, and the client does not retry the create itself.
   */
  private async createOnce(
    search: () => Promise<Run | undefined>,
    req: { runName: string; startTime: number; tags: KeyValue[] },
  ): Promise<{ run: Run; created: boolean }> {
    // Tags with over-long values cannot go into runs/create (it truncates silently); they are
    // logged right after through log-batch, which stores the full value as an artifact.
    const limit = this.client.limits.tagValueLength;
    const inline = req.tags.filter((t) => t.value.length <= limit);
    const later = req.tags.filter((t) => t.value.length > limit);
    for (let attempt = 1; ; attempt++) {
      const found = await search();
      if (found) return { run: found, created: false };
      try {
        const run = await this.client.createRun({ experimentId: this.experimentId, runName: req.runName.slice(0, limit), startTime: req.startTime, tags: inline }, { retry: false });
        if (later.length) await this.client.logBatch(run.info.run_id, { tags: later });
        return { run, created: true };
      } catch (err) {
        if (!isTransient(err) || attempt >= this.client.retry.maxAttempts) throw err;
        await sleep(backoffDelay(this.client.retry, attempt));
      }
    }
  }

  private runWhere(): Where {
    return { target: 'run', label: `run ${this.log.runId}` };
  }

  private async progress(ev: SyncProgress): Promise<void> {
    await this.opts.onProgress?.(ev);
  }
}

// -------------------------------------------------------------------------------------------

function tagOf(run: Run, key: string): string | undefined {
  return run.data.tags?.find((t) => t.key === key)?.value;
}

/** Params whose keys MLflow accepts, and the keys it would refuse. */
function loggableParams(flat: Record<string, string>, client: MlflowClient): { params: KeyValue[]; skipped: string[] } {
  const params: KeyValue[] = [];
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(flat)) {
    if (batchProblems({ params: [{ key, value }] }, client.limits).length) skipped.push(key);
    else params.push({ key, value: scalarToString(value) });
  }
  return { params, skipped };
}

function resolveInside(base: string, rel: string): string {
  const abs = resolve(base, rel);
  const r = relative(base, abs);
  if (r === '' || r.startsWith('..') || resolve(base, r) !== abs) {
    throw new MlflowValidationError([`artifact path ${JSON.stringify(rel)} points outside ${base}`]);
  }
  return abs;
}

/**
 * The identity of a metric point as the server stores it. MLflow stores +-Infinity as
 * +-Number.MAX_VALUE and returns NaN as the string "NaN", so both sides map onto that.
 */
function pointId(m: WireMetric): string {
  return `${m.key}\u0000${m.step}\u0000${m.timestamp}\u0000${valueId(m.value)}`;
}

function valueId(v: WireMetric['value']): string {
  const n = decodeValue(v);
  if (Number.isNaN(n)) return 'NaN';
  if (n === Number.POSITIVE_INFINITY) return String(Number.MAX_VALUE);
  if (n === Number.NEGATIVE_INFINITY) return String(-Number.MAX_VALUE);
  return String(n);
}

function decodeValue(v: WireMetric['value']): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  return v === 'Infinity' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import lockfile from 'proper-lockfile';
import type { ArtifactView, StageKind } from '../stages/contract.js';
import { readJsonIfReadable } from '../util/read-json.js';
import { sha256File } from './hash.js';
import { holderState, readHolder, thisProcess, type Holder, type HolderState } from './holder.js';
import { objectPath } from './layout.js';

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

/** How the attempt that finished an artifact went: what `metadd plan` estimates the cost of its twins from. */
export interface ManifestCompute {
  /** Wall-clock seconds from the stage's start to its commit, under whatever load the machine had. */
  seconds: number;
  /**
   * CPU seconds (user + system) the worker process spent on the stage. Unlike `seconds` it does not
   * count time the process was paused or waiting for a core another process held; with a backend that
   * runs several threads it is above `seconds`. Absent in artifacts written before it was recorded.
   */
  cpuSeconds?: number;
  /** Whether it started from progress an earlier attempt saved (then `seconds` covers only the rest). */
  resumed: boolean;
}

export interface Manifest {
  key: string;
  kind: StageKind;
  label: string;
  createdAt: string;
  totalBytes: number;
  files: ManifestFile[];
  /** Absent in artifacts written before it was recorded. */
  compute?: ManifestCompute;
}

/**
 * A running stage's latest progress, which its worker keeps beside the stage's lock so that `metadd
 * status` in another terminal (or on another node of a shared store) can show it.
 */
export interface StageProgress {
  /** When this attempt started (ISO 8601). */
  startedAt: string;
  /** When the worker last wrote the file. */
  updatedAt: string;
  /** Units done of `total` (iterations, epochs, models: the stage's own), 0 of 0 before the first report. */
  done: number;
  total: number;
  message?: string;
  /**
   * The earlier report of this attempt its pace counts from, and when it came: the attempt's first
   * report (a stage that resumed from saved progress starts past 0, and is not credited with earlier
   * work), then one 5-10 minutes old, so that the pace follows the machine's current load.
   */
  paceDone?: number;
  paceAt?: string;
}

/** A stage definition as the store keeps it: everything a worker needs to run the stage on its own. */
export interface StageDef {
  key: string;
  /** Seeds the stage's random source; like the key but independent of the backend. */
  seedKey: string;
  kind: StageKind;
  version: number;
  params: Record<string, unknown>;
  /** Upstream artifacts by input name. */
  inputs: Record<string, string>;
  label: string;
  needsTensors: boolean;
  /** The backend the key was computed for, or null for backend-independent stages. */
  backend: string | null;
  spec: { name: string; file: string };
  /**
   * Where inputs live on this machine (absolute dataset paths). Given to the stage with its params but
   * left out of the key: the content is keyed by its digest, so moving the data keeps the cache.
   */
  locations?: Record<string, string>;
}

/**
 * How long a lock may go without a heartbeat before another process takes it over (the holder
 * refreshes it every third of this). Decides only for holders on other hosts of a shared filesystem:
 * on this host the process table says whether the holder is still there (holder.ts), so a dead one is
 * taken over at once and a paused or busy one never.
 */
const LOCK_STALE_MS = 15_000;
/** A takeover of a gone holder's lock takes milliseconds; one this old was left by a process that died in it. */
const TAKEOVER_STALE_MS = 10_000;

/** What lives under locks/ for a key: the lock itself (a directory), its holder's owner file, the progress file. */
const LOCK_FILE = /^(.+?)\.(lock|owner\.json|progress\.json)$/;

/**
 * The content-addressed artifact store. An artifact is a directory under objects/, named by its
 * cache key; it appears only complete: stages write into tmp/ and `commit` renames the directory
 * into place after writing its manifest, so a killed writer leaves nothing half-written visible.
 */
export class Store {
  constructor(readonly root: string) {}

  private dir(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  objectDir(key: string): string {
    return objectPath(this.root, key);
  }

  has(key: string): boolean {
    return existsSync(join(this.objectDir(key), 'manifest.json'));
  }

  manifest(key: string): Manifest {
    return JSON.parse(readFileSync(join(this.objectDir(key), 'manifest.json'), 'utf8')) as Manifest;
  }

  view(key: string): ArtifactView {
    const dir = this.objectDir(key);
    const manifest = this.manifest(key);
    const metaPath = join(dir, 'meta.json');
    const meta = existsSync(metaPath) ? (JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>) : {};
    return { key, kind: manifest.kind, dir, meta };
  }

  stageDefPath(key: string): string {
    return this.dir('stages', `${key}.json`);
  }

  writeStageDef(def: StageDef): void {
    const path = this.stageDefPath(def.key);
    if (existsSync(path)) return;
    this.writeAtomic(path, `${JSON.stringify(def, null, 2)}\n`);
  }

  readStageDef(key: string): StageDef {
    const path = this.stageDefPath(key);
    if (!existsSync(path)) throw new Error(`no stage definition for key ${key} in ${this.root} (plan the spec first)`);
    return JSON.parse(readFileSync(path, 'utf8')) as StageDef;
  }

  /** Persistent per-key working directory (checkpoints); survives failed attempts, removed on success. */
  scratchDir(key: string): string {
    const d = this.dir('scratch', key);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /**
   * The unfinished stages this store knows to be under way: held by a worker (or left locked by a
   * killed one) or with saved progress to resume from. Sorted; from the files under locks/ and scratch/.
   */
  keysUnderWay(): string[] {
    const keys = new Set<string>();
    const locks = this.dir('locks');
    if (existsSync(locks)) {
      for (const name of readdirSync(locks)) {
        const m = LOCK_FILE.exec(name);
        if (m) keys.add(m[1]);
      }
    }
    const scratch = this.dir('scratch');
    if (existsSync(scratch)) for (const key of readdirSync(scratch)) if (this.hasPartial(key)) keys.add(key);
    return [...keys].filter((k) => !this.has(k) && existsSync(this.stageDefPath(k))).sort();
  }

  /** Whether an unfinished stage left saved progress (checkpoints, finished models) that its next attempt resumes from. */
  hasPartial(key: string): boolean {
    const d = this.dir('scratch', key);
    return existsSync(d) && readdirSync(d).length > 0;
  }

  logPath(key: string): string {
    mkdirSync(this.dir('logs'), { recursive: true });
    return this.dir('logs', `${key}.log`);
  }

  newTmpDir(key: string): string {
    const d = this.dir('tmp', `${key}.${process.pid}.${randomBytes(4).toString('hex')}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Writes a file atomically (temporary file in the same directory, then rename). */
  writeAtomic(path: string, content: string | Buffer): void {
    mkdirSync(join(path, '..'), { recursive: true });
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  }

  /** Hashes the files of `tmpDir`, writes its manifest, and renames it into place as `key`. */
  async commit(key: string, kind: StageKind, label: string, tmpDir: string, replace = false, compute?: ManifestCompute): Promise<Manifest> {
    const files: ManifestFile[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const full = join(d, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile()) files.push({ path: relative(tmpDir, full), size: statSync(full).size, sha256: await sha256File(full) });
      }
    };
    await walk(tmpDir);
    const manifest: Manifest = {
      key,
      kind,
      label,
      createdAt: new Date().toISOString(),
      totalBytes: files.reduce((n, f) => n + f.size, 0),
      files,
      ...(compute ? { compute } : {}),
    };
    writeFileSync(join(tmpDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const target = this.objectDir(key);
    mkdirSync(join(target, '..'), { recursive: true });
    if (existsSync(target)) {
      if (!replace && this.has(key)) {
        rmSync(tmpDir, { recursive: true, force: true });
        return this.manifest(key);
      }
      // A forced recompute (or a directory without manifest): move the old one aside first, so the
      // rename below is still the single step that makes the new artifact visible.
      const trash = this.dir('tmp', `trash.${key}.${randomBytes(4).toString('hex')}`);
      renameSync(target, trash);
      renameSync(tmpDir, target);
      rmSync(trash, { recursive: true, force: true });
    } else {
      renameSync(tmpDir, target);
    }
    return manifest;
  }

  /** Verifies the files of an artifact against its manifest; returns the problems found. */
  async verify(key: string): Promise<string[]> {
    const m = this.manifest(key);
    const problems: string[] = [];
    for (const f of m.files) {
      const full = join(this.objectDir(key), f.path);
      if (!existsSync(full)) problems.push(`${f.path}: missing`);
      else if ((await sha256File(full)) !== f.sha256) problems.push(`${f.path}: content changed`);
    }
    return problems;
  }

  /**
   * Takes the lock of a key, or returns undefined while another process holds it: on this host one
   * that is alive (even paused, or too busy to refresh the lock's heartbeat), on another host one that
   * refreshed the heartbeat in the last LOCK_STALE_MS. A holder that is gone is taken over at once.
   */
  async tryLock(key: string): Promise<(() => Promise<void>) | undefined> {
    mkdirSync(this.dir('locks'), { recursive: true });
    const target = this.dir('locks', key);
    const owner = this.ownerPath(key);
    const state = this.recordedHolder(key)?.state;
    // The heartbeat of a paused holder lapses; the lock library would take the lock from under it.
    if ((state === 'running' || state === 'paused') && existsSync(`${target}.lock`)) return undefined;
    const release = state === 'gone' ? await this.takeOver(key, target) : await this.lockOnce(key, target);
    if (!release) return undefined;
    if (state !== 'gone') this.writeAtomic(owner, JSON.stringify(thisProcess()));
    const unlock = release;
    return async () => {
      rmSync(owner, { force: true });
      // How far an attempt got stays while its saved progress does: the next plan counts only the rest.
      if (!this.stoppedWithSavedProgress(key)) rmSync(this.progressPath(key), { force: true });
      await unlock();
    };
  }

  /**
   * Takes the lock of a key whose recorded holder is gone, replacing the lock it left. One process at a time
   * (an atomic mkdir of `<key>.takeover`), which looks at the owner file again under it and writes its own
   * before letting go: without that, a process that read the gone holder's owner file a moment earlier could
   * remove the lock this one has just taken, and both would compute the stage.
   */
  private async takeOver(key: string, target: string): Promise<(() => Promise<void>) | undefined> {
    const mutex = `${target}.takeover`;
    try {
      mkdirSync(mutex);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Another process is taking over now; or one died doing it, which must not block the key for good.
      const age = Date.now() - (statSync(mutex, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > TAKEOVER_STALE_MS) rmSync(mutex, { recursive: true, force: true });
      return undefined;
    }
    try {
      if (this.recordedHolder(key)?.state !== 'gone') return undefined;
      rmSync(`${target}.lock`, { recursive: true, force: true });
      const release = await this.lockOnce(key, target);
      if (release) this.writeAtomic(this.ownerPath(key), JSON.stringify(thisProcess()));
      return release;
    } finally {
      rmSync(mutex, { recursive: true, force: true });
    }
  }

  private ownerPath(key: string): string {
    return `${this.dir('locks', key)}.owner.json`;
  }

  /** The holder the owner file beside a key's lock names, and whether it is still there; undefined without a readable file. */
  private recordedHolder(key: string): { holder: Holder; state: HolderState } | undefined {
    const holder = readHolder(this.ownerPath(key));
    return holder && { holder, state: holderState(holder) };
  }

  /**
   * Where the holder of a key's lock keeps its progress. Removed with the lock, unless the stage is
   * unfinished and left saved progress (or its worker was killed): then it says how far that attempt
   * got, at most one checkpoint interval past the saved progress the next attempt resumes from.
   */
  progressPath(key: string): string {
    return `${this.dir('locks', key)}.progress.json`;
  }

  writeProgress(key: string, progress: StageProgress): void {
    this.writeAtomic(this.progressPath(key), JSON.stringify(progress));
  }

  /** The progress a running stage's worker last wrote; undefined when there is none (yet). */
  readProgress(key: string): StageProgress | undefined {
    return readJsonIfReadable<StageProgress>(this.progressPath(key));
  }

  /**
   * How far the last attempt of an unfinished stage got before it stopped, when it left saved progress
   * to resume from; undefined otherwise. Only meaningful while nobody holds the key's lock.
   */
  readStoppedProgress(key: string): StageProgress | undefined {
    return this.stoppedWithSavedProgress(key) ? this.readProgress(key) : undefined;
  }

  /** Unfinished, with saved progress its next attempt resumes from (a finished stage's scratch is a leftover). */
  private stoppedWithSavedProgress(key: string): boolean {
    return !this.has(key) && this.hasPartial(key);
  }

  private async lockOnce(key: string, target: string): Promise<(() => Promise<void>) | undefined> {
    try {
      return await lockfile.lock(target, {
        realpath: false,
        stale: LOCK_STALE_MS,
        update: LOCK_STALE_MS / 3,
        retries: 0,
        onCompromised: (err) => {
          // Another process took our lock over: we cannot safely go on writing this key.
          process.stderr.write(`metadd: lock of ${key} compromised: ${err.message}\n`);
          process.exit(75);
        },
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
      throw err;
    }
  }

  async isLocked(key: string): Promise<boolean> {
    return (await this.lockState(key)).held;
  }

  /**
   * Whether a process holds a key's lock now, and, when it is a process on this host that a signal
   * stopped (SIGSTOP, Ctrl-Z), its pid.
   */
  async lockState(key: string): Promise<{ held: boolean; pausedPid?: number }> {
    const target = this.dir('locks', key);
    if (!existsSync(`${target}.lock`)) return { held: false };
    const recorded = this.recordedHolder(key);
    if (recorded?.state === 'paused') return { held: true, pausedPid: recorded.holder.pid };
    if (recorded?.state === 'running') return { held: true };
    if (recorded?.state === 'gone') return { held: false };
    // Another host's holder, or one that has not written its owner file yet: the heartbeat decides.
    return { held: await lockfile.check(target, { realpath: false, stale: LOCK_STALE_MS }) };
  }

  listManifests(): Manifest[] {
    const out: Manifest[] = [];
    const objects = this.dir('objects');
    if (!existsSync(objects)) return out;
    for (const shard of readdirSync(objects)) {
      for (const key of readdirSync(join(objects, shard))) {
        const m = join(objects, shard, key, 'manifest.json');
        if (existsSync(m)) out.push(JSON.parse(readFileSync(m, 'utf8')) as Manifest);
      }
    }
    return out;
  }

  /** Keys referenced by the run logs under runs/: the roots that gc keeps. */
  referencedKeys(): Set<string> {
    const keys = new Set<string>();
    const runs = this.dir('runs');
    if (!existsSync(runs)) return keys;
    for (const id of readdirSync(runs)) {
      const p = join(runs, id, 'run.json');
      if (!existsSync(p)) continue;
      try {
        const log = JSON.parse(readFileSync(p, 'utf8')) as { stages?: { key: string }[] };
        for (const s of log.stages ?? []) keys.add(s.key);
      } catch {
        // An unreadable run log protects nothing; gc reports it below instead of failing.
      }
    }
    return keys;
  }

  /**
   * Removes artifacts no run log references, temporary directories of dead writers, scratch
   * directories nobody holds a lock for, and the files killed workers left beside their locks (owner
   * files, progress files no saved progress needs; a stale lock itself is left to the lock library,
   * which takes it over, since removing it could race a new holder). Returns what was (or, with
   * dryRun, would be) removed.
   */
  async gc(dryRun: boolean): Promise<{ objects: Manifest[]; tmp: string[]; scratch: string[]; locks: string[]; bytes: number }> {
    const keep = this.referencedKeys();
    const objects = this.listManifests().filter((m) => !keep.has(m.key));
    const tmp: string[] = [];
    const scratch: string[] = [];
    const tmpRoot = this.dir('tmp');
    if (existsSync(tmpRoot)) {
      for (const name of readdirSync(tmpRoot)) {
        const key = name.split('.')[0];
        const trash = name.startsWith('trash.');
        if (trash || !(await this.isLocked(key))) tmp.push(join(tmpRoot, name));
      }
    }
    const scratchRoot = this.dir('scratch');
    if (existsSync(scratchRoot)) {
      for (const key of readdirSync(scratchRoot)) if (!(await this.isLocked(key)) && this.has(key)) scratch.push(join(scratchRoot, key));
    }
    const locks: string[] = [];
    const locksRoot = this.dir('locks');
    if (existsSync(locksRoot)) {
      for (const name of readdirSync(locksRoot).sort()) {
        const m = LOCK_FILE.exec(name);
        if (!m || m[2] === 'lock' || (await this.isLocked(m[1]))) continue;
        // A stopped stage's progress file is what lets the next plan count only the part it has left.
        if (m[2] === 'progress.json' && this.readStoppedProgress(m[1])) continue;
        locks.push(join(locksRoot, name));
      }
    }
    const bytes = objects.reduce((n, m) => n + m.totalBytes, 0);
    if (!dryRun) {
      for (const m of objects) {
        if (await this.isLocked(m.key)) continue;
        rmSync(this.objectDir(m.key), { recursive: true, force: true });
        rmSync(this.stageDefPath(m.key), { force: true });
      }
      for (const p of [...tmp, ...scratch, ...locks]) rmSync(p, { recursive: true, force: true });
    }
    return { objects, tmp, scratch, locks, bytes };
  }
}

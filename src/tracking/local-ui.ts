import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The MLflow version scripts/setup-mlflow.sh installs and the tests run against. */
export const MLFLOW_VERSION = '3.17.2';

export const SETUP_HINT = `run scripts/setup-mlflow.sh (creates .venv/ with mlflow==${MLFLOW_VERSION})`;

/** The metadd checkout or install this module belongs to (where scripts/setup-mlflow.sh puts .venv/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'metadd') return dir;
      } catch {
        // An unreadable package.json above us is not ours; keep walking up.
      }
    }
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/**
 * The `mlflow` executable: $METADD_MLFLOW_BIN, else `.venv/bin/mlflow` in the current directory,
 * else in the metadd package root. undefined if none exists.
 */
export function findMlflowBinary(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): string | undefined {
  const candidates = [env.METADD_MLFLOW_BIN, join(cwd, '.venv', 'bin', 'mlflow'), join(packageRoot(), '.venv', 'bin', 'mlflow')];
  for (const c of candidates) if (c && existsSync(c)) return resolve(c);
  return undefined;
}

export function requireMlflowBinary(env: Record<string, string | undefined> = process.env, cwd = process.cwd()): string {
  const bin = findMlflowBinary(env, cwd);
  if (!bin) {
    const where = [...new Set([resolve(cwd), packageRoot()])].join(' or ');
    throw new Error(`MLflow is not installed (no .venv/bin/mlflow in ${where}): ${SETUP_HINT}`);
  }
  return bin;
}

/** A port that was free a moment ago (the usual race applies; the server start reports a clash). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

export interface MlflowServerOptions {
  mlflowBin?: string;
  /** e.g. `sqlite:////abs/path/mlflow.db` */
  backendStoreUri: string;
  /** Directory (or URI) where the proxied artifacts are stored. */
  artifactsDestination: string;
  host?: string;
  /** 0 or undefined: a free port. */
  port?: number;
  /** uvicorn workers; 1 is plenty for one user and keeps memory low. */
  workers?: number;
  startTimeoutMs?: number;
  /** Server stdout/stderr go here (appended); otherwise the last 64 KiB are kept for error messages. */
  logFile?: string;
  extraArgs?: string[];
  env?: Record<string, string | undefined>;
}

export interface MlflowServerHandle {
  url: string;
  port: number;
  pid: number;
  /** Resolves once the server's process group is gone. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Start `mlflow server` in its own process group and wait until `/health` answers. The server
 * serves artifacts through its proxy (`--artifacts-destination`), which is what the sync uses.
 * Job execution (GenAI scorer workers, a pool of extra processes) is switched off unless the
 * caller's environment sets MLFLOW_SERVER_ENABLE_JOB_EXECUTION.
 */
export async function startMlflowServer(opts: MlflowServerOptions): Promise<MlflowServerHandle> {
  const bin = opts.mlflowBin ?? requireMlflowBinary(opts.env ?? process.env);
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: ${SETUP_HINT}`);
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port || (await freePort(host));
  const args = [
    'server',
    '--backend-store-uri', opts.backendStoreUri,
    '--artifacts-destination', opts.artifactsDestination,
    '--host', host,
    '--port', String(port),
    '--workers', String(opts.workers ?? 1),
    ...(opts.extraArgs ?? []),
  ];
  const baseEnv = opts.env ?? process.env;
  const env: Record<string, string | undefined> = { ...baseEnv };
  if (env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION === undefined) env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION = 'false';

  let logTail = '';
  let stdio: ['ignore', 'pipe' | number, 'pipe' | number] = ['ignore', 'pipe', 'pipe'];
  let logHandle: Awaited<ReturnType<typeof open>> | undefined;
  if (opts.logFile) {
    await mkdir(dirname(opts.logFile), { recursive: true });
    logHandle = await open(opts.logFile, 'a');
    stdio = ['ignore', logHandle.fd, logHandle.fd];
  }
  // detached: its own process group, so that stop() also reaches the uvicorn worker it forks.
  const child = spawn(bin, args, { stdio, detached: true, env });
  await logHandle?.close();
  const keep = (chunk: Buffer): void => {
    logTail = (logTail + chunk.toString('utf8')).slice(-65536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exitCode: number | null | undefined;
  const exited = new Promise<void>((res) => {
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      res();
    });
    child.once('error', (err) => {
      logTail += `\n${err.message}`;
      exitCode = -1;
      res();
    });
  });
  const pid = child.pid ?? -1;
  // If this process dies without calling stop(), the server must not outlive it.
  const killOnExit = (): void => killGroup(pid, 'SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      killGroup(pid, 'SIGTERM');
      const timedOut = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
      // The main process may exit before its worker; make sure the whole group is gone.
      killGroup(pid, timedOut ? 'SIGKILL' : 'SIGTERM');
      for (let i = 0; i < 50 && groupAlive(pid); i++) await sleep(100);
      if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
      process.removeListener('exit', killOnExit);
    })();
    return stopping;
  };

  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 120_000);
  for (;;) {
    if (exitCode !== undefined) {
      await stop();
      const tail = opts.logFile ? `see ${opts.logFile}` : logTail.trim().split('\n').slice(-15).join('\n');
      throw new Error(`mlflow server exited (code ${exitCode}) before it was ready on ${url}:\n${tail}`);
    }
    if (await healthy(url)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mlflow server did not answer ${url}/health within ${opts.startTimeoutMs ?? 120_000} ms`);
    }
    await sleep(250);
  }
  // Only the start-up output was worth keeping.
  child.stdout?.removeListener('data', keep);
  child.stderr?.removeListener('data', keep);
  child.stdout?.resume();
  child.stderr?.resume();
  return { url, port, pid, stop };
}

async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: already gone.
  }
}

function groupAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `metadd ui`: a local MLflow server over `<root>/mlflow/` (sqlite database and artifacts), bound
 * to 127.0.0.1. MLflow >= 3.5 checks the Host header; its default allows localhost and private
 * addresses, which covers http://127.0.0.1:<port> and http://localhost:<port>.
 */
export async function startLocalUi(root: string, port = 5000, opts: { logFile?: string; env?: Record<string, string | undefined> } = {}): Promise<{ url: string; stop(): Promise<void> }> {
  const bin = requireMlflowBinary(opts.env ?? process.env);
  const dir = resolve(root, 'mlflow');
  await mkdir(join(dir, 'artifacts'), { recursive: true });
  const server = await startMlflowServer({
    mlflowBin: bin,
    backendStoreUri: `sqlite:///${join(dir, 'mlflow.db')}`,
    artifactsDestination: join(dir, 'artifacts'),
    port,
    logFile: opts.logFile ?? join(dir, 'server.log'),
    env: opts.env,
  });
  return { url: server.url, stop: server.stop };
}

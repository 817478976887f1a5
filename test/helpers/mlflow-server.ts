import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findMlflowBinary, SETUP_HINT, startMlflowServer, type MlflowServerHandle } from '../../src/tracking/local-ui.js';

/**
 * A real MLflow server for the tests: `.venv/bin/mlflow` on a free 127.0.0.1 port, with a fresh
 * sqlite database and artifact directory in a temp dir. Without the venv the tests fail with a
 * pointer to scripts/setup-mlflow.sh, unless METADD_SKIP_MLFLOW=1 (then the suites skip, saying why).
 */
export function mlflowSuiteOptions(): { skip?: string } {
  if (findMlflowBinary()) return {};
  if (process.env.METADD_SKIP_MLFLOW === '1') {
    return { skip: `METADD_SKIP_MLFLOW=1 and MLflow is not installed (${SETUP_HINT})` };
  }
  // No skip: startTestServer throws, and the suite fails with the setup hint.
  return {};
}

export interface TestMlflowServer {
  url: string;
  port: number;
  /** Temp dir holding mlflow.db and artifacts/ (removed by `dispose`). */
  dir: string;
  artifactsDir: string;
  /** Stop the server; data stays. */
  stop(): Promise<void>;
  /** Start again on the same port, database and artifacts. */
  restart(): Promise<void>;
  /** Stop and delete the temp dir. */
  dispose(): Promise<void>;
}

export async function startTestServer(): Promise<TestMlflowServer> {
  const bin = findMlflowBinary();
  if (!bin) {
    throw new Error(`MLflow is not installed: ${SETUP_HINT}. Set METADD_SKIP_MLFLOW=1 to skip the MLflow tests.`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'metadd-mlflow-'));
  const artifactsDir = join(dir, 'artifacts');
  await mkdir(artifactsDir, { recursive: true });
  const start = (port?: number): Promise<MlflowServerHandle> =>
    startMlflowServer({
      mlflowBin: bin,
      backendStoreUri: `sqlite:///${join(dir, 'mlflow.db')}`,
      artifactsDestination: artifactsDir,
      port,
      logFile: join(dir, 'server.log'),
      startTimeoutMs: 180_000,
    });
  let handle: MlflowServerHandle | undefined = await start();
  const port = handle.port;
  return {
    url: handle.url,
    port,
    dir,
    artifactsDir,
    async stop() {
      await handle?.stop();
      handle = undefined;
    },
    async restart() {
      await handle?.stop();
      handle = await start(port);
    },
    async dispose() {
      await handle?.stop();
      handle = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

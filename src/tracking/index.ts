/** The tracking API the rest of metadd uses: run logs, records files, the MLflow client and sync. */
export type { TrackRecord, Tracker } from './records.js';
export { appendRecords, readRecords } from './records-io.js';
export {
  appendRunRecords,
  createRunLog,
  listRunLogs,
  readRunLog,
  recordStage,
  runRecordsPath,
  updateRunLog,
  type NewRunLog,
  type RunLog,
  type RunLogStage,
  type RunStatus,
  type StageRunStatus,
} from './run-log.js';
export {
  authFromEnv,
  isTransient,
  MlflowApiError,
  MlflowClient,
  MlflowError,
  MlflowNetworkError,
  MlflowValidationError,
  type MlflowAuth,
  type MlflowClientOptions,
} from './mlflow-client.js';
export { pendingCount, syncRun, type SyncDestination, type SyncOptions, type SyncProgress, type SyncSummary } from './sync.js';
export { resolveTrackingUri, type ResolvedTrackingUri } from './uri.js';
export { findMlflowBinary, MLFLOW_VERSION, startLocalUi, startMlflowServer, SETUP_HINT } from './local-ui.js';
export { flattenParams } from './flatten.js';
export { DEFAULT_ROOT, objectDir, runDir } from './layout.js';

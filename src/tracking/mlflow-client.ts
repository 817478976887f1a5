import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A small typed client for the MLflow tracking REST API (`/api/2.0/mlflow/...`) and the artifact
 * proxy (`/api/2.0/mlflow-artifacts/...`), over Node's fetch. Wire types keep MLflow's snake_case
 * names so that they can be checked against the REST docs field by field.
 *
 * Credentials never leave the private `#authorization` field except as the request header: error
 * messages carry the method, the path and the server's error text, never headers or the full URL.
 */

// ---------------------------------------------------------------------------------------------
// Wire types

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  creation_time?: number;
  last_update_time?: number;
  tags?: KeyValue[];
}

export interface KeyValue {
  key: string;
  value: string;
}

export type RunStatusName = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface RunInfo {
  run_id: string;
  run_uuid?: string;
  experiment_id: string;
  run_name?: string;
  user_id?: string;
  status: RunStatusName;
  start_time?: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: string;
}

/** As sent and as returned: MLflow encodes NaN and +-Infinity as the strings below. */
export interface WireMetric {
  key: string;
  value: number | 'NaN' | 'Infinity' | '-Infinity';
  step: number;
  timestamp: number;
}

export interface Run {
  info: RunInfo;
  data: { metrics?: WireMetric[]; params?: KeyValue[]; tags?: KeyValue[] };
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

/** What a caller logs: plain numbers; the client encodes non-finite values. */
export interface MetricPoint {
  key: string;
  value: number;
  step: number;
  timestamp: number;
}

export interface LogBatch {
  metrics?: MetricPoint[];
  params?: KeyValue[];
  tags?: KeyValue[];
}

// ---------------------------------------------------------------------------------------------
// Options

export type MlflowAuth = { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

export interface RetryOptions {
  /** Total tries per request, the first included. */
  maxAttempts: number;
  /** First backoff; doubled per attempt, each delay drawn uniformly from [d/2, d]. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Per attempt, for API calls. */
  requestTimeoutMs: number;
  /** Per attempt, for artifact uploads and downloads. */
  artifactTimeoutMs: number;
}

/**
 * The server's limits (mlflow/utils/validation.py). Tags are held to 5000 characters although
 * MLflow 3.x stores 8000, because older servers and other backends guarantee only 5000; the server
 * truncates longer values *silently*, which is why the client deals with them itself.
 * The body limit leaves a margin under the server's 1e6 bytes for the JSON envelope.
 */
export interface MlflowLimits {
  metricsPerBatch: number;
  paramsPerBatch: number;
  tagsPerBatch: number;
  itemsPerBatch: number;
  maxBodyBytes: number;
  keyLength: number;
  paramValueLength: number;
  tagValueLength: number;
}

export const DEFAULT_LIMITS: Readonly<MlflowLimits> = Object.freeze({
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  itemsPerBatch: 1000,
  maxBodyBytes: 950_000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 5000,
});

export const DEFAULT_RETRY: Readonly<RetryOptions> = Object.freeze({
  maxAttempts: 6,
  initialDelayMs: 500,
  maxDelayMs: 15_000,
  requestTimeoutMs: 60_000,
  artifactTimeoutMs: 15 * 60_000,
});

export interface MlflowClientOptions {
  /** `http(s)://host[:port][/prefix]`; credentials in the URL are moved to basic auth. */
  trackingUri: string;
  auth?: MlflowAuth;
  retry?: Partial<RetryOptions>;
  limits?: Partial<MlflowLimits>;
}

export interface RequestOptions {
  /**
   * false: one attempt only. For non-idempotent calls (runs/create, metric batches) whose caller
   * first checks what the failed attempt may have done.
   */
  retry?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Errors

export class MlflowError extends Error {
  override name = 'MlflowError';
}

/** The server answered with a non-2xx status. */
export class MlflowApiError extends MlflowError {
  override name = 'MlflowApiError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly errorCode: string | undefined,
    readonly serverMessage: string,
    readonly attempts: number,
  ) {
    super(`MLflow ${method} ${path}: HTTP ${status}${errorCode ? ` ${errorCode}` : ''}: ${serverMessage}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`);
  }
}

/** No HTTP answer: connection refused or reset, DNS, timeout. */
export class MlflowNetworkError extends MlflowError {
  override name = 'MlflowNetworkError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly detail: string,
    readonly attempts: number,
  ) {
    super(`MLflow ${method} ${path}: ${detail}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`);
  }
}

/** Rejected before sending: a key MLflow would refuse, a step that is not an integer, ... */
export class MlflowValidationError extends MlflowError {
  override name = 'MlflowValidationError';
  constructor(readonly problems: string[]) {
    super(`cannot log to MLflow: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; and ${problems.length - 10} more` : ''}`);
  }
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Network errors and retryable statuses: the server may come back, the data is not at fault. */
export function isTransient(err: unknown): boolean {
  if (err instanceof MlflowNetworkError) return true;
  return err instanceof MlflowApiError && isRetryableStatus(err.status);
}

export function hasErrorCode(err: unknown, code: string): boolean {
  return err instanceof MlflowApiError && err.errorCode === code;
}

// ---------------------------------------------------------------------------------------------
// Auth and URIs

/**
 * Credentials from the environment, with the Python client's precedence: username and password
 * (basic) when both are set, otherwise a token (bearer).
 */
export function authFromEnv(env: Record<string, string | undefined>): MlflowAuth | undefined {
  const username = env.MLFLOW_TRACKING_USERNAME;
  const password = env.MLFLOW_TRACKING_PASSWORD;
  if (username && password) return { kind: 'basic', username, password };
  const token = env.MLFLOW_TRACKING_TOKEN;
  if (token) return { kind: 'bearer', token };
  return undefined;
}

function authorizationHeader(auth: MlflowAuth): string {
  if (auth.kind === 'basic') return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
  return `Bearer ${auth.token}`;
}

/** The tracking URI without credentials, query or trailing slash: safe to print. */
export function normalizeTrackingUri(uri: string): { baseUrl: string; userinfoAuth?: MlflowAuth } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new MlflowError(`invalid MLflow tracking URI (not a URL): ${redactUri(uri)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new MlflowError(
      `metadd talks to MLflow over HTTP only; tracking URI scheme '${url.protocol}' is not supported. ` +
        'Start a server (`mlflow server ...` or `metadd ui`) and use its http:// address.',
    );
  }
  let userinfoAuth: MlflowAuth | undefined;
  if (url.username || url.password) {
    userinfoAuth = { kind: 'basic', username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    url.username = '';
    url.password = '';
  }
  url.search = '';
  url.hash = '';
  return { baseUrl: url.toString().replace(/\/+$/, ''), userinfoAuth };
}

/** For messages about a URI we could not parse: drop anything that looks like userinfo. */
function redactUri(uri: string): string {
  return uri.replace(/\/\/[^/@]*@/, '//***@');
}

// ---------------------------------------------------------------------------------------------
// Validation and batching

const NAME_RE = /^[/\p{L}\p{N}_.\- :]*$/u;

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Why MLflow would refuse this param/metric/tag key, or undefined if it would accept it. */
export function keyProblem(key: string, limits: Pick<MlflowLimits, 'keyLength'> = DEFAULT_LIMITS): string | undefined {
  if (typeof key !== 'string' || key === '') return 'empty key';
  if (codePoints(key) > limits.keyLength) return `key longer than ${limits.keyLength} characters: ${JSON.stringify(key.slice(0, 60))}...`;
  if (!NAME_RE.test(key)) {
    return `key ${JSON.stringify(key)} has characters MLflow refuses (allowed: letters, digits, _ - . space / :)`;
  }
  // MLflow also treats names as file paths and refuses any that normalise to something else.
  const segments = key.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return `key ${JSON.stringify(key)} is not a normalised path`;
  return undefined;
}

function encodeMetricValue(v: number): WireMetric['value'] {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  return v;
}

export function toWireMetric(m: MetricPoint): WireMetric {
  return { key: m.key, value: encodeMetricValue(m.value), step: m.step, timestamp: Math.round(m.timestamp) };
}

/**
 * Problems that would make log-batch fail, found before sending. Over-long *values* are not
 * problems: `MlflowClient.prepareLongValues` handles them.
 */
export function batchProblems(batch: LogBatch, limits: Pick<MlflowLimits, 'keyLength'> = DEFAULT_LIMITS): string[] {
  const problems: string[] = [];
  for (const m of batch.metrics ?? []) {
    const p = keyProblem(m.key, limits);
    if (p) problems.push(`metric ${p}`);
    if (typeof m.value !== 'number') problems.push(`metric ${JSON.stringify(m.key)}: value is not a number`);
    if (!Number.isSafeInteger(m.step)) problems.push(`metric ${JSON.stringify(m.key)}: step ${m.step} is not an integer`);
    if (!Number.isFinite(m.timestamp) || m.timestamp < 0) problems.push(`metric ${JSON.stringify(m.key)}: bad timestamp ${m.timestamp}`);
  }
  for (const [what, list] of [['param', batch.params], ['tag', batch.tags]] as const) {
    for (const kv of list ?? []) {
      const p = keyProblem(kv.key, limits);
      if (p) problems.push(`${what} ${p}`);
      if (typeof kv.value !== 'string') problems.push(`${what} ${JSON.stringify(kv.key)}: value is not a string`);
    }
  }
  return problems;
}

export type BatchItem = { kind: 'metric'; metric: MetricPoint } | { kind: 'param'; param: KeyValue } | { kind: 'tag'; tag: KeyValue };

/**
 * Accumulates items into one log-batch request within every server limit (counts and body size).
 * `add` returns false when the item must go into the next request. Params with a key already in
 * the batch are refused too (the server rejects duplicate param keys in one request), and so are
 * tags (so that the later value of a tag is written after, not beside, the earlier one).
 */
export class BatchBuilder {
  readonly metrics: WireMetric[] = [];
  readonly params: KeyValue[] = [];
  readonly tags: KeyValue[] = [];
  private bytes = 64;
  private readonly paramKeys = new Set<string>();
  private readonly tagKeys = new Set<string>();

  constructor(
    private readonly runId: string,
    private readonly limits: MlflowLimits = { ...DEFAULT_LIMITS },
  ) {
    this.bytes += Buffer.byteLength(runId);
  }

  get size(): number {
    return this.metrics.length + this.params.length + this.tags.length;
  }

  add(item: BatchItem): boolean {
    const l = this.limits;
    if (this.size >= l.itemsPerBatch) return false;
    let encoded: WireMetric | KeyValue;
    if (item.kind === 'metric') {
      if (this.metrics.length >= l.metricsPerBatch) return false;
      encoded = toWireMetric(item.metric);
    } else if (item.kind === 'param') {
      if (this.params.length >= l.paramsPerBatch || this.paramKeys.has(item.param.key)) return false;
      encoded = item.param;
    } else {
      if (this.tags.length >= l.tagsPerBatch || this.tagKeys.has(item.tag.key)) return false;
      encoded = item.tag;
    }
    const cost = Buffer.byteLength(JSON.stringify(encoded)) + 1;
    if (this.size > 0 && this.bytes + cost > l.maxBodyBytes) return false;
    if (this.bytes + cost > l.maxBodyBytes) {
      throw new MlflowValidationError([`one ${item.kind} is larger than a whole request (${cost} bytes)`]);
    }
    this.bytes += cost;
    if (item.kind === 'metric') this.metrics.push(encoded as WireMetric);
    else if (item.kind === 'param') {
      this.params.push(encoded as KeyValue);
      this.paramKeys.add(item.param.key);
    } else {
      this.tags.push(encoded as KeyValue);
      this.tagKeys.add(item.tag.key);
    }
    return true;
  }

  body(): { run_id: string; metrics: WireMetric[]; params: KeyValue[]; tags: KeyValue[] } {
    return { run_id: this.runId, metrics: this.metrics, params: this.params, tags: this.tags };
  }
}

/** Split a batch into requests in the order params, tags, metrics (metrics keep their order). */
export function splitBatch(runId: string, batch: LogBatch, limits: MlflowLimits = { ...DEFAULT_LIMITS }): BatchBuilder[] {
  const items: BatchItem[] = [
    ...(batch.params ?? []).map((param): BatchItem => ({ kind: 'param', param })),
    ...(batch.tags ?? []).map((tag): BatchItem => ({ kind: 'tag', tag })),
    ...(batch.metrics ?? []).map((metric): BatchItem => ({ kind: 'metric', metric })),
  ];
  const out: BatchBuilder[] = [];
  let current = new BatchBuilder(runId, limits);
  for (const item of items) {
    if (current.add(item)) continue;
    if (current.size === 0) throw new MlflowValidationError([`cannot fit a ${item.kind} into a request`]);
    out.push(current);
    current = new BatchBuilder(runId, limits);
    if (!current.add(item)) throw new MlflowValidationError([`cannot fit a ${item.kind} into a request`]);
  }
  if (current.size > 0) out.push(current);
  return out;
}

/** Where the full text of a truncated param or tag is stored, as a run artifact. */
export function longValueArtifactPath(kind: 'param' | 'tag', key: string): string {
  const safe = key.replace(/[^A-Za-z0-9._-]/g, '_');
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 8);
  return `metadd/long_values/${kind}s/${safe.slice(0, 120)}-${hash}.txt`;
}

/** Deterministic, so that re-logging a truncated param sends the identical (accepted) value. */
export function truncateWithMarker(value: string, limit: number, artifactPath: string): string {
  const marker = ` ...[truncated by metadd from ${codePoints(value)} characters; full value in artifact ${artifactPath}]`;
  const keep = Math.max(0, limit - codePoints(marker));
  let out = '';
  let n = 0;
  for (const ch of value) {
    if (n >= keep) break;
    out += ch;
    n++;
  }
  return out + marker;
}

// ---------------------------------------------------------------------------------------------
// The client

type Query = Record<string, string | number | undefined>;

type Body = { json: unknown } | { file: string } | { data: Uint8Array | string } | undefined;

interface RawRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  query?: Query;
  body?: Body;
  retry?: boolean;
  timeoutMs?: number;
  /** Absolute URL overriding base + path (artifact URIs). */
  url?: string;
}

export class MlflowClient {
  readonly baseUrl: string;
  readonly limits: MlflowLimits;
  readonly retry: RetryOptions;
  readonly #authorization: string | undefined;
  readonly #artifactUris = new Map<string, string>();

  constructor(options: MlflowClientOptions) {
    const { baseUrl, userinfoAuth } = normalizeTrackingUri(options.trackingUri);
    this.baseUrl = baseUrl;
    const auth = options.auth ?? userinfoAuth;
    this.#authorization = auth ? authorizationHeader(auth) : undefined;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    if (this.retry.maxAttempts < 1) throw new MlflowError('retry.maxAttempts must be at least 1');
  }

  /** A client for `trackingUri` with credentials from MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN. */
  static fromEnv(trackingUri: string, env: Record<string, string | undefined> = process.env, options: Omit<MlflowClientOptions, 'trackingUri'> = {}): MlflowClient {
    return new MlflowClient({ ...options, trackingUri, auth: options.auth ?? authFromEnv(env) });
  }

  // Keeps the credentials out of util.inspect / console.log of the client.
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `MlflowClient { baseUrl: '${this.baseUrl}', auth: ${this.#authorization ? '<set>' : 'none'} }`;
  }

  toJSON(): { baseUrl: string } {
    return { baseUrl: this.baseUrl };
  }

  // -- experiments ------------------------------------------------------------------------

  async getExperimentByName(name: string): Promise<Experiment | undefined> {
    try {
      const res = await this.api<{ experiment: Experiment }>({ method: 'GET', path: 'experiments/get-by-name', query: { experiment_name: name } });
      return res.experiment;
    } catch (err) {
      if (hasErrorCode(err, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw err;
    }
  }

  async createExperiment(name: string, tags: KeyValue[] = []): Promise<string> {
    const res = await this.api<{ experiment_id: string }>({ method: 'POST', path: 'experiments/create', body: { json: { name, tags } } });
    return res.experiment_id;
  }

  /**
   * Safe when several processes race to create the same experiment: the loser gets
   * RESOURCE_ALREADY_EXISTS and reads the winner's. A deleted experiment of that name is an
   * error rather than a silent restore (MLflow keeps the name reserved until it is purged).
   */
  async getOrCreateExperiment(name: string): Promise<Experiment> {
    let exp = await this.getExperimentByName(name);
    if (!exp) {
      try {
        await this.createExperiment(name);
      } catch (err) {
        if (!hasErrorCode(err, 'RESOURCE_ALREADY_EXISTS')) throw err;
      }
      exp = await this.getExperimentByName(name);
      if (!exp) throw new MlflowError(`experiment ${JSON.stringify(name)} was created but cannot be read back`);
    }
    if (exp.lifecycle_stage === 'deleted') {
      throw new MlflowError(`experiment ${JSON.stringify(name)} is deleted on the server: restore it (mlflow experiments restore) or use another name`);
    }
    return exp;
  }

  // -- runs ---------------------------------------------------------------------------------

  async createRun(
    req: { experimentId: string; runName?: string; startTime?: number; tags?: KeyValue[] },
    opts: RequestOptions = {},
  ): Promise<Run> {
    const tags = req.tags ?? [];
    const problems = batchProblems({ tags }, this.limits);
    if (problems.length) throw new MlflowValidationError(problems);
    const body: Record<string, unknown> = { experiment_id: req.experimentId, start_time: req.startTime ?? Date.now(), tags };
    if (req.runName !== undefined) body.run_name = req.runName;
    const res = await this.api<{ run: Run }>({ method: 'POST', path: 'runs/create', body: { json: body }, retry: opts.retry });
    this.#artifactUris.set(res.run.info.run_id, res.run.info.artifact_uri);
    return res.run;
  }

  async getRun(runId: string): Promise<Run> {
    const res = await this.api<{ run: Run }>({ method: 'GET', path: 'runs/get', query: { run_id: runId } });
    this.#artifactUris.set(runId, res.run.info.artifact_uri);
    return res.run;
  }

  /** undefined when the run does not exist (e.g. the server's database was replaced). */
  async findRun(runId: string): Promise<Run | undefined> {
    try {
      return await this.getRun(runId);
    } catch (err) {
      if (hasErrorCode(err, 'RESOURCE_DOES_NOT_EXIST')) return undefined;
      throw err;
    }
  }

  async updateRun(runId: string, update: { status?: RunStatusName; endTime?: number; runName?: string }): Promise<RunInfo> {
    const body: Record<string, unknown> = { run_id: runId };
    if (update.status !== undefined) body.status = update.status;
    if (update.endTime !== undefined) body.end_time = update.endTime;
    if (update.runName !== undefined) body.run_name = update.runName;
    const res = await this.api<{ run_info: RunInfo }>({ method: 'POST', path: 'runs/update', body: { json: body } });
    return res.run_info;
  }

  /** One page. `filter` uses MLflow's syntax, e.g. tags.`metadd.cache_key` = 'abc'. */
  async searchRuns(req: {
    experimentIds: string[];
    filter?: string;
    maxResults?: number;
    orderBy?: string[];
    pageToken?: string;
    runViewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
  }): Promise<{ runs: Run[]; nextPageToken?: string }> {
    const body: Record<string, unknown> = {
      experiment_ids: req.experimentIds,
      max_results: req.maxResults ?? 1000,
      run_view_type: req.runViewType ?? 'ACTIVE_ONLY',
    };
    if (req.filter) body.filter = req.filter;
    if (req.orderBy) body.order_by = req.orderBy;
    if (req.pageToken) body.page_token = req.pageToken;
    const res = await this.api<{ runs?: Run[]; next_page_token?: string }>({ method: 'POST', path: 'runs/search', body: { json: body } });
    return { runs: res.runs ?? [], nextPageToken: res.next_page_token || undefined };
  }

  async searchAllRuns(req: { experimentIds: string[]; filter?: string; orderBy?: string[] }): Promise<Run[]> {
    const out: Run[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.searchRuns({ ...req, pageToken });
      out.push(...page.runs);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.logBatch(runId, { tags: [{ key, value }] });
  }

  /** Every point of one metric, following pagination. */
  async getMetricHistory(runId: string, key: string): Promise<WireMetric[]> {
    const out: WireMetric[] = [];
    let pageToken: string | undefined;
    do {
      const res = await this.api<{ metrics?: WireMetric[]; next_page_token?: string }>({
        method: 'GET',
        path: 'metrics/get-history',
        query: { run_id: runId, metric_key: key, page_token: pageToken },
      });
      out.push(...(res.metrics ?? []));
      pageToken = res.next_page_token || undefined;
    } while (pageToken);
    return out;
  }

  // -- batches ------------------------------------------------------------------------------

  /**
   * Log any number of metrics, params and tags: validated first (MlflowValidationError, nothing
   * sent), over-long values handled by `prepareLongValues`, then split into requests within the
   * server limits. Requests are retried on transient errors; a retried metric request may
   * duplicate points on stores that do not de-duplicate (the SQL store does): callers that need
   * exactly-once use `sync`, which checks the server before resending.
   */
  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    const prepared = await this.prepareLongValues(runId, batch);
    for (const chunk of splitBatch(runId, prepared, this.limits)) await this.sendBatch(chunk);
  }

  /**
   * Validate a batch and replace param values over 6000 characters and tag values over 5000 by
   * a truncated value ending in a marker that names an artifact, after uploading the full value
   * to that artifact (`metadd/long_values/...`). Nothing is dropped: the MLflow server itself
   * would truncate silently. Keys cannot be shortened without changing their meaning, so a bad
   * key is an MlflowValidationError.
   */
  async prepareLongValues(runId: string, batch: LogBatch): Promise<LogBatch> {
    const problems = batchProblems(batch, this.limits);
    if (problems.length) throw new MlflowValidationError(problems);
    const fix = async (kind: 'param' | 'tag', list: KeyValue[] | undefined, limit: number): Promise<KeyValue[] | undefined> => {
      if (!list) return list;
      const out: KeyValue[] = [];
      for (const kv of list) {
        if (kv.value.length <= limit || codePoints(kv.value) <= limit) {
          out.push(kv);
          continue;
        }
        const path = longValueArtifactPath(kind, kv.key);
        await this.uploadArtifact(runId, path, { data: kv.value });
        out.push({ key: kv.key, value: truncateWithMarker(kv.value, limit, path) });
      }
      return out;
    };
    return {
      metrics: batch.metrics,
      params: await fix('param', batch.params, this.limits.paramValueLength),
      tags: await fix('tag', batch.tags, this.limits.tagValueLength),
    };
  }

  /** One log-batch request as built; no splitting. */
  async sendBatch(batch: BatchBuilder, opts: RequestOptions = {}): Promise<void> {
    if (batch.size === 0) return;
    await this.api({ method: 'POST', path: 'runs/log-batch', body: { json: batch.body() }, retry: opts.retry });
  }

  // -- artifacts ----------------------------------------------------------------------------

  /**
   * Upload through the server's artifact proxy (PUT /api/2.0/mlflow-artifacts/artifacts/<path of
   * the run's artifact_uri>/<artifactPath>). Idempotent: a second upload replaces the file.
   */
  async uploadArtifact(runId: string, artifactPath: string, source: { file: string } | { data: Uint8Array | string }): Promise<void> {
    const url = await this.artifactUrl(runId, artifactPath);
    await this.raw({ method: 'PUT', path: `artifact ${artifactPath}`, url, body: source, timeoutMs: this.retry.artifactTimeoutMs });
  }

  async downloadArtifact(runId: string, artifactPath: string): Promise<Buffer> {
    const url = await this.artifactUrl(runId, artifactPath);
    const res = await this.raw({ method: 'GET', path: `artifact ${artifactPath}`, url, timeoutMs: this.retry.artifactTimeoutMs });
    return Buffer.from(await res.arrayBuffer());
  }

  /** One directory level, as the UI lists it (paths relative to the run's artifact root). */
  async listArtifacts(runId: string, path?: string): Promise<FileInfo[]> {
    const res = await this.api<{ files?: FileInfo[] }>({ method: 'GET', path: 'artifacts/list', query: { run_id: runId, path } });
    return res.files ?? [];
  }

  /** Every file under `path`, recursively. */
  async listAllArtifacts(runId: string, path?: string): Promise<FileInfo[]> {
    const out: FileInfo[] = [];
    for (const f of await this.listArtifacts(runId, path)) {
      if (f.is_dir) out.push(...(await this.listAllArtifacts(runId, f.path)));
      else out.push(f);
    }
    return out;
  }

  private async artifactUrl(runId: string, artifactPath: string): Promise<string> {
    const segments = artifactPath.split('/');
    if (artifactPath === '' || segments.some((s) => s === '' || s === '.' || s === '..') || artifactPath.includes('\\')) {
      throw new MlflowValidationError([`artifact path ${JSON.stringify(artifactPath)} must be relative and normalised`]);
    }
    let uri = this.#artifactUris.get(runId);
    if (uri === undefined) uri = (await this.getRun(runId)).info.artifact_uri;
    const root = this.proxiedRoot(uri);
    return `${root}/${segments.map(encodeURIComponent).join('/')}`;
  }

  /**
   * The artifact proxy URL of a run's artifact root. `mlflow-artifacts:/1/<run>/artifacts` (the
   * form a server with --serve-artifacts hands out) maps onto this client's base URL; an
   * `http(s)://.../api/2.0/mlflow-artifacts/artifacts/...` root is used as given when it is on
   * the same origin. Anything else (s3://, file://) means the server does not proxy artifacts.
   */
  private proxiedRoot(artifactUri: string): string {
    const anchor = '/api/2.0/mlflow-artifacts/artifacts';
    if (artifactUri.startsWith('mlflow-artifacts:')) {
      const rest = artifactUri.slice('mlflow-artifacts:'.length);
      // mlflow-artifacts://netloc/path names a host; the client keeps talking to its own server.
      const path = rest.startsWith('//') ? rest.slice(2).replace(/^[^/]*/, '') : rest;
      const clean = path.replace(/^\/+/, '').replace(/\/+$/, '');
      return `${this.baseUrl}${anchor}/${clean.split('/').map(encodeURIComponent).join('/')}`;
    }
    if (/^https?:/.test(artifactUri)) {
      const u = new URL(artifactUri);
      if (u.origin === new URL(this.baseUrl).origin && u.pathname.includes(`${anchor}/`)) return artifactUri.replace(/\/+$/, '');
    }
    throw new MlflowError(
      `the run's artifact root ${artifactUri.split('?')[0]} is not served by the tracking server; metadd uploads artifacts only ` +
        'through the MLflow artifact proxy (run `mlflow server` with artifact serving on, the default, and --artifacts-destination)',
    );
  }

  /** `GET /health`: true when the server answers 200. One attempt, short timeout. */
  async health(timeoutMs = 2000): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/health`, { headers: this.headers(), signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      return res.ok;
    } catch {
      return false;
    }
  }

  // -- transport ------------------------------------------------------------------------------

  private async api<T>(req: RawRequest): Promise<T> {
    const res = await this.raw({ ...req, path: `/api/2.0/mlflow/${req.path}` });
    const text = await res.text();
    if (text.trim() === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new MlflowApiError(req.method, `/api/2.0/mlflow/${req.path}`, res.status, undefined, `response is not JSON: ${text.slice(0, 200)}`, 1);
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.#authorization) h.Authorization = this.#authorization;
    return h;
  }

  /** Retries transient failures with exponential backoff and jitter; honours Retry-After. */
  private async raw(req: RawRequest): Promise<Response> {
    let url = req.url ?? `${this.baseUrl}${req.path}`;
    if (req.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(req.query)) if (v !== undefined) q.set(k, String(v));
      const s = q.toString();
      if (s) url += `?${s}`;
    }
    const label = req.url ? req.path : req.path.split('?')[0];
    const attempts = req.retry === false ? 1 : this.retry.maxAttempts;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, await this.init(req));
      } catch (err) {
        const failure = new MlflowNetworkError(req.method, label, describeFetchError(err), attempt);
        if (attempt >= attempts) throw failure;
        await sleep(this.backoff(attempt));
        continue;
      }
      if (res.ok) return res;
      const text = await res.text().catch(() => '');
      const { code, message } = parseErrorBody(text, res.statusText);
      const failure = new MlflowApiError(req.method, label, res.status, code, message, attempt);
      if (!isRetryableStatus(res.status) || attempt >= attempts) throw failure;
      await sleep(Math.max(this.backoff(attempt), retryAfterMs(res.headers.get('retry-after'), this.retry.maxDelayMs)));
    }
  }

  private async init(req: RawRequest): Promise<RequestInit> {
    const init: RequestInit & { duplex?: 'half' } = {
      method: req.method,
      signal: AbortSignal.timeout(req.timeoutMs ?? this.retry.requestTimeoutMs),
    };
    const body = req.body;
    if (body === undefined) {
      init.headers = this.headers();
    } else if ('json' in body) {
      init.headers = this.headers({ 'Content-Type': 'application/json' });
      init.body = JSON.stringify(body.json);
    } else if ('data' in body) {
      init.headers = this.headers({ 'Content-Type': 'application/octet-stream' });
      init.body = typeof body.data === 'string' ? body.data : new Uint8Array(body.data);
    } else {
      // Streamed from disk (artifacts can be large); a fresh stream per attempt.
      const size = (await stat(body.file)).size;
      init.headers = this.headers({ 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) });
      init.body = Readable.toWeb(createReadStream(body.file)) as ReadableStream<Uint8Array>;
      init.duplex = 'half';
    }
    return init;
  }

  private backoff(attempt: number): number {
    return backoffDelay(this.retry, attempt);
  }
}

/** Exponential backoff with "equal jitter": the delay after try n is uniform in [d/2, d], d = initial * 2^(n-1), capped. */
export function backoffDelay(retry: Pick<RetryOptions, 'initialDelayMs' | 'maxDelayMs'>, attempt: number): number {
  const d = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
  return d / 2 + Math.random() * (d / 2);
}

function parseErrorBody(text: string, fallback: string): { code?: string; message: string } {
  try {
    const o = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (typeof o === 'object' && o !== null) {
      return {
        code: typeof o.error_code === 'string' ? o.error_code : undefined,
        message: typeof o.message === 'string' ? truncate(o.message, 1000) : truncate(text, 300),
      };
    }
  } catch {
    // Not JSON (a proxy's HTML error page): keep a short prefix only.
  }
  return { message: truncate(text.replace(/\s+/g, ' ').trim(), 300) || fallback };
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

function retryAfterMs(header: string | null, cap: number): number {
  if (!header) return 0;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.min(cap, Math.max(0, secs * 1000));
  const at = Date.parse(header);
  return Number.isNaN(at) ? 0 : Math.min(cap, Math.max(0, at - Date.now()));
}

/** undici wraps the real reason (ECONNREFUSED, ...) in `cause`; the message alone says "fetch failed". */
function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'request timed out';
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      return `${err.message}: ${code ? `${code} ` : ''}${cause.message}`;
    }
    return err.message;
  }
  return String(err);
}

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { inspect } from 'node:util';
import { after, before, beforeEach, describe, it } from 'node:test';
import { freePort } from '../src/tracking/local-ui.js';
import {
  authFromEnv,
  MlflowApiError,
  MlflowClient,
  MlflowNetworkError,
} from '../src/tracking/mlflow-client.js';

/**
 * The client's HTTP behaviour against a scripted node:http server: retries with backoff on 503,
 * 429 and network errors, no retry on 4xx or when asked not to, auth headers, and credentials
 * kept out of every message. No MLflow needed.
 */

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  contentType?: string;
  body: string;
}

type Handler = (req: Seen, res: ServerResponse, n: number) => void;

const FAST = { maxAttempts: 4, initialDelayMs: 5, maxDelayMs: 20 };
const SECRET_PASSWORD = 'pa55-w0rd-s3cret';
const SECRET_TOKEN = 'tok-3f9a8b7c6d5e4f';

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

describe('MlflowClient over HTTP (scripted server)', () => {
  let server: Server;
  let url: string;
  let seen: Seen[] = [];
  let handler: Handler = (_req, res) => json(res, 200, {});

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const s: Seen = {
          method: req.method ?? '',
          url: req.url ?? '',
          authorization: req.headers.authorization,
          contentType: req.headers['content-type'],
          body: Buffer.concat(chunks).toString('utf8'),
        };
        seen.push(s);
        handler(s, res, seen.length);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  after(() => new Promise<void>((r) => server.close(() => r())));

  beforeEach(() => {
    seen = [];
  });

  it('retries 503 twice and then succeeds', async () => {
    handler = (_req, res, n) => (n <= 2 ? json(res, 503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' }) : json(res, 200, { experiment_id: '7' }));
    const client = new MlflowClient({ trackingUri: url, retry: FAST });
    assert.equal(await client.createExperiment('x'), '7');
    assert.equal(seen.length, 3);
    assert.ok(seen.every((s) => s.method === 'POST' && s.url === '/api/2.0/mlflow/experiments/create'));
    assert.equal(seen[2].contentType, 'application/json');
    assert.deepEqual(JSON.parse(seen[2].body), { name: 'x', tags: [] });
  });

  it('retries 429 and honours Retry-After', async () => {
    handler = (_req, res, n) => (n === 1 ? json(res, 429, { error_code: 'REQUEST_LIMIT_EXCEEDED', message: 'slow down' }, { 'retry-after': '0.3' }) : json(res, 200, {}));
    const client = new MlflowClient({ trackingUri: url, retry: { ...FAST, maxDelayMs: 2000 } });
    const t0 = Date.now();
    await client.updateRun('r1', { status: 'FINISHED' });
    assert.equal(seen.length, 2);
    assert.ok(Date.now() - t0 >= 280, `waited ${Date.now() - t0} ms, Retry-After asked for 300`);
  });

  it('retries 408 and 500, gives up after maxAttempts with the attempt count in the error', async () => {
    handler = (_req, res, n) => json(res, n === 1 ? 408 : 500, { error_code: 'INTERNAL_ERROR', message: 'boom' });
    const client = new MlflowClient({ trackingUri: url, retry: FAST });
    await assert.rejects(client.getRun('abc'), (err: unknown) => {
      assert.ok(err instanceof MlflowApiError);
      assert.equal(err.status, 500);
      assert.equal(err.errorCode, 'INTERNAL_ERROR');
      assert.equal(err.attempts, 4);
      assert.match(err.message, /GET \/api\/2\.0\/mlflow\/runs\/get: HTTP 500 INTERNAL_ERROR: boom \(after 4 attempts\)/);
      return true;
    });
    assert.equal(seen.length, 4);
  });

  it('does not retry a 400, nor anything when retry is off', async () => {
    handler = (_req, res) => json(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'nope' });
    const client = new MlflowClient({ trackingUri: url, retry: FAST });
    await assert.rejects(client.createExperiment('x'), MlflowApiError);
    assert.equal(seen.length, 1);
    handler = (_req, res) => json(res, 503, { error_code: 'TEMPORARILY_UNAVAILABLE', message: 'busy' });
    await assert.rejects(client.createRun({ experimentId: '1' }, { retry: false }), (err: unknown) => err instanceof MlflowApiError && err.status === 503);
    assert.equal(seen.length, 2);
  });

  it('get-or-create survives losing the creation race (RESOURCE_ALREADY_EXISTS, then get)', async () => {
    let created = false;
    handler = (req, res) => {
      if (req.url.startsWith('/api/2.0/mlflow/experiments/get-by-name')) {
        if (!created) return json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no such experiment' });
        return json(res, 200, { experiment: { experiment_id: '42', name: 'race', lifecycle_stage: 'active' } });
      }
      // Another process created it between our get and our create.
      created = true;
      return json(res, 400, { error_code: 'RESOURCE_ALREADY_EXISTS', message: 'Experiment(name=race) already exists' });
    };
    const client = new MlflowClient({ trackingUri: url, retry: FAST });
    const exp = await client.getOrCreateExperiment('race');
    assert.equal(exp.experiment_id, '42');
    assert.deepEqual(seen.map((s) => s.url.split('?')[0]), [
      '/api/2.0/mlflow/experiments/get-by-name',
      '/api/2.0/mlflow/experiments/create',
      '/api/2.0/mlflow/experiments/get-by-name',
    ]);
  });

  it('refuses to use a deleted experiment instead of silently logging into it', async () => {
    handler = (_req, res) => json(res, 200, { experiment: { experiment_id: '3', name: 'old', lifecycle_stage: 'deleted' } });
    const client = new MlflowClient({ trackingUri: url, retry: FAST });
    await assert.rejects(client.getOrCreateExperiment('old'), /deleted/);
  });

  it('sends basic auth from MLFLOW_TRACKING_USERNAME/PASSWORD and keeps it out of errors', async () => {
    handler = (_req, res) => json(res, 403, { error_code: 'PERMISSION_DENIED', message: 'Permission denied' });
    const env = { MLFLOW_TRACKING_USERNAME: 'alice', MLFLOW_TRACKING_PASSWORD: SECRET_PASSWORD };
    const client = MlflowClient.fromEnv(url, env, { retry: FAST });
    const err = await client.getRun('r').catch((e: unknown) => e);
    assert.ok(err instanceof MlflowApiError);
    const expected = `Basic ${Buffer.from(`alice:${SECRET_PASSWORD}`).toString('base64')}`;
    assert.equal(seen[0].authorization, expected);
    for (const text of [err.message, String(err.stack), inspect(err), JSON.stringify(err), inspect(client), JSON.stringify(client)]) {
      assert.ok(!text.includes(SECRET_PASSWORD), `password leaked into: ${text}`);
      assert.ok(!text.includes(expected.slice(6)), `encoded credentials leaked into: ${text}`);
    }
  });

  it('sends a bearer token from MLFLOW_TRACKING_TOKEN and keeps it out of errors', async () => {
    handler = (_req, res) => json(res, 401, { error_code: 'UNAUTHENTICATED', message: 'bad token' });
    const client = MlflowClient.fromEnv(url, { MLFLOW_TRACKING_TOKEN: SECRET_TOKEN }, { retry: FAST });
    const err = await client.searchRuns({ experimentIds: ['1'] }).catch((e: unknown) => e);
    assert.ok(err instanceof MlflowApiError);
    assert.equal(seen[0].authorization, `Bearer ${SECRET_TOKEN}`);
    for (const text of [err.message, String(err.stack), inspect(err), inspect(client)]) assert.ok(!text.includes(SECRET_TOKEN));
  });

  it('credentials in the tracking URI become basic auth and never appear in baseUrl or network errors', async () => {
    const port = await freePort();
    const client = new MlflowClient({ trackingUri: `http://bob:${SECRET_PASSWORD}@127.0.0.1:${port}/`, retry: { ...FAST, maxAttempts: 2 } });
    assert.equal(client.baseUrl, `http://127.0.0.1:${port}`);
    const err = await client.getExperimentByName('e').catch((e: unknown) => e);
    assert.ok(err instanceof MlflowNetworkError, String(err));
    assert.match(err.message, /ECONNREFUSED/);
    assert.equal(err.attempts, 2);
    for (const text of [err.message, String(err.stack), inspect(err), inspect(client)]) assert.ok(!text.includes(SECRET_PASSWORD));

    const viaUserinfo = new MlflowClient({ trackingUri: `http://bob:${SECRET_PASSWORD}@${url.slice('http://'.length)}`, retry: FAST });
    handler = (_req, res) => json(res, 200, { experiment: { experiment_id: '1', name: 'e' } });
    await viaUserinfo.getExperimentByName('e');
    assert.equal(seen.at(-1)?.authorization, `Basic ${Buffer.from(`bob:${SECRET_PASSWORD}`).toString('base64')}`);
  });

  it('authFromEnv: basic wins when both are set (as in the Python client), none when empty', () => {
    assert.deepEqual(authFromEnv({ MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p', MLFLOW_TRACKING_TOKEN: 't' }), { kind: 'basic', username: 'u', password: 'p' });
    assert.deepEqual(authFromEnv({ MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_TOKEN: 't' }), { kind: 'bearer', token: 't' });
    assert.equal(authFromEnv({ MLFLOW_TRACKING_TOKEN: '' }), undefined);
  });

  it('does not send credentials to an artifact root on another origin', async () => {
    handler = (_req, res) => json(res, 200, { run: { info: { run_id: 'r', experiment_id: '1', status: 'RUNNING', lifecycle_stage: 'active', artifact_uri: 's3://bucket/1/r/artifacts' }, data: {} } });
    const client = MlflowClient.fromEnv(url, { MLFLOW_TRACKING_TOKEN: SECRET_TOKEN }, { retry: FAST });
    await assert.rejects(client.uploadArtifact('r', 'a.txt', { data: 'x' }), /not served by the tracking server/);
    assert.equal(seen.length, 1, 'only runs/get went out');
  });

  it('refuses non-HTTP tracking URIs with a pointer to a server', () => {
    assert.throws(() => new MlflowClient({ trackingUri: 'sqlite:///mlflow.db' }), /over HTTP only/);
    assert.throws(() => new MlflowClient({ trackingUri: 'databricks' }), /not a URL/);
  });
});

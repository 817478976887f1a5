import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Plan } from '../exec/plan-spec.js';
import type { ArtifactView } from '../stages/contract.js';
import { buildReport, REPORT_FORMAT } from './build.js';
import type { MissingItem, ReportParams } from './collect.js';

export interface PublishResult {
  /** The report folder (reports/<spec name>/ unless overridden). */
  dir: string;
  /** 'artifact': copied from the finished report stage; 'store': rebuilt from whatever the store holds. */
  from: 'artifact' | 'store';
  complete: boolean;
  evaluations: { expected: number; present: number };
  missing: MissingItem[];
}

export interface PublishOptions {
  /** Report folder (default: <project root>/reports/<spec name>). */
  outDir?: string;
}

/** Store-internal files of an artifact that are not part of the report. */
const INTERNAL = new Set(['manifest.json', 'stage.json', 'records.jsonl', 'meta.json']);

export function reportDir(plan: Plan, options: PublishOptions = {}): string {
  return options.outDir ?? join(plan.resolved.loaded.projectRoot, 'reports', plan.resolved.base.name);
}

/**
 * Whether `dir` may be replaced by a report: absent, empty, or an earlier report (its report.md and
 * results.json). Anything else, e.g. `--out docs`, would be deleted by the swap.
 */
function replaceable(dir: string): boolean {
  if (!existsSync(dir)) return true;
  if (!statSync(dir).isDirectory()) return false;
  const entries = readdirSync(dir);
  return entries.length === 0 || (entries.includes('report.md') && entries.includes('results.json'));
}

/** Fills a fresh sibling folder and swaps it in, so the folder never mixes pictures of two builds. */
async function replaceDir<T>(dir: string, fill: (tmp: string) => Promise<T>): Promise<T> {
  if (!replaceable(dir)) {
    throw new Error(
      `${dir} exists and is not a metadd report (no report.md and results.json): writing the report there would delete its contents. ` +
        `Choose a new or empty folder, e.g. --out ${join(dir, 'report')}`,
    );
  }
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${process.pid}.${Date.now()}.tmp-report`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    const result = await fill(tmp);
    const old = `${tmp}.old`;
    if (existsSync(dir)) renameSync(dir, old);
    renameSync(tmp, dir);
    rmSync(old, { recursive: true, force: true });
    return result;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function reportNode(plan: Plan) {
  const node = plan.dag.nodes.get(plan.dag.reportKey);
  if (!node) throw new Error(`the plan of ${plan.resolved.base.name} has no report stage`);
  return node;
}

/** Why a stage has no artifact: another process holds its lock, it left a log (failed or interrupted), or it never ran. */
async function missingReason(plan: Plan, key: string): Promise<string> {
  if (await plan.store.isLocked(key)) return 'being computed by another process';
  const log = join(plan.store.root, 'logs', `${key}.log`);
  if (existsSync(log)) return `failed or interrupted (log: ${log})`;
  return 'not computed yet';
}

/**
 * Rebuilds the report of a plan from whatever its store holds, computing nothing: results that are
 * not in the store show as missing and are listed. Writes into reports/<spec name>/ (replacing it).
 */
export async function rebuildReport(plan: Plan, options: PublishOptions = {}): Promise<PublishResult> {
  const node = reportNode(plan);
  const params = node.params as unknown as ReportParams;
  const views = new Map<string, ArtifactView>();
  const reasons = new Map<string, string>();
  for (const [name, key] of Object.entries(node.inputs)) {
    if (plan.store.has(key)) views.set(name, plan.store.view(key));
    else reasons.set(name, await missingReason(plan, key));
  }
  const dir = reportDir(plan, options);
  const model = await replaceDir(dir, (tmp) =>
    buildReport(
      params,
      {
        artifact: (name) => views.get(name),
        missingReason: (name) => reasons.get(name),
        label: (name) => plan.dag.nodes.get(node.inputs[name])?.label,
        artifactDir: (key) => (plan.store.has(key) ? plan.store.objectDir(key) : undefined),
      },
      tmp,
      'store',
    ),
  );
  return { dir, from: 'store', complete: model.complete, evaluations: model.evaluations, missing: model.missing };
}

/**
 * After `metadd run`: copies the report stage's artifact to reports/<spec name>/, or, when the
 * report stage did not run (a failed or interrupted sweep), rebuilds a partial report from the store.
 */
export async function publishReport(plan: Plan, options: PublishOptions = {}): Promise<PublishResult> {
  const key = plan.dag.reportKey;
  const src = plan.store.objectDir(key);
  // A report artifact of an older format (before results.json carried `format`) is rebuilt instead.
  const current = (): boolean => {
    try {
      return (JSON.parse(readFileSync(join(src, 'results.json'), 'utf8')) as { format?: string }).format === REPORT_FORMAT;
    } catch {
      return false;
    }
  };
  if (!plan.store.has(key) || !current()) return rebuildReport(plan, options);
  const dir = reportDir(plan, options);
  await replaceDir(dir, async (tmp) => {
    for (const entry of readdirSync(src)) if (!INTERNAL.has(entry)) cpSync(join(src, entry), join(tmp, entry), { recursive: true });
  });
  const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Pick<PublishResult, 'complete' | 'evaluations' | 'missing'>;
  return { dir, from: 'artifact', complete: results.complete, evaluations: results.evaluations, missing: results.missing };
}

/** What `metadd report` (and `metadd run`) print about a published report: its summary (the first table and its paired tables), then where it is and what is missing. */
export function describePublish(r: PublishResult): string {
  const summaryFile = join(r.dir, 'summary.md');
  const summary = existsSync(summaryFile) ? `\n${readFileSync(summaryFile, 'utf8')}\n` : '';
  const lines = [`report: ${join(r.dir, 'report.html')} (also report.md, report.tex, results.csv, results.json, sets.csv, summary.md)`];
  if (r.complete) lines.push(`complete: all ${r.evaluations.expected} evaluations present`);
  else {
    lines.push(`partial: ${r.evaluations.present} of ${r.evaluations.expected} evaluations present; missing:`);
    for (const x of r.missing.slice(0, 20)) lines.push(`  ${x.what} ${x.where}: ${x.reason}`);
    if (r.missing.length > 20) lines.push(`  ... and ${r.missing.length - 20} more (see the report)`);
  }
  return `${summary}${lines.join('\n')}\n`;
}

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { StageImpl } from './contract.js';
import { STAGE_VERSIONS } from './versions.js';
import { buildReport, REPORT_FILES } from '../report/build.js';
import type { ReportParams } from '../report/collect.js';
import { formatStat } from '../report/aggregate.js';

export type { ReportParams } from '../report/collect.js';

/** Reads every evaluation result and image set of the spec and writes the report (docs/reports.md). */
export const reportStage: StageImpl<ReportParams> = {
  kind: 'report',
  version: STAGE_VERSIONS.report,
  needsTensors: false,
  async run(ctx) {
    // Artifacts live at <store>/objects/<k0k1>/<key>, so any input locates its siblings: the image
    // sets a MetaDD set was refined from, whose curves belong to the set's trajectory.
    const first = Object.values(ctx.inputs)[0];
    const objects = first ? resolve(dirname(first.dir), '..') : undefined;
    const model = await buildReport(
      ctx.params,
      {
        artifact: (name) => ctx.inputs[name],
        artifactDir: (key) => {
          const dir = objects ? join(objects, key.slice(0, 2), key) : undefined;
          return dir && existsSync(dir) ? dir : undefined;
        },
      },
      ctx.outDir,
      'stage',
    );
    for (const f of REPORT_FILES) ctx.track.artifact(f);
    for (const t of model.tables) {
      for (const r of t.rows) {
        if (r.kind !== 'result') continue;
        for (const c of t.columns) {
          const s = r.entries[c.arch].stat;
          if (s) ctx.track.metric(`acc.${t.name}.${r.labels.join('_')}.${c.arch}`.replace(/[^A-Za-z0-9_.\-/ ]/g, '_'), s.mean);
        }
        ctx.log(`${r.labels.join(' / ')}: ${t.columns.map((c) => `${c.arch} ${formatStat(r.entries[c.arch].stat, t.digits)}`).join(', ')}`);
      }
    }
    for (const x of model.missing) ctx.log(`missing ${x.what} ${x.where}: ${x.reason}`);
    ctx.progress.update(1, 1);
  },
};

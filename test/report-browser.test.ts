import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { buildReport } from '../src/report/build.js';
import { FixtureStore, writeSweep, type SweepCell, removeFixtures } from './report-fixtures.js';

after(removeFixtures);

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.METADD_SKIP_BROWSER === '1' ? 'METADD_SKIP_BROWSER=1: the HTML report is not rendered in a browser' : false;

/** A MetaDD sweep with one missing evaluation, CAM overlays on the MetaDD sets and a published reference row. */
function sweep(): SweepCell[] {
  const cells: SweepCell[] = [];
  for (const [method, arms] of [['random', ['none']], ['dc', ['none', 'metadd']]] as const) {
    for (const ipc of [1, 10]) {
      for (const arm of arms) {
        const b = (method === 'random' ? 0.6 : 0.8) + ipc / 100 + (arm === 'metadd' ? 0.02 : 0);
        const results: SweepCell['results'] = { convnet: [b, b + 0.01], resnet18: [b - 0.05, b - 0.04], alexnet: [b - 0.1, b - 0.08] };
        if (method === 'dc' && ipc === 10 && arm === 'none') results.alexnet = undefined;
        cells.push({
          facts: { 'distill.method': method, 'distill.ipc': ipc, 'metadd.arm': arm, 'metadd.aux': ['convnet', 'resnet18'], seed: 0 },
          coords: { 'distill.ipc': ipc, 'metadd.arm': arm },
          results,
          cams: arm === 'metadd',
        });
      }
    }
  }
  return cells;
}

test('the HTML report renders in a real headless Chromium with its tables and every picture', { skip, timeout: 120_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`npm run setup:test\` (installs Debian's chromium), or set METADD_SKIP_BROWSER=1 to skip this test`);
  const store = new FixtureStore();
  const { params, source } = writeSweep(store, 'browser', ['convnet', 'resnet18', 'alexnet'], sweep(), {
    tables: [
      { name: 'main', reference: [{ label: 'DC (published)', values: { convnet: 91.7 }, std: { convnet: 0.5 } }] },
      { name: 'ipc10', where: { 'distill.ipc': 10 }, rows: ['distill.method'], groups: 'none', average: 'partial' },
    ],
  });
  const out = join(store.root, 'report');
  const model = await buildReport(params, source, out, 'store');
  const expectedImages = model.figures.filter((f) => existsSync(join(out, f.png))).length;
  assert.ok(model.figures.some((f) => f.section === 'cams') && model.figures.some((f) => f.section === 'sets') && model.figures.some((f) => f.section === 'accuracy'));

  const profile = mkdtempSync(join(tmpdir(), 'metadd-chromium-'));
  // A fresh profile per run (playwright passes it to Chromium as --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await context.newPage();
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('data:') && !r.url().startsWith('file:')) requests.push(r.url());
    });
    await page.goto(pathToFileURL(join(out, 'report.html')).href, { waitUntil: 'load' });
    await page.waitForFunction(() => [...document.images].every((i) => i.complete));
    const dom = await page.evaluate(() => ({
      tables: [...document.querySelectorAll('table.results')].map((t) => ({
        name: t.getAttribute('data-table'),
        bodyRows: t.querySelectorAll('tbody tr').length,
        resultRows: t.querySelectorAll('tbody tr.result').length,
        referenceRows: t.querySelectorAll('tbody tr.reference').length,
        headerCells: [...t.querySelectorAll('thead tr.columns th')].map((th) => th.textContent),
        groupHeaders: [...t.querySelectorAll('thead th.group')].map((th) => `${th.textContent}:${th.getAttribute('colspan')}`),
        cellsPerRow: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].reduce((n, td) => n + Number(td.getAttribute('colspan') ?? 1), 0)),
        missing: [...t.querySelectorAll('td.missing')].map((td) => td.textContent),
        best: t.querySelectorAll('td.best').length,
      })),
      images: [...document.images].map((i) => ({ alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth, src: i.src.slice(0, 22) })),
      setStatistics: [...document.querySelectorAll('table.set-statistics tbody tr')].map((tr) => tr.children.length),
      banner: document.querySelector('.partial-banner')?.textContent ?? null,
      missingList: document.querySelectorAll('#missing + table tbody tr').length,
    }));

    assert.equal(dom.tables.length, 2);
    const [main, ipc10] = dom.tables;
    assert.equal(main.name, 'main');
    // random x {1, 10} + dc x {1, 10} x {base, MetaDD}, and the published row.
    assert.equal(main.resultRows, 6);
    assert.equal(main.referenceRows, 1);
    // The set statistics follow main's result rows, every row as wide as the header.
    assert.equal(dom.setStatistics.length, main.resultRows);
    assert.ok(dom.setStatistics.every((n) => n === model.setStats?.header.length));
    assert.deepEqual(main.headerCells, ['Method', 'IPC', 'MetaDD', 'ConvNet', 'ResNet-18', 'AlexNet', 'Avg.']);
    assert.deepEqual(main.groupHeaders, ['Seen:2', 'Unseen:1']);
    // Every row spans the same number of columns: 3 keys + 3 architectures + the average.
    assert.deepEqual(new Set(main.cellsPerRow), new Set([7]));
    // The missing evaluation: its entry and the row's average (complete-only) show as missing, not zero.
    assert.deepEqual(main.missing, ['—', '—']);
    assert.ok(main.best >= 3, 'a best entry per column of each IPC block');
    assert.equal(ipc10.resultRows, 3);
    assert.deepEqual(ipc10.headerCells, ['Method', 'MetaDD', 'ConvNet', 'ResNet-18', 'AlexNet', 'Avg.']);
    assert.deepEqual(ipc10.groupHeaders, []);
    assert.deepEqual(ipc10.missing, ['—'], "with average: 'partial' only the entry itself is missing");

    assert.equal(dom.images.length, expectedImages);
    for (const img of dom.images) {
      assert.ok(img.complete && img.naturalWidth > 0, `image '${img.alt}' did not load`);
      assert.equal(img.src, 'data:image/png;base64,', 'pictures are embedded, so the page stands alone');
    }
    assert.match(dom.banner ?? '', /Partial report.*17 of 18 evaluations/s);
    assert.equal(dom.missingList, 1);
    assert.deepEqual(requests, [], 'the page loads nothing from the network');

    const shot = join(store.root, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = PNG.sync.read(readFileSync(shot));
    assert.ok(png.width >= 1000 && png.height > 900, `full-page screenshot ${png.width}x${png.height}`);
    let dark = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i] < 100 && png.data[i + 1] < 100 && png.data[i + 2] < 100) dark++;
    assert.ok(dark > 5000, `the screenshot shows text (${dark} dark pixels)`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(store.root, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { planSpec } from '../src/exec/plan-spec.js';

const PAPER = fileURLToPath(new URL('../../experiments/paper/', import.meta.url));

/** A CIFAR-10 binary layout with `perClass` training images per class spread over the five batches. */
function cifarFixture(root: string, perClass: number): void {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const batch = (n: number, seed: number): Buffer => {
    const b = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      b[i * 3073] = i % 10;
      for (let j = 1; j < 3073; j++) b[i * 3073 + j] = (i * 31 + j * 7 + seed) % 256;
    }
    return b;
  };
  for (let k = 1; k <= 5; k++) writeFileSync(join(dir, `data_batch_${k}.bin`), batch((perClass * 10) / 5, k));
  writeFileSync(join(dir, 'test_batch.bin'), batch(20, 9));
}

function tinyFixture(root: string, classes: string[], perClass: number): void {
  const png = (v: number): Buffer => {
    const p = new PNG({ width: 64, height: 64 });
    p.data.fill(v);
    return PNG.sync.write(p);
  };
  const base = join(root, 'tiny-imagenet-200');
  classes.forEach((wnid, c) => {
    mkdirSync(join(base, 'train', wnid, 'images'), { recursive: true });
    for (let i = 0; i < perClass; i++) writeFileSync(join(base, 'train', wnid, 'images', `${wnid}_${i}.png`), png(40 * c + i));
  });
  mkdirSync(join(base, 'val', 'images'), { recursive: true });
  const lines = classes.map((wnid, c) => {
    writeFileSync(join(base, 'val', 'images', `val_${c}.png`), png(10 * c));
    return `val_${c}.png\t${wnid}\t0\t0\t63\t63`;
  });
  writeFileSync(join(base, 'val', 'val_annotations.txt'), `${lines.join('\n')}\n`);
}

test('the CIFAR-10 IPC 10 paper spec validates and plans over data on disk', () => {
  const data = mkdtempSync(join(tmpdir(), 'metadd-paper-'));
  cifarFixture(data, 10);
  const plan = planSpec(join(PAPER, 'cifar10-ipc10.yaml'), { sets: [`data_root=${data}`], store: join(data, 'store') });
  // Five bases (DC, DSA, DM, MTT, SRe2L) x three arms x three seeds, and the random subset.
  assert.equal(plan.resolved.cells.length, 5 * 3 * 3 + 1);
  const kinds = new Map<string, number>();
  for (const n of plan.dag.nodes.values()) kinds.set(n.kind, (kinds.get(n.kind) ?? 0) + 1);
  // The images, and the ZCA-whitened images MTT's reference distils from.
  assert.equal(kinds.get('dataset'), 2);
  const whitened = [...plan.dag.nodes.values()].filter((n) => n.kind === 'dataset' && n.params.zca);
  assert.equal(whitened.length, 1);
  // Four auxiliary networks per dataset (shared by every MetaDD cell on it), MTT's 100 experts (on the
  // whitened images) and SRe2L's teacher.
  assert.equal(kinds.get('pretrain'), 4 * 2 + 100 + 1);
  const onWhitened = [...plan.dag.nodes.values()].filter((n) => n.kind === 'distill' && n.inputs.dataset === whitened[0].key);
  assert.deepEqual([...new Set(onWhitened.map((n) => n.params.method))], ['mtt']);
  // Evaluated sets: 15 base sets + the random subset + 30 aligned (control and MetaDD) sets, on 7 architectures.
  assert.equal(kinds.get('eval'), (15 + 1 + 30) * 7);
  const evaluated = new Set([...plan.dag.nodes.values()].filter((n) => n.kind === 'eval').map((n) => n.label.split(' ')[1]));
  assert.deepEqual([...evaluated], ['convnet', 'resnet18', 'vgg11', 'alexnet', 'resnet50', 'vgg19', 'swin']);
  assert.equal(plan.resolved.cells[0].spec.eval.epochs, 1000, 'the protocol comes from protocol.yaml');
});

test('the Tiny-ImageNet IPC 50 paper spec validates and plans; IPC is checked against the data', () => {
  const data = mkdtempSync(join(tmpdir(), 'metadd-paper-'));
  tinyFixture(data, ['n01', 'n02'], 50);
  const plan = planSpec(join(PAPER, 'tinyimagenet-ipc50.yaml'), { sets: [`data_root=${data}`], store: join(data, 'store') });
  assert.equal(plan.resolved.cells.length, 3 * 3 * 3 + 1);
  const evaluated = new Set([...plan.dag.nodes.values()].filter((n) => n.kind === 'eval').map((n) => n.label.split(' ')[1]));
  assert.ok(evaluated.has('convnet-d4'), `a depth-4 ConvNet on 64x64 images, as the references (${[...evaluated].join(', ')})`);
  const few = mkdtempSync(join(tmpdir(), 'metadd-paper-'));
  tinyFixture(few, ['n01', 'n02'], 20);
  assert.throws(() => planSpec(join(PAPER, 'tinyimagenet-ipc50.yaml'), { sets: [`data_root=${few}`] }), /IPC 50 is more than the 20 training images/);
});

test('every spec under experiments/ validates and plans', () => {
  // The paper specs need data on disk (CIFAR-10, Tiny-ImageNet): the tests above plan them over fixtures.
  const dir = fileURLToPath(new URL('../../experiments/', import.meta.url));
  const names = readdirSync(dir).filter((n) => n.endsWith('.yaml'));
  assert.ok(names.length >= 40, `found ${names.length} specs in ${dir}`);
  for (const name of names) {
    const plan = planSpec(join(dir, name), { store: mkdtempSync(join(tmpdir(), 'metadd-store-')) });
    assert.ok(plan.dag.order.length > 0, name);
  }
});

test('experiments/README.md lists every spec under experiments/, and only specs that exist', () => {
  const dir = fileURLToPath(new URL('../../experiments/', import.meta.url));
  const onDisk = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((n) => n.endsWith('.yaml'))
    .map((n) => n.split(sep).join('/'))
    .sort();
  const index = readFileSync(join(dir, 'README.md'), 'utf8');
  const linked = [...index.matchAll(/\]\(([^)]+\.yaml)\)/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(linked)].sort(), onDisk);
  assert.equal(linked.length, onDisk.length, 'each spec listed once');
});

import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { DatasetSourceError, digestSources, isDir, isFile, listDir, readSourceFile, type SourceFile } from './files.js';
import type { RawDataset, SourceSummary } from './types.js';

/**
 * Image folders (docs/datasets.md):
 * - class folders: `train/<class>/*.png`, and `test/<class>/*.png` (or `val/<class>/*.png` when there is no `test/`);
 * - Tiny-ImageNet: `train/<wnid>/images/*`, `val/images/*` labelled by `val/val_annotations.txt`
 *   (`<file>\t<wnid>\t...` per line); `words.txt` (`<wnid>\t<name>`) names the classes when present.
 * Classes are the training folders in natural order; images within a folder in natural file-name order;
 * the training set is class-major (all images of class 0, then class 1, ...).
 * PNG is decoded with pngjs, JPEG (Tiny-ImageNet ships `.JPEG`) with jpeg-js.
 */

const IMAGE_EXT = /\.(png|jpe?g)$/i;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface ImageEntry {
  file: string;
  /** Path relative to the dataset folder, `/`-separated: the file's role in the digest. */
  rel: string;
  label: number;
}

export interface ImageFolderListing {
  root: string;
  layout: 'class-folders' | 'tiny-imagenet';
  /** Folder names (wnids for Tiny-ImageNet), in class-index order. */
  classIds: string[];
  classNames: string[];
  train: ImageEntry[];
  test: ImageEntry[];
  /** Annotation and name files that shape the dataset, for the digest. */
  extra: SourceFile[];
}

function imagesIn(dir: string, relDir: string, label: number): ImageEntry[] {
  return listDir(dir, 'a folder of images')
    .filter((e) => !e.isDir && IMAGE_EXT.test(e.name))
    .map((e) => ({ file: join(dir, e.name), rel: `${relDir}/${e.name}`, label }));
}

function parseTabbed(file: string, minFields: number, what: string): string[][] {
  const text = readSourceFile(file, what).toString('utf8');
  const rows: string[][] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    const fields = line.split('\t').map((f) => f.trim());
    if (fields.length < minFields) throw new DatasetSourceError(file, `line ${i + 1} has ${fields.length} tab-separated field(s), expected ${what}`);
    rows.push(fields);
  });
  return rows;
}

/** Walk the folder layout without reading any image. */
export function scanImageFolder(root: string): ImageFolderListing {
  const trainDir = join(root, 'train');
  if (!isDir(trainDir)) {
    throw new DatasetSourceError(trainDir, 'not found (expected an image folder: train/<class>/*.png, or Tiny-ImageNet train/<wnid>/images/*)');
  }
  const classIds = listDir(trainDir, 'one folder per class').filter((e) => e.isDir).map((e) => e.name);
  if (classIds.length === 0) throw new DatasetSourceError(trainDir, 'no class folders (expected train/<class>/ folders of images)');
  const index = new Map(classIds.map((id, i) => [id, i]));
  const extra: SourceFile[] = [];

  const train: ImageEntry[] = [];
  let tinyTrain = false;
  classIds.forEach((id, label) => {
    const nested = join(trainDir, id, 'images');
    const useNested = isDir(nested);
    tinyTrain ||= useNested;
    const entries = useNested ? imagesIn(nested, `train/${id}/images`, label) : imagesIn(join(trainDir, id), `train/${id}`, label);
    if (entries.length === 0) {
      throw new DatasetSourceError(useNested ? nested : join(trainDir, id), 'no images (expected .png files)');
    }
    train.push(...entries);
  });

  const annotations = join(root, 'val', 'val_annotations.txt');
  let test: ImageEntry[];
  let layout: ImageFolderListing['layout'] = tinyTrain ? 'tiny-imagenet' : 'class-folders';
  if (isFile(annotations)) {
    layout = 'tiny-imagenet';
    test = tinyValidation(root, annotations, index);
    extra.push({ role: 'val/val_annotations.txt', path: annotations });
  } else {
    const testName = isDir(join(root, 'test')) ? 'test' : isDir(join(root, 'val')) ? 'val' : undefined;
    if (testName === undefined) {
      throw new DatasetSourceError(join(root, 'test'), 'not found (expected test/<class>/*.png or val/<class>/*.png, or val/val_annotations.txt for Tiny-ImageNet)');
    }
    test = [];
    for (const e of listDir(join(root, testName), 'one folder per class')) {
      if (!e.isDir) continue;
      const label = index.get(e.name);
      if (label === undefined) {
        throw new DatasetSourceError(join(root, testName, e.name), `class folder not present under train/ (expected one of the ${classIds.length} training classes)`);
      }
      test.push(...imagesIn(join(root, testName, e.name), `${testName}/${e.name}`, label));
    }
    // Keep the test set in class order like the training set, whatever order the folders listed in.
    test.sort((a, b) => a.label - b.label);
  }
  if (test.length === 0) throw new DatasetSourceError(join(root, 'test'), 'no test images found');

  let classNames = classIds.slice();
  const words = join(root, 'words.txt');
  if (layout === 'tiny-imagenet' && isFile(words)) {
    const names = new Map(parseTabbed(words, 2, '<wnid>\\t<name>').map((r) => [r[0], r[1]]));
    classNames = classIds.map((id) => names.get(id) ?? id);
    extra.push({ role: 'words.txt', path: words });
  }
  return { root, layout, classIds, classNames, train, test, extra };
}

function tinyValidation(root: string, annotations: string, index: Map<string, number>): ImageEntry[] {
  const imagesDir = join(root, 'val', 'images');
  const rows = parseTabbed(annotations, 2, '<file>\\t<wnid>[\\t<box>]');
  const labelOf = new Map<string, number>();
  rows.forEach(([fileName, wnid], i) => {
    const label = index.get(wnid);
    if (label === undefined) {
      throw new DatasetSourceError(annotations, `line ${i + 1}: class ${wnid} has no folder under train/ (expected one of the training wnids)`);
    }
    if (!isFile(join(imagesDir, fileName))) {
      throw new DatasetSourceError(join(imagesDir, fileName), `not found (listed on line ${i + 1} of ${annotations})`);
    }
    labelOf.set(fileName, label);
  });
  return listDir(imagesDir, 'the Tiny-ImageNet validation images')
    .filter((e) => !e.isDir && IMAGE_EXT.test(e.name))
    .map((e) => {
      const label = labelOf.get(e.name);
      if (label === undefined) throw new DatasetSourceError(join(imagesDir, e.name), `has no line in ${annotations} (expected every validation image to be labelled)`);
      return { file: join(imagesDir, e.name), rel: `val/images/${e.name}`, label };
    });
}

interface PngHeader {
  width: number;
  height: number;
  gray: boolean;
}

function isJpeg(bytes: Buffer): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** A JPEG's size and component count from its start-of-frame marker, without decoding the pixels. */
function jpegHeader(bytes: Buffer, file: string): PngHeader {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) throw new DatasetSourceError(file, `corrupt JPEG (expected a marker at byte ${i})`);
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = bytes.readUInt16BE(i + 2);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: bytes.readUInt16BE(i + 5), width: bytes.readUInt16BE(i + 7), gray: bytes[i + 9] === 1 };
    }
    i += 2 + length;
  }
  throw new DatasetSourceError(file, 'corrupt JPEG (no start-of-frame marker found)');
}

/** Signature and IHDR (PNG) or SOF (JPEG) only: enough to check sizes and colour without decoding. */
function pngHeader(bytes: Buffer, file: string): PngHeader {
  if (isJpeg(bytes)) return jpegHeader(bytes, file);
  if (bytes.length < 26 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE) || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new DatasetSourceError(file, `not a PNG image (expected the PNG signature and an IHDR chunk, ${bytes.length} bytes found)`);
  }
  // Colour type bit 2 = colour (types 2, 3 = palette, 6); types 0 and 4 are grayscale.
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), gray: (bytes[25] & 2) === 0 };
}

function checkSize(h: PngHeader, file: string, ref: { height: number; width: number; file: string }): void {
  if (h.width !== ref.width || h.height !== ref.height) {
    throw new DatasetSourceError(file, `image is ${h.width}x${h.height}, expected ${ref.width}x${ref.height} like ${ref.file} (images are not resized)`);
  }
}

export interface ImageFolderOptions {
  /** Force 1 or 3 channels; default: 1 when every image is a grayscale PNG, else 3. */
  channels?: 1 | 3 | null;
  signal?: AbortSignal;
}

function digestOf(listing: ImageFolderListing): string {
  const files: SourceFile[] = [...listing.train, ...listing.test].map((e) => ({ role: e.rel, path: e.file }));
  return digestSources([...files, ...listing.extra]);
}

export function describeImageFolder(root: string, opts: ImageFolderOptions = {}): SourceSummary {
  const listing = scanImageFolder(root);
  const first = listing.train[0];
  const ref = { ...pngHeader(readSourceFile(first.file, 'an image'), first.file), file: first.file };
  let allGray = true;
  for (const e of [...listing.train, ...listing.test]) {
    opts.signal?.throwIfAborted();
    const h = pngHeader(readSourceFile(e.file, 'an image'), e.file);
    checkSize(h, e.file, ref);
    allGray &&= h.gray;
  }
  const count = (list: ImageEntry[]) => {
    const c = new Array<number>(listing.classIds.length).fill(0);
    for (const e of list) c[e.label]++;
    return c;
  };
  return {
    classes: listing.classIds.length,
    classNames: listing.classNames,
    channels: opts.channels ?? (allGray ? 1 : 3),
    height: ref.height,
    width: ref.width,
    trainCounts: count(listing.train),
    testCounts: count(listing.test),
    digest: digestOf(listing),
  };
}

/** Decode every image to interleaved RGB bytes; gray PNGs arrive with R = G = B from pngjs. */
function decodeAll(entries: ImageEntry[], ref: { height: number; width: number; file: string }, signal?: AbortSignal) {
  const plane = ref.height * ref.width;
  const rgb = new Uint8Array(entries.length * plane * 3);
  let allGray = true;
  entries.forEach((e, k) => {
    signal?.throwIfAborted();
    const bytes = readSourceFile(e.file, 'an image');
    const header = pngHeader(bytes, e.file);
    checkSize(header, e.file, ref);
    let png: { data: Uint8Array; color: boolean };
    try {
      png = isJpeg(bytes)
        ? { data: jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 }).data, color: !header.gray }
        : PNG.sync.read(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new DatasetSourceError(e.file, `corrupt ${isJpeg(bytes) ? 'JPEG' : 'PNG'} (${reason})`, { cause: err });
    }
    allGray &&= !png.color;
    const base = k * plane * 3;
    for (let p = 0; p < plane; p++) {
      rgb[base + 3 * p] = png.data[4 * p];
      rgb[base + 3 * p + 1] = png.data[4 * p + 1];
      rgb[base + 3 * p + 2] = png.data[4 * p + 2];
    }
  });
  return { rgb, allGray };
}

/** Interleaved RGB bytes -> NCHW floats with 1 channel (ITU-R 601 luma, unrounded) or 3. */
function toNchw(rgb: Uint8Array, n: number, plane: number, channels: 1 | 3): Float32Array {
  const out = new Float32Array(n * plane * channels);
  for (let i = 0; i < n; i++) {
    const src = i * plane * 3;
    const dst = i * plane * channels;
    for (let p = 0; p < plane; p++) {
      const r = rgb[src + 3 * p];
      const g = rgb[src + 3 * p + 1];
      const b = rgb[src + 3 * p + 2];
      if (channels === 1) out[dst + p] = (299 * r + 587 * g + 114 * b) / 1000;
      else {
        out[dst + p] = r;
        out[dst + plane + p] = g;
        out[dst + 2 * plane + p] = b;
      }
    }
  }
  return out;
}

export function loadImageFolder(root: string, opts: ImageFolderOptions = {}): RawDataset {
  const listing = scanImageFolder(root);
  const first = listing.train[0];
  const head = pngHeader(readSourceFile(first.file, 'an image'), first.file);
  const ref = { height: head.height, width: head.width, file: first.file };
  const train = decodeAll(listing.train, ref, opts.signal);
  const test = decodeAll(listing.test, ref, opts.signal);
  const channels: 1 | 3 = opts.channels ?? (train.allGray && test.allGray ? 1 : 3);
  const plane = ref.height * ref.width;
  return {
    trainX: toNchw(train.rgb, listing.train.length, plane, channels),
    trainY: Int32Array.from(listing.train, (e) => e.label),
    testX: toNchw(test.rgb, listing.test.length, plane, channels),
    testY: Int32Array.from(listing.test, (e) => e.label),
    classes: listing.classIds.length,
    classNames: listing.classNames,
    channels,
    height: ref.height,
    width: ref.width,
    digest: digestOf(listing),
  };
}

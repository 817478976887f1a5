/**
 * The in-memory form every dataset loader returns, and the `dataset` stage parameters.
 * Loaders never normalise: pixels stay on the 0..255 intensity scale of the source so that the
 * normalisation (docs/artifacts.md) is applied in exactly one place (src/data/normalize.ts).
 */

export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'idx', 'cifar10', 'cifar100', 'image-folder', 'npy'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Explicit file paths for the `idx` and `npy` sources (override the default names inside `path`). */
export interface DatasetFilePaths {
  train_x: string;
  train_y: string;
  test_x: string;
  test_y: string;
}

/**
 * Parameters of the `dataset` stage: exactly what goes into its cache key.
 * Field names follow the spec schema (`schemas/experiment.schema.json`, `$defs.dataset`);
 * `paths`, `npy_pixel_max` and `image_channels` are optional extras the schema may expose later.
 * Relative paths are resolved against the current directory: the spec layer is expected to have
 * resolved them against `data_root` already.
 */
export interface DatasetParams {
  name: DatasetName;
  /** Folder holding the files of a user dataset (`idx`, `cifar10`, `cifar100`, `image-folder`, `npy`). */
  path?: string;
  /** `idx` / `npy` only: the four files, when they do not use the default names inside `path`. */
  paths?: DatasetFilePaths;
  /** Keep the first N training images of each class (source order); null or absent keeps all. */
  train_limit?: number | null;
  /** Keep the first N test images of each class (source order); null or absent keeps all. */
  test_limit?: number | null;
  /** CIFAR-100: fine (100 classes, default) or coarse (20 superclasses) labels. */
  cifar100_labels?: 'fine' | 'coarse';
  /** `npy` images: axis order of the image arrays (default NCHW; 3-D [N, H, W] means one channel). */
  npy_layout?: 'NCHW' | 'NHWC';
  /**
   * `npy` images: the value of a full-intensity pixel. Default: 255 for integer dtypes; for float
   * dtypes 1 if every training value is at most 1, else 255.
   */
  npy_pixel_max?: number;
  /** `image-folder`: force 1 or 3 channels; default: 1 if every image is a grayscale PNG, else 3. */
  image_channels?: 1 | 3 | null;
  /** ZCA whitening after normalisation (src/data/zca.ts); absent or null: none. */
  zca?: { eps: number } | null;
}

/** A whole dataset in memory, before normalisation. */
export interface RawDataset {
  /** [N, C, H, W] pixel intensities on the 0..255 scale (floats allowed, e.g. from npy sources). */
  trainX: Float32Array;
  /** [N] class indices in 0..classes-1. */
  trainY: Int32Array;
  testX: Float32Array;
  testY: Int32Array;
  classes: number;
  classNames: string[];
  channels: number;
  height: number;
  width: number;
  /** Content digest of the source files (src/data/files.ts `digestSources`), independent of their location. */
  digest: string;
}

/** Per-channel normalisation in [0, 1] pixel units: x = (pixel / 255 - mean[c]) / std[c]. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

/** What `loadDataset` returns: the subset asked for, plus the normalisation to apply to it. */
export interface LoadedDataset extends RawDataset, ChannelStats {
  /** `reference`: published constants for the dataset; `computed`: from the full training split. */
  statsSource: 'reference' | 'computed';
  /** Images per class after `train_limit` / `test_limit`. */
  trainPerClass: number[];
  testPerClass: number[];
}

/** What semantic validation needs to know about a source, read without decoding the images. */
export interface DatasetSourceInfo {
  name: DatasetName;
  classes: number;
  classNames: string[];
  channels: number;
  height: number;
  width: number;
  /** Training images per class after `train_limit` (exact: counted from the labels or the file listing). */
  trainPerClass: number[];
  /** Test images per class after `test_limit`. */
  testPerClass: number[];
  /** Same value as `RawDataset.digest` for the same files (sha256 of the file contents, cached in memory). */
  digest: string;
}

/** A source described without decoding its images: full splits, before any limit. */
export interface SourceSummary {
  classes: number;
  classNames: string[];
  channels: number;
  height: number;
  width: number;
  trainCounts: number[];
  testCounts: number[];
  digest: string;
}

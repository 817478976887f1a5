import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../util/rng.js';

export const ARCH_NAMES = ['convnet', 'mlp', 'lenet', 'alexnet', 'vgg11', 'vgg19', 'resnet18', 'resnet50', 'swin'] as const;
export type ArchName = (typeof ARCH_NAMES)[number];
export type NormKind = 'none' | 'batch' | 'layer' | 'instance' | 'group';
export type ActKind = 'relu' | 'leakyrelu' | 'sigmoid' | 'tanh' | 'gelu';
export type PoolKind = 'none' | 'max' | 'avg';
export type HeadKind = 'flatten' | 'gap';

/**
 * An architecture as the spec writes it (same shape as `Architecture` in src/spec/types.generated.ts).
 * Unset options take the per-architecture defaults of docs/models.md; `resolveArch` fills them in.
 */
export interface ArchSpec {
  name: ArchName;
  width?: number;
  depth?: number;
  norm?: NormKind;
  act?: ActKind;
  pool?: PoolKind;
  head?: HeadKind;
}

/**
 * Every option decided, including the ones an architecture fixes (e.g. AlexNet's max pooling); what the
 * builders read. `Model.arch` is the canonical `ArchSpec` instead: only the options the architecture lets
 * a spec change, all filled in (src/nn/zoo.ts `canonicalArch`).
 */
export type ResolvedArch = Required<ArchSpec>;

export interface InputShape {
  channels: number;
  height: number;
  width: number;
  classes: number;
}

/**
 * Trainable parameters by name. Names are dotted paths (`block0.conv.weight`); the canonical order is
 * `Model.paramSpecs` (insertion order of `init` follows it). Conv weights are [kh, kw, in, out] (tfjs
 * HWIO), linear weights are [in, out], so layouts differ from PyTorch's; see docs/models.md.
 */
export type Params = Record<string, tf.Tensor>;

/**
 * Batch-norm running statistics (`<layer>.running_mean`, `<layer>.running_var`), kept apart from the
 * trainable parameters: they are never differentiated and SGD never touches them.
 */
export type BnState = Record<string, tf.Tensor>;

/** The statistics one batch-norm layer computed on the current batch (training mode). */
export interface BnBatchStats {
  /** Per-channel mean over N, H, W. */
  mean: tf.Tensor1D;
  /** Per-channel biased variance (the one used to normalise). */
  variance: tf.Tensor1D;
  /** Elements per channel that went into the statistics (N*H*W), for the unbiased running variance. */
  count: number;
}

export interface ForwardOptions {
  /** Batch norm: batch statistics when true, running statistics (`bnState`, required) when false. */
  training: boolean;
  /** Running statistics for evaluation-mode batch norm. Ignored by architectures without batch norm. */
  bnState?: BnState;
  /**
   * When given, every batch-norm layer writes the statistics of its input batch here, keyed by the layer
   * name (`block0.norm`): in training mode the ones it normalises with, in evaluation mode statistics
   * computed only to be recorded (it still normalises with `bnState`). The tensors belong to the
   * caller's scope: they are differentiable (SRe2L matches them to the running statistics of a frozen
   * teacher) and are disposed with that scope unless kept.
   */
  bnStats?: Record<string, BnBatchStats>;
}

export interface ParamSpec {
  name: string;
  shape: number[];
}

export interface Model {
  /** Canonical architecture: name plus every option this architecture accepts, defaults filled in. */
  readonly arch: ArchSpec;
  readonly input: InputShape;
  /** Trainable parameters in canonical order (the order MTT flattens them in). */
  readonly paramSpecs: readonly ParamSpec[];
  /** Batch-norm running statistics; empty when the architecture has no batch norm. */
  readonly bnSpecs: readonly ParamSpec[];
  /** Fresh parameters, PyTorch default initialisation, every draw from `rng`. */
  init(rng: Rng): Params;
  /** Running statistics as PyTorch initialises them (mean 0, variance 1). */
  initBnState(): BnState;
  /** Logits [N, classes] for images x [N, H, W, C] (NHWC, normalised). */
  forward(params: Params, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D;
  /** The vector the classifier reads [N, D]: flattened features, pooled features (gap) or the MLP's last hidden layer. */
  embed(params: Params, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D;
  /** head 'gap' only: the last feature map A [N, h, w, K] whose spatial mean the classifier reads. */
  features?(params: Params, x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor4D;
  /** head 'gap' only: classifier weights [K, classes], so logits = mean_hw(A) W + b exactly. */
  classifierWeights?(params: Params): tf.Tensor2D;
  /** head 'gap' only: classifier bias [classes]. */
  classifierBias?(params: Params): tf.Tensor1D;
  /** Number of trainable scalars (what PyTorch's `sum(p.numel() for p in net.parameters())` gives). */
  paramCount(): number;
}

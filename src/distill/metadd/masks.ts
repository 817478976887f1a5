/**
 * Meta-feature diagnostics (docs/metadd.md). With normalised CAMs c_1..c_M of an image and a threshold
 * tau, a pixel is
 * - in the union when some c_m >= tau,
 * - a meta feature when every c_m >= tau,
 * - a heterogeneous feature of network m when c_m >= tau and every other c_m' < tau.
 * Ratios pool the pixel counts over every image of a set: |meta| / |union| and |het_m| / |union|.
 */
export interface FeatureCounts {
  pixels: number;
  union: number;
  meta: number;
  /** Heterogeneous pixels of each network. */
  heterogeneous: number[];
}

export interface FeatureRatios {
  /** |meta| / |union|; null when no pixel reaches tau in any map. */
  meta: number | null;
  heterogeneous: (number | null)[];
  counts: FeatureCounts;
}

/** `maps[m]` holds network m's normalised CAMs of the same images, pixel for pixel. */
export function countFeatures(maps: ArrayLike<number>[], tau: number): FeatureCounts {
  const m = maps.length;
  if (m === 0) throw new Error('countFeatures: no maps');
  const pixels = maps[0].length;
  for (const x of maps) if (x.length !== pixels) throw new Error(`countFeatures: maps of ${pixels} and ${x.length} pixels`);
  const het = new Array<number>(m).fill(0);
  let union = 0;
  let meta = 0;
  for (let p = 0; p < pixels; p++) {
    let above = 0;
    let last = -1;
    for (let k = 0; k < m; k++) {
      if (maps[k][p] >= tau) {
        above++;
        last = k;
      }
    }
    if (above > 0) union++;
    if (above === m) meta++;
    // With a single network every union pixel is both meta and heterogeneous: keep het for M >= 2.
    if (above === 1 && m > 1) het[last]++;
  }
  return { pixels, union, meta, heterogeneous: het };
}

export function featureRatios(maps: ArrayLike<number>[], tau: number): FeatureRatios {
  const counts = countFeatures(maps, tau);
  const ratio = (v: number): number | null => (counts.union > 0 ? v / counts.union : null);
  return { meta: ratio(counts.meta), heterogeneous: counts.heterogeneous.map(ratio), counts };
}

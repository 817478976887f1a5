/**
 * The local record format. Every stage appends these to `records.jsonl` inside its artifact;
 * the run log of a `metadd run` invocation uses the same format. MLflow is a projection of these
 * records (see tracking/sync), never written to directly by a stage.
 */
export type TrackRecord =
  | { type: 'param'; key: string; value: string }
  | { type: 'metric'; key: string; value: number; step: number; timestamp: number }
  | { type: 'tag'; key: string; value: string }
  /** `path` is relative to the artifact directory of the stage that wrote the record. */
  | { type: 'artifact'; path: string };

export interface Tracker {
  param(key: string, value: string | number | boolean): void;
  metric(key: string, value: number, step?: number): void;
  tag(key: string, value: string): void;
  /** Declare a file of the stage output (relative to its output directory) as an MLflow artifact. */
  artifact(relativePath: string): void;
}

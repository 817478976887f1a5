/** One problem found in a spec, located in the file (or on the command line) where it was written. */
export interface SpecIssue {
  file: string;
  /** 1-based; 0 when the problem has no position (e.g. a missing file). */
  line: number;
  col: number;
  /** Dotted path inside the spec, '' for the whole document. */
  path: string;
  message: string;
  suggestion?: string;
  /** Advice that is not a spelling fix, e.g. how to sweep a list given where one value belongs. */
  hint?: string;
}

/** Every problem of a spec at once; the CLI prints them and exits with code 2. */
export class SpecError extends Error {
  readonly issues: SpecIssue[];
  constructor(issues: SpecIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'SpecError';
    this.issues = issues;
  }
}

export function formatIssue(issue: SpecIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.col}` : issue.file;
  const path = issue.path ? ` ${issue.path}:` : '';
  const guess = issue.suggestion ? ` (did you mean '${issue.suggestion}'?)` : '';
  const hint = issue.hint ? `; ${issue.hint}` : '';
  return `${where}:${path} ${issue.message}${guess}${hint}`;
}

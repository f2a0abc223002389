import type { ErrorCode as YamlErrorCode } from 'yaml';

/**
 * The one error type of portwarden. Every failure a user can meet carries a code from the closed
 * list below, a one-sentence message that quotes the bad value, an optional hint (the next step to
 * try) and an optional location in a source file.
 */

/** What kind of failure a code is; it decides the CLI exit code. */
export type ErrorCategory = 'usage' | 'environment' | 'internal';

const CODES = {
  // usage: bad input from the user (exit 2)
  USAGE: 'usage',
  PORT_SPEC_EMPTY: 'usage',
  PORT_SPEC_INVALID: 'usage',
  PORT_OUT_OF_RANGE: 'usage',
  PORT_RANGE_REVERSED: 'usage',
  PORT_UNKNOWN_NAME: 'usage',
  PROTOCOL_UNKNOWN: 'usage',
  TARGET_INVALID: 'usage',
  TARGET_EMPTY: 'usage',
  TARGET_TOO_MANY: 'usage',
  FILE_UNREADABLE: 'usage',
  FILE_UNWRITABLE: 'usage',
  LISTING_INVALID: 'usage',
  POLICY_INVALID: 'usage',
  POLICY_UNKNOWN_KEY: 'usage',
  POLICY_BAD_ADDRESS: 'usage',
  POLICY_INTERFACE_TWICE: 'usage',
  POLICY_OVERLAPPING_SOURCES: 'usage',
  POLICY_UNKNOWN_ZONE: 'usage',
  RULESET_INVALID: 'usage',
  OPTION_INVALID: 'usage',
  FEATURE_UNSUPPORTED: 'usage',
  LOCKOUT: 'usage',
  APPLY_PENDING: 'usage',
  NOTHING_PENDING: 'usage',
  NOTHING_APPLIED: 'usage',
  // environment: the machine lacks something (exit 3)
  NOT_ROOT: 'environment',
  TOOL_MISSING: 'environment',
  TOOL_FAILED: 'environment',
  NETNS_SETUP_FAILED: 'environment',
  KERNEL_FEATURE_MISSING: 'environment',
  PLATFORM_UNSUPPORTED: 'environment',
  STATE_UNAVAILABLE: 'environment',
  STATE_CORRUPT: 'environment',
  SOCKET_FAILED: 'environment',
  VERIFY_UNDECIDED: 'environment',
  // internal: a bug in portwarden (exit 4)
  INTERNAL: 'internal',
  // advice from `policy check` (warnings, never thrown)
  LINT_RISKY_EXPOSED: 'usage',
  LINT_RISKY_FORWARD: 'usage',
  LINT_ROUTE_LOCALNET: 'usage',
  LINT_LOCKOUT: 'usage',
  LINT_EGRESS_OPEN: 'usage',
  LINT_FTP_ACTIVE: 'usage',
  LINT_FTP_HELPER: 'usage',
} as const satisfies Record<string, ErrorCategory>;

/** A problem the yaml parser found, under its own code (e.g. YAML_DUPLICATE_KEY, YAML_BAD_INDENT). */
export type YamlCode = `YAML_${YamlErrorCode}`;

/** The closed list of error and diagnostic codes: portwarden's own and the yaml parser's. */
export type ErrorCode = keyof typeof CODES | YamlCode;

/** A yaml parser error code as portwarden's. */
export function yamlCode(code: YamlErrorCode): YamlCode {
  return `YAML_${code}`;
}

/** Every code portwarden itself defines (yaml's come from the yaml library), for docs and tests. */
export const OWN_CODES = Object.keys(CODES) as readonly (keyof typeof CODES)[];

/** What kind of failure a code is: YAML problems are bad input like every policy error. */
export function categoryOf(code: ErrorCode): ErrorCategory {
  return code.startsWith('YAML_') ? 'usage' : CODES[code as keyof typeof CODES];
}

/**
 * Where in a source file a problem is: a range from line:col to endLine:endCol (1-based, the end
 * exclusive), or a point when the source gives no end.
 */
export interface SourceLocation {
  file?: string;
  line?: number;
  col?: number;
  endLine?: number;
  endCol?: number;
  /** Path of keys inside a structured document, e.g. ['zones', 'external', 'inbound', 0]. */
  path?: readonly (string | number)[];
}

export interface PortwardenErrorOptions {
  hint?: string;
  location?: SourceLocation;
  cause?: unknown;
  /** Every problem found in the input, when there were several (the message names the first). */
  diagnostics?: readonly Diagnostic[];
}

export class PortwardenError extends Error {
  override readonly name = 'PortwardenError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly location: SourceLocation | undefined;
  readonly diagnostics: readonly Diagnostic[];

  constructor(code: ErrorCode, message: string, options: PortwardenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.location = options.location;
    this.diagnostics = options.diagnostics ?? [];
  }

  get category(): ErrorCategory {
    return categoryOf(this.code);
  }
}

export function isPortwardenError(value: unknown): value is PortwardenError {
  return value instanceof PortwardenError;
}

/** Severity of a collected problem in user input. */
export type Severity = 'error' | 'warning' | 'info';

/** A problem found in user input; problems are collected and reported together, sorted by position. */
export interface Diagnostic {
  severity: Severity;
  code: ErrorCode;
  message: string;
  hint?: string;
  location?: SourceLocation;
}

/** Exit codes of the CLI, as documented in README. */
export const EXIT = { OK: 0, FINDINGS: 1, USAGE: 2, ENVIRONMENT: 3, INTERNAL: 4 } as const;

export function exitCodeFor(error: unknown): number {
  if (!isPortwardenError(error)) return EXIT.INTERNAL;
  switch (error.category) {
    case 'usage':
      return EXIT.USAGE;
    case 'environment':
      return EXIT.ENVIRONMENT;
    case 'internal':
      return EXIT.INTERNAL;
  }
}

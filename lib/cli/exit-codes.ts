/** The command line's exit codes, shared by every command (the README's table). */
export const EXIT = {
  ok: 0,
  general: 1,
  kubernetesNotAccessible: 2,
  helmNotInstalled: 3,
  timeout: 4,
  healthCheckFailed: 5,
  insufficientResources: 6,
  migrationFailed: 7,
  databaseConnectionFailed: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_TABLE = `Exit codes: 0 success, 1 general error, 2 Kubernetes not accessible, 3 Helm not installed,
4 deployment timeout, 5 health check failed, 6 insufficient resources, 7 migration failed,
8 database connection failed.`;

/**
 * A failure a person can act on: what failed (the message) and what to do next. main.ts prints
 * both to stderr and exits with `code`.
 */
export class CliError extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
    /** Next steps, one per line, printed under "next:". */
    readonly next: readonly string[] = [],
    /** Extra detail printed between the message and the next steps (e.g. a log tail). */
    readonly detail?: string,
  ) {
    super(message);
  }
}

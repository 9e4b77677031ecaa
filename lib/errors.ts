import { ConfigMapLayoutError } from './migrations/layout';
import { MigrationFileError } from './migrations/files';
import { ValidationError } from './validation';

/** Exit code of a synth that refused its input (configuration or migration files). */
export const EXIT_INVALID_INPUT = 1;

/** Prints a failed synth's reason for a person and returns the exit code. */
export function reportFailure(error: unknown): number {
  const known = error instanceof ValidationError || error instanceof MigrationFileError || error instanceof ConfigMapLayoutError;
  const message = error instanceof Error ? (known ? error.message : error.stack ?? error.message) : String(error);
  process.stderr.write(`learnflow-postgres: synth failed, dist/ was left as it was.\n${message}\n`);
  return EXIT_INVALID_INPUT;
}

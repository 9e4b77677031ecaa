#!/bin/sh
# The login of a Job of ours, run by its init container before the Job's own command: writes
# libpq's password file (PGPASSFILE, on a memory-backed volume the Job's container mounts
# read-only) for exactly the Job's connection, from the one key of the credentials Secret this
# container mounts. The Job's container never sees the Secret, and no password is in an
# environment variable. Exit codes and knobs come from its TypeScript contract
# (lib/credentials/passfile-contract.ts), which the synth renders into this copy below.
set -eu
# learnflow:contract
: "${PROG:?this is the source of passfile.sh: run the copy the synth renders into the Job}"
: "${PASSWORD_FILE:?}" "${PGPASSFILE:?}" "${PGHOST:?}" "${PGPORT:?}" "${PGDATABASE:?}" "${PGUSER:?}"
if ! problem=$(write_passfile "$PASSWORD_FILE" "$PGPASSFILE" "$PGHOST" "$PGPORT" "$PGDATABASE" "$PGUSER"); then
  printf '%s: %s (fix the credentials Secret, then delete the failed pod or Job)\n' "$PROG" "$problem" >&2
  exit "$EXIT_REFUSED"
fi
# The same login at more hosts (a Job that also checks the read replicas), on any port.
for host in ${PASSFILE_EXTRA_HOSTS:-}; do
  if ! problem=$(write_passfile "$PASSWORD_FILE" "$PGPASSFILE.extra" "$host" '*' "$PGDATABASE" "$PGUSER"); then
    printf '%s: %s\n' "$PROG" "$problem" >&2
    exit "$EXIT_REFUSED"
  fi
  cat "$PGPASSFILE.extra" >>"$PGPASSFILE" && rm -f "$PGPASSFILE.extra"
done
printf '%s: wrote the password file for %s@%s:%s/%s%s\n' "$PROG" "$PGUSER" "$PGHOST" "$PGPORT" "$PGDATABASE" "${PASSFILE_EXTRA_HOSTS:+ and $PASSFILE_EXTRA_HOSTS}"

#!/bin/sh
# Scheduled backup, run by the dump CronJob beside the database pod (lib/pitr/backups.ts):
#   sh -c "<this script>" backup <database> <keep>
# The pod provides PGHOST, PGPORT, PGUSER (postgres), PGSSLMODE (and PGSSLROOTCERT with
# verify-full), PGDUMP_DIR, the dumps' folder on the backup volume, and the superuser's password
# alone at PASSWORD_FILE (the credentials Secret's one key), from which this writes libpq's
# password file. Writes one custom-format pg_dump of the application database, named by
# UTC time, then keeps the newest <keep> dumps. A dump is renamed into place only when complete.
# Its exit codes and constants come from its TypeScript contract (lib/backup/script-contracts.ts),
# which the synth renders into this copy below.
set -eu
# learnflow:contract
: "${PROG:?this is the source of backup.sh: run the copy the synth renders into the chart's values}"
database=$1
keep=$2
: "${PGDUMP_DIR:?}" "${PASSWORD_FILE:=$DEFAULT_PASSWORD_FILE}"
mkdir -p "$PGDUMP_DIR"

# The password file in a private directory of the pod's /tmp.
login=$(mktemp -d "${TMPDIR:-/tmp}/login.XXXXXX")
name="$database-$(date -u '+%Y%m%dT%H%M%SZ')$DUMP_SUFFIX"
partial="$PGDUMP_DIR/.$name.partial"
trap 'rm -f "$partial"; rm -rf "$login"' EXIT
if ! problem=$(write_passfile "$PASSWORD_FILE" "$login/pgpass" "${PGHOST:-localhost}" "${PGPORT:-5432}" "$database" "${PGUSER:-postgres}"); then
  echo "$PROG: $problem" >&2
  exit "$EXIT_FAILED"
fi
unset PGPASSWORD
export PGPASSFILE="$login/pgpass"

pg_dump --format=custom --no-password --dbname="$database" --file="$partial"
mv "$partial" "$PGDUMP_DIR/$name"
echo "$PROG: wrote $name ($(wc -c <"$PGDUMP_DIR/$name" | tr -d ' ') bytes)"

# Retention: names sort by time; remove all but the newest $keep of this database's dumps.
ls -1 "$PGDUMP_DIR" | grep -E "^$database-[0-9]{8}T[0-9]{6}Z\\$DUMP_SUFFIX\$" | sort -r | tail -n "+$((keep + 1))" |
  while read -r old; do
    rm -f "$PGDUMP_DIR/$old"
    echo "$PROG: removed $old (keeping the newest $keep)"
  done

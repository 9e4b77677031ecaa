#!/bin/sh
# Scheduled base backup (the base-backup CronJob, database image): pg_basebackup of the whole
# cluster over a replication connection into the backup volume, then retention.
#   base/<UTC time>/ holds base.tar.gz, pg_wal.tar.gz (the WAL that makes the copy consistent by
#   itself), backup_manifest and backup.info (when it ended and where its WAL starts). It is
#   written as base/.<UTC time>.partial and renamed into place only when complete and checked.
#   Retention keeps the newest BASEBACKUP_KEEP complete backups, then removes the archived WAL
#   that none of them needs (pg_archivecleanup, up to the oldest kept backup's first segment).
# Exit codes, knobs and constants come from its TypeScript contract (lib/pitr/contracts.ts).
set -eu
# learnflow:contract
: "${PROG:?this is the source of basebackup.sh: run the copy the synth renders}"
backup_dir=${LEARNFLOW_BACKUP_DIR:-$DEFAULT_LEARNFLOW_BACKUP_DIR}
keep=${BASEBACKUP_KEEP:-$DEFAULT_BASEBACKUP_KEEP}
db_wait=${BASEBACKUP_DB_WAIT_SECONDS:-$DEFAULT_BASEBACKUP_DB_WAIT_SECONDS}
say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }
check_knob BASEBACKUP_KEEP "$keep" >&2 || exit "$EXIT_FAILED"
check_knob BASEBACKUP_DB_WAIT_SECONDS "$db_wait" >&2 || exit "$EXIT_FAILED"
[ -d "$backup_dir" ] || fail "$EXIT_FAILED" "the backup volume is not mounted at $backup_dir"
# The superuser's password alone at PASSWORD_FILE (the CronJob mounts the credentials Secret's one
# key): libpq's password file from it, for any database (pg_basebackup's replication connection too).
login=''
if [ -n "${PASSWORD_FILE:-}" ]; then
  login=$(mktemp -d "${TMPDIR:-/tmp}/login.XXXXXX")
  trap 'rm -rf "$login"' EXIT
  problem=$(write_passfile "$PASSWORD_FILE" "$login/pgpass" "${PGHOST:-localhost}" "${PGPORT:-5432}" '*' "${PGUSER:-postgres}") || fail "$EXIT_FAILED" "$problem"
  export PGPASSFILE="$login/pgpass"
fi

deadline=$(($(date +%s) + db_wait + 1)) # whole seconds: at least db_wait
until pg_isready -q -t 5 -d postgres; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "$EXIT_CONNECTION_FAILED" "no connection to ${PGHOST:-localhost}:${PGPORT:-5432} within ${db_wait}s"
  sleep 2
done
query() { psql -X -A -t -q -v ON_ERROR_STOP=1 --no-password -d postgres -c "$1"; }

# The archive belongs to one database system (archive.sh claims it on its first segment).
system=$(query 'SELECT system_identifier FROM pg_control_system()') || fail "$EXIT_CONNECTION_FAILED" "cannot query ${PGHOST:-localhost}"
owner=$backup_dir/$SYSTEM_FILE
if [ -f "$owner" ] && [ "$(cat "$owner")" != "$system" ]; then
  fail "$EXIT_FAILED" "the archive in $backup_dir belongs to database system $(cat "$owner"), the server is $system: no backup taken (README: Point-in-time recovery)"
fi
[ "$(query 'SHOW archive_mode')" != off ] || fail "$EXIT_FAILED" "archive_mode is off on the server: a base backup without archived WAL cannot reach a point in time"

name=$(date -u '+%Y%m%dT%H%M%SZ')
base=$backup_dir/$BASE_DIR
partial=$base/.$name.partial
mkdir -p "$base"
# A run killed midway (node lost, pod deleted) leaves its .partial behind; one backup at a time
# (concurrencyPolicy: Forbid), so any that is here now is stale.
for stale in "$base"/.*.partial; do [ ! -d "$stale" ] || { rm -rf "$stale"; say "removed the unfinished ${stale##*/} of an earlier run"; }; done
trap 'rm -rf "$partial" ${login:+"$login"}' EXIT
say "base backup $name: pg_basebackup from ${PGHOST:-localhost}:${PGPORT:-5432}"
started=$(date +%s)
pg_basebackup --pgdata="$partial" --format=tar --compress=gzip:1 --wal-method=stream \
  --checkpoint=fast --label="learnflow $name" --no-password ${BASEBACKUP_MAX_RATE:+--max-rate="$BASEBACKUP_MAX_RATE"}
for tar in "$partial"/*.tar.gz; do gzip -t "$tar" || fail "$EXIT_FAILED" "$tar is corrupt: no backup kept"; done

# Where recovery from this backup starts (backup_manifest's WAL range), and from when on it can
# reach a point in time: the server's clock once the backup has ended (never earlier than its end).
range=$(sed -n 's/.*"Timeline": *\([0-9]*\), *"Start-LSN": *"\([0-9A-F]*\/[0-9A-F]*\)".*/\1 \2/p' "$partial/backup_manifest" | head -n 1)
[ -n "$range" ] || fail "$EXIT_FAILED" "no WAL range in $partial/backup_manifest"
start_lsn=${range#* }
info=$(query "SELECT pg_walfile_name('$start_lsn') || ' ' || setting || ' ' ||
  to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
  FROM pg_settings WHERE name = 'wal_segment_size'")
set -- $info
cat >"$partial/$INFO_FILE" <<INFO
name=$name
system_identifier=$system
timeline=${range%% *}
start_lsn=$start_lsn
start_wal=$1
segment_size=$2
end_time=$3
INFO
sync "$partial"/*
mv "$partial" "$base/$name"
sync "$base"
trap - EXIT
say "wrote base/$name ($(du -sk "$base/$name" | cut -f1) KiB in $(($(date +%s) - started))s; recovery from it starts at $1, reaches times from $3 on)"

# Retention: complete backups only (a .partial or an unfinished one is never counted as kept).
complete=$(for d in "$base"/*/; do [ -f "$d$INFO_FILE" ] && basename "$d"; done | sort -r)
echo "$complete" | tail -n "+$((keep + 1))" | while read -r old; do
  [ -n "$old" ] || continue
  rm -rf "${base:?}/$old"
  say "removed base/$old (keeping the newest $keep)"
done
oldest=$(echo "$complete" | head -n "$keep" | tail -n 1)
first_needed=$(sed -n 's/^start_wal=//p' "$base/$oldest/$INFO_FILE")
[ -d "$backup_dir/$WAL_DIR" ] || exit 0
before=$(ls "$backup_dir/$WAL_DIR" | wc -l)
pg_archivecleanup -x "$SEGMENT_SUFFIX" "$backup_dir/$WAL_DIR" "$first_needed"
say "archived WAL before $first_needed removed ($((before - $(ls "$backup_dir/$WAL_DIR" | wc -l))) files), the oldest kept backup base/$oldest needs the rest"

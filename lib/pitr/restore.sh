#!/bin/sh
# Point-in-time recovery (the pitr-restore template, database image), started by a person with
# RESTORE_TARGET set while the database is stopped (its StatefulSet scaled to 0):
#   1. checks everything first and changes nothing when anything is wrong: the target's form, a
#      time in the future, before the oldest base backup or past the newest archived commit, a
#      gap in the archived WAL the recovery needs, a database that is still running;
#   2. rebuilds the data directory beside the current one (<data>.restoring) from the newest base
#      backup that ended before the target, and recovers it there with PostgreSQL itself
#      (restore_command reads the archive; the target is exclusive: commits at or after it are
#      not replayed), promotes it and archives the new timeline's history;
#   3. only then swaps it in: the current directory is kept as <data>.before-restore.
# The Bitnami image deletes recovery.signal when it starts, so the recovery runs here, in the
# Job, and the database pod later starts from a recovered, cleanly shut down directory.
# Exit codes, knobs and constants come from its TypeScript contract (lib/pitr/contracts.ts).
set -eu
# learnflow:contract
# learnflow:include target.sh
: "${PROG:?this is the source of restore.sh: run the copy the synth renders}"
backup_dir=${LEARNFLOW_BACKUP_DIR:-$DEFAULT_LEARNFLOW_BACKUP_DIR}
data=${PGDATA:-$DEFAULT_PGDATA}
target=${RESTORE_TARGET:-}
timeline=${RESTORE_TIMELINE:-$DEFAULT_RESTORE_TIMELINE}
recovery_timeout=${RESTORE_RECOVERY_TIMEOUT_SECONDS:-$DEFAULT_RESTORE_RECOVERY_TIMEOUT_SECONDS}
scripts=$(cd "$(dirname "$0")" && pwd)
wal_dir=$backup_dir/$WAL_DIR
say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }
refuse() { fail "$EXIT_REFUSED" "$* Nothing was changed."; }

check_knob RESTORE_RECOVERY_TIMEOUT_SECONDS "$recovery_timeout" >&2 || exit "$EXIT_REFUSED"
case $target in
  '') refuse "RESTORE_TARGET is not set: $TARGET_RULE." ;;
  latest) target_key= ;;
  *) target_key=$(time_key "$target") || refuse "RESTORE_TARGET: '$target' is not $TARGET_RULE." ;;
esac
case $timeline in
  latest) ;;
  *[!0-9]*|''|0*) refuse "RESTORE_TIMELINE: '$timeline' is not 'latest' or a timeline number (1, 2, ...)." ;;
esac
case $backup_dir$data in *[!A-Za-z0-9_./-]*) refuse "LEARNFLOW_BACKUP_DIR and PGDATA must be plain paths (letters, digits, '_', '.', '/', '-')." ;; esac
if [ -n "$target_key" ] && key_before "$(now_key)" "$target_key"; then
  refuse "RESTORE_TARGET: $target is in the future (now $(date -u '+%Y-%m-%dT%H:%M:%SZ')): nothing after now can be recovered; use a past time or 'latest'."
fi
[ -f "$backup_dir/$SYSTEM_FILE" ] || refuse "no archive in $backup_dir (no $SYSTEM_FILE): nothing was ever archived there. With an object store, restore from it (RESTORE_SOURCE=offsite)."
system=$(cat "$backup_dir/$SYSTEM_FILE")

# The database must be stopped: this Job replaces its data directory.
if [ -n "${PGHOST:-}" ]; then
  state=0; pg_isready -q -t 3 -U postgres -d postgres || state=$?
  case $state in
    0|1) refuse "the database at $PGHOST:${PGPORT:-5432} is running: stop it first (kubectl scale statefulset <release>-postgresql --replicas=0; suspend Argo CD's auto-sync while you restore)." ;;
    3) refuse "cannot check whether the database at $PGHOST:${PGPORT:-5432} is running (pg_isready: bad connection parameters)." ;;
  esac
fi

# --- What the archive holds -----------------------------------------------------------------
hex_tli() { printf '%08X' "$1"; }
bases=$(for d in "$backup_dir/$BASE_DIR"/*/; do [ -f "$d$INFO_FILE" ] && basename "$d"; done | sort)
[ -n "$bases" ] || refuse "no complete base backup in $backup_dir/$BASE_DIR: take one first (kubectl create job --from=cronjob/<release>-postgresql-basebackup ...)."
info() { sed -n "s/^$2=//p" "$backup_dir/$BASE_DIR/$1/$INFO_FILE"; }
oldest=$(echo "$bases" | head -n 1)
oldest_end=$(info "$oldest" end_time)
if [ -n "$target_key" ] && key_before "$target_key" "$(time_key "$oldest_end")"; then
  refuse "RESTORE_TARGET: $target is before the end of the oldest base backup ($oldest, ended $oldest_end): the archive cannot reach it."
fi

# The timeline to follow: the newest history file in the archive, or the one asked for.
if [ "$timeline" = latest ]; then
  timeline=$(ls "$wal_dir" 2>/dev/null | sed -n 's/^\([0-9A-F]\{8\}\)\.history$/\1/p' | sort | tail -n 1)
  timeline=$((0x${timeline:-00000001}))
fi
history=$wal_dir/$(hex_tli "$timeline").history
[ "$timeline" -eq 1 ] || [ -f "$history" ] || refuse "RESTORE_TIMELINE: timeline $timeline has no history file in the archive ($history)."

# chain: "tli begin_lsn end_lsn" per timeline of the target's history, as decimal byte positions.
chain=$( { [ "$timeline" -eq 1 ] || cat "$history"; } | awk -v last="$timeline" '
  function hex(s,   i, n) { n = 0; s = toupper(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
  function lsn(s) { split(s, p, "/"); return hex(p[1]) * 4294967296 + hex(p[2]) }
  /^[0-9]/ { printf "%d %.0f %.0f\n", $1, begin, lsn($2); begin = lsn($2) }
  END { printf "%d %.0f -1\n", last, begin + 0 }')

# The base backup: the newest one on the chain that ended before the target.
base=
for b in $bases; do
  on_chain=$(echo "$chain" | awk -v tli="$(info "$b" timeline)" -v start="$(info "$b" start_lsn)" '
    function hex(s,   i, n) { n = 0; s = toupper(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
    BEGIN { split(start, p, "/"); at = hex(p[1]) * 4294967296 + hex(p[2]) }
    $1 == tli && ($3 < 0 || at < $3) { ok = 1 } END { print ok + 0 }')
  [ "$on_chain" = 1 ] || continue
  if [ -z "$target_key" ] || ! key_before "$target_key" "$(time_key "$(info "$b" end_time)")"; then base=$b; fi
done
[ -n "$base" ] || refuse "no base backup on timeline $timeline's history ended before ${target:-now}: the archive cannot reach it."
start_wal=$(info "$base" start_wal)
segment_size=$(info "$base" segment_size)

# Which archived segment PostgreSQL reads for each segment number: the newest timeline of the
# chain that began at or before it. Lists "segno file mtime" from the base's first segment on.
segments=$(cd "$wal_dir" && for f in *; do
  case $f in [0-9A-F]*.gz|[0-9A-F]*[0-9A-F]) [ ${#f} -eq 24 ] || [ ${#f} -eq 27 ] && printf '%s %s\n' "$f" "$(date -r "$f" +%s)" ;; esac
done | awk -v chain="$chain" -v start="$start_wal" -v size="$segment_size" '
  function hex(s,   i, n) { n = 0; s = toupper(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
  function segno(name) { return hex(substr(name, 9, 8)) * per + hex(substr(name, 17, 8)) }
  BEGIN {
    per = 4294967296 / size; n = split(chain, rows, "\n")
    for (i = 1; i <= n; i++) { split(rows[i], r, " "); tli[i] = r[1]; first[i] = int(r[2] / size) }
    from = segno(start)
  }
  { have[substr($1, 1, 24)] = $2; if (segno($1) > top) top = segno($1) }
  END {
    for (s = from; s <= top; s++) {
      for (i = n; i >= 1 && first[i] > s; i--) ;
      name = sprintf("%08X%08X%08X", tli[i], int(s / per), s % per)
      printf "%.0f %s %s\n", s, name, (name in have) ? have[name] : "-"
    }
  }')

# Needed: every segment up to the first one archived at or after the target (all for latest).
target_epoch=
[ -z "$target_key" ] || target_epoch=$(date -u -d "$(echo "$target" | sed 's/T/ /; s/Z$//')" +%s)
needed=$(echo "$segments" | awk -v until="${target_epoch:--1}" '
  $3 == "-" { missing[++m] = $2; next }
  { last = $0; for (i = 1; i <= m; i++) gap = gap " " missing[i]; m = 0 }
  until >= 0 && $3 >= until { exit }
  END { print (gap == "" ? "ok" : "gap" gap); print last }')
if [ "${needed%%
*}" != ok ]; then
  first_gap=$(echo "$needed" | head -n 1 | cut -d' ' -f2)
  refuse "the archive lacks $(echo "$needed" | head -n 1 | cut -d' ' -f2- | wc -w) WAL segment(s) the recovery needs, first $first_gap (in $wal_dir): recovery would stop there and lose everything after it. Bring the missing files back into the archive (from the object store: RESTORE_SOURCE=offsite), or choose a time before $first_gap was written."
fi
last_segment=$(echo "$needed" | tail -n 1 | cut -d' ' -f2)
[ -n "$last_segment" ] || refuse "the archive holds no WAL from $start_wal on (base backup $base's first segment)."

# How far the archive reaches: the newest commit in it (pg_waldump, from the last segment back).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/learnflow-restore.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
reach=
if [ -n "$target_key" ]; then
  for name in $(echo "$segments" | awk '$3 != "-" { s[++n] = $2 } END { while (n > 0) print s[n--] }'); do
    if [ -f "$wal_dir/$name$SEGMENT_SUFFIX" ]; then gzip -dc "$wal_dir/$name$SEGMENT_SUFFIX" >"$scratch/$name"; else cp "$wal_dir/$name" "$scratch/$name"; fi
    reach=$(TZ=UTC pg_waldump --rmgr=Transaction "$scratch/$name" 2>/dev/null |
      sed -n 's/.*desc: COMMIT \([0-9-]*\) \([0-9:.]*\) UTC.*/\1T\2Z/p' | tail -n 1 || true)
    rm -f "$scratch/$name"
    [ -z "$reach" ] || break
  done
  # No commit archived after the base backup: it reaches its own end.
  [ -n "$reach" ] || reach=$(info "$base" end_time)
  if key_before "$(time_key "$reach")" "$target_key"; then
    refuse "RESTORE_TARGET: $target is after the newest commit in the archive on timeline $timeline ($reach): nothing later was archived. Use RESTORE_TARGET=latest to recover everything the archive holds."
  fi
fi
say "recovering to ${target:-latest} on timeline $timeline from base backup $base (ended $(info "$base" end_time)), WAL $start_wal to $last_segment"

# --- Rebuild beside the current directory, recover there, then swap ---------------------------
restoring=$data.restoring
rm -rf "$restoring"
trap 'rm -rf "$scratch" "$restoring"' EXIT
mkdir -p "$restoring/pg_wal"
chmod 700 "$restoring"
tar -xzf "$backup_dir/$BASE_DIR/$base/base.tar.gz" -C "$restoring"
tar -xzf "$backup_dir/$BASE_DIR/$base/pg_wal.tar.gz" -C "$restoring/pg_wal"
touch "$restoring/recovery.signal"
run=$scratch/run
mkdir -p "$run"
# Archiving stays off until the result is checked: a recovery that went wrong must not leave
# a timeline in the archive that a later "latest" would follow.
cat >"$scratch/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$run'
hot_standby = off
archive_mode = off
restore_command = 'if [ -f "$wal_dir/%f$SEGMENT_SUFFIX" ]; then gzip -dc "$wal_dir/%f$SEGMENT_SUFFIX" > "%p"; else cp "$wal_dir/%f" "%p"; fi'
recovery_target_timeline = '$timeline'
recovery_target_action = 'promote'
recovery_target_inclusive = off
CONF
[ -z "$target_key" ] || echo "recovery_target_time = '$(echo "$target" | sed 's/T/ /; s/Z$//')+00'" >>"$scratch/postgresql.conf"
echo 'local all all trust' >"$scratch/pg_hba.conf"
: >"$scratch/pg_ident.conf"
log=$scratch/recovery.log
recovery_failed() {
  pg_ctl -D "$restoring" -m immediate stop >/dev/null 2>&1 || true
  fail "$EXIT_RECOVERY_FAILED" "PostgreSQL's recovery $1; the data directory $data is unchanged. Its log:
$(tail -n 20 "$log")"
}
pg_ctl -D "$restoring" -l "$log" -w -t "$recovery_timeout" \
  -o "-c config_file=$scratch/postgresql.conf -c hba_file=$scratch/pg_hba.conf -c ident_file=$scratch/pg_ident.conf" start >/dev/null ||
  recovery_failed failed
# Without hot standby the server accepts connections only once it has recovered and promoted.
deadline=$(($(date +%s) + recovery_timeout))
until pg_isready -q -h "$run" -U postgres -d postgres; do
  pg_ctl -D "$restoring" status >/dev/null 2>&1 || recovery_failed failed
  [ "$(date +%s)" -lt "$deadline" ] || recovery_failed "did not finish within ${recovery_timeout}s"
  sleep 0.2
done
# "latest" must have replayed the whole archive: PostgreSQL ends a recovery quietly at the first
# unreadable record, so a damaged segment would otherwise lose everything after it unnoticed.
redo_done=$(sed -n 's/.*redo done at \([0-9A-F]*\/[0-9A-F]*\).*/\1/p' "$log" | tail -n 1)
if [ -z "$target_key" ]; then
  short=$(echo "$segments" | awk -v lsn="$redo_done" -v last="$last_segment" -v size="$segment_size" '
    function hex(s,   i, n) { n = 0; s = toupper(s); for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
    BEGIN { split(lsn, p, "/"); at = int((hex(p[1]) * 4294967296 + hex(p[2])) / size) }
    ($2 "") == (last "") { if (lsn == "" || at < $1) print $2 " " sprintf("%.0f", $1 - at) }')
  [ -z "$short" ] || recovery_failed "stopped at ${redo_done:-an unknown point}, before the end of the archive ($last_segment): a segment after it is damaged, and recovering would lose what follows. Restore to a time before it (RESTORE_TARGET) or repair the archive"
fi
new_timeline=$(psql -X -A -t -h "$run" -U postgres -d postgres -c 'SELECT timeline_id FROM pg_control_checkpoint()')
psql -X -q -h "$run" -U postgres -d postgres -c 'CHECKPOINT' >/dev/null
pg_ctl -D "$restoring" -m fast -w -t 600 stop >/dev/null
stopped=$(sed -n 's/.*\(recovery stopping before .*\)/\1/p; s/.*\(last completed transaction was at log time .*\)/\1/p' "$log" | tail -n 1)
rm -f "$restoring/postmaster.opts"
# The new timeline's history goes to the archive now, and is marked ready so that the database
# archives it again (identical: accepted) should this copy fail.
history_file=$(hex_tli "$new_timeline").history
mkdir -p "$restoring/pg_wal/archive_status"
touch "$restoring/pg_wal/archive_status/$history_file.ready"
(cd "$restoring" && LEARNFLOW_BACKUP_DIR="$backup_dir" sh "$scripts/archive.sh" "pg_wal/$history_file" "$history_file") ||
  say "could not archive $history_file now: the database will archive it when it starts"

# Still stopped? Then swap, keeping the current directory (if any) as <data>.before-restore.
if [ -n "${PGHOST:-}" ] && pg_isready -q -t 3 -U postgres -d postgres; then
  fail "$EXIT_REFUSED" "the database at $PGHOST came up during the restore: $data is unchanged; stop it and run the restore again."
fi
if [ -d "$data" ]; then
  rm -rf "$data.before-restore"
  mv "$data" "$data.before-restore"
  kept=" (the previous one is kept as $data.before-restore: delete it once you are satisfied)"
fi
mv "$restoring" "$data"
sync "$data" 2>/dev/null || sync
trap 'rm -rf "$scratch"' EXIT
say "restored $data to ${target:-latest} from base backup $base: ${stopped:-recovered}; now on timeline $new_timeline${kept:-}"
say "start the database: kubectl scale statefulset <release>-postgresql --replicas=1"

#!/bin/sh
# Copies off the cluster (rclone's own image: busybox sh and rclone). The object store is S3
# (or S3-compatible: GCS interoperability, MinIO, Ceph, Azure through an S3 gateway); its bucket,
# endpoint, region and provider come from the props, its keys from a Secret the user manages,
# mounted at OFFSITE_SECRET_DIR (access-key-id, secret-access-key).
#   offsite.sh loop     the sidecar of the database pod: an upload pass every OFFSITE_INTERVAL_SECONDS,
#                       for ever (a failed pass is logged and retried, it never stops the pod)
#   offsite.sh upload   one pass: every finished file of the backup volume (WAL, base backups,
#                       dumps) that the bucket lacks, then retention there
#   offsite.sh fetch    the restore's first step: with RESTORE_SOURCE=offsite, copies the base backup
#                       the target needs and the WAL after it from the bucket into the backup volume
#                       (RESTORE_SOURCE=volume, the default: nothing to do)
# Uploads are S3 PUTs, which never expose a partial object under its name; --immutable never
# replaces an object with different content. A base backup's backup.info goes up last: a base
# backup without it in the bucket is unfinished and never used.
# Exit codes, knobs and constants come from its TypeScript contract (lib/pitr/contracts.ts).
set -eu
# learnflow:contract
# learnflow:include target.sh
: "${PROG:?this is the source of offsite.sh: run the copy the synth renders}"
backup_dir=${LEARNFLOW_BACKUP_DIR:-$DEFAULT_LEARNFLOW_BACKUP_DIR}
secret_dir=${OFFSITE_SECRET_DIR:-$DEFAULT_OFFSITE_SECRET_DIR}
interval=${OFFSITE_INTERVAL_SECONDS:-$DEFAULT_OFFSITE_INTERVAL_SECONDS}
keep=${OFFSITE_KEEP:-$DEFAULT_OFFSITE_KEEP}
dump_keep=${OFFSITE_DUMP_KEEP:-$DEFAULT_OFFSITE_DUMP_KEEP}
say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }
for knob in OFFSITE_INTERVAL_SECONDS:$interval OFFSITE_KEEP:$keep OFFSITE_DUMP_KEEP:$dump_keep; do
  check_knob "${knob%%:*}" "${knob#*:}" >&2 || exit "$EXIT_REFUSED"
done
: "${OFFSITE_BUCKET:?}" "${OFFSITE_PROVIDER:?}"
remote="offsite:$OFFSITE_BUCKET${OFFSITE_PREFIX:+/$OFFSITE_PREFIX}"

# The Secret: both keys present and non-empty, else the fix.
credentials() {
  _fix="create it: kubectl -n ${OFFSITE_NAMESPACE:-<namespace>} create secret generic $OFFSITE_SECRET_NAME --from-literal=$ACCESS_KEY_ID_KEY=<access key id> --from-literal=$SECRET_ACCESS_KEY_KEY=<secret access key>"
  [ -d "$secret_dir" ] && [ -n "$(ls "$secret_dir" 2>/dev/null)" ] || { printf '%s: the object store Secret %s is missing (nothing mounted at %s): %s\n' "$PROG" "$OFFSITE_SECRET_NAME" "$secret_dir" "$_fix" >&2; return 1; }
  for _secret_key in "$ACCESS_KEY_ID_KEY" "$SECRET_ACCESS_KEY_KEY"; do
    [ -s "$secret_dir/$_secret_key" ] || { printf "%s: the object store Secret %s has no key '%s' (or it is empty): %s\n" "$PROG" "$OFFSITE_SECRET_NAME" "$_secret_key" "$_fix" >&2; return 1; }
  done
  _id=$(cat "$secret_dir/$ACCESS_KEY_ID_KEY") _secret=$(cat "$secret_dir/$SECRET_ACCESS_KEY_KEY")
  case $_id$_secret in *[[:space:]]*) printf "%s: the object store Secret %s: '%s' or '%s' contains white space (a stray newline from echo? use --from-literal)\n" "$PROG" "$OFFSITE_SECRET_NAME" "$ACCESS_KEY_ID_KEY" "$SECRET_ACCESS_KEY_KEY" >&2; return 1 ;; esac
  export RCLONE_CONFIG_OFFSITE_TYPE=s3 RCLONE_CONFIG_OFFSITE_PROVIDER="$OFFSITE_PROVIDER" \
    RCLONE_CONFIG_OFFSITE_ACCESS_KEY_ID="$_id" RCLONE_CONFIG_OFFSITE_SECRET_ACCESS_KEY="$_secret" \
    RCLONE_CONFIG_OFFSITE_ENDPOINT="${OFFSITE_ENDPOINT:-}" RCLONE_CONFIG_OFFSITE_REGION="${OFFSITE_REGION:-}" \
    RCLONE_CONFIG_OFFSITE_NO_CHECK_BUCKET=true RCLONE_CONFIG="${TMPDIR:-/tmp}/rclone.conf"
  # Everything is in the environment; an empty file keeps rclone from looking for its own.
  : >"$RCLONE_CONFIG"
}
# --no-update-modtime: an identical object whose time differs (a volume restored from a snapshot)
# is left alone, where --immutable alone would call it modified.
rc() { rclone --no-update-modtime --retries 3 --low-level-retries 3 --contimeout 15s --timeout 60s "$@"; }
# Why rclone failed, as an exit code: refused credentials or a missing bucket are the user's to
# fix; anything else (network, server errors) may pass.
classify() {
  case $1 in
    *AccessDenied*|*InvalidAccessKeyId*|*SignatureDoesNotMatch*|*Forbidden*|*403*) printf '%s: the object store refused the credentials of Secret %s (%s)\n' "$PROG" "$OFFSITE_SECRET_NAME" "$remote" >&2; return "$EXIT_REFUSED" ;;
    *immutable*) printf '%s: refusing to replace an object in %s that differs from the volume'"'"'s copy (nothing in the bucket is ever overwritten): %s\n' "$PROG" "$remote" "$(echo "$1" | grep -i immutable | head -n 1)" >&2; return "$EXIT_REFUSED" ;;
    *NoSuchBucket*|*'directory not found'*) printf '%s: bucket %s does not exist at %s: create it (nothing here creates buckets)\n' "$PROG" "$OFFSITE_BUCKET" "${OFFSITE_ENDPOINT:-the provider}" >&2; return "$EXIT_REFUSED" ;;
    *) printf '%s: object store unreachable at %s: %s\n' "$PROG" "${OFFSITE_ENDPOINT:-$OFFSITE_PROVIDER}" "$(echo "$1" | tail -n 3)" >&2; return "$EXIT_UNREACHABLE" ;;
  esac
}
# Runs rclone; on failure prints why and returns classify's code.
r() {
  _out=$(rc "$@" 2>&1) && { [ -z "$_out" ] || printf '%s\n' "$_out"; return 0; }
  # rclone words some refusals obliquely (a forbidden prefix reads as "a file"): ask the bucket itself.
  classify "$_out $(rc lsf --max-depth 1 "offsite:$OFFSITE_BUCKET" 2>&1 >/dev/null)"
}
# rclone cat of a small object, empty when it does not exist.
remote_file() { rc cat "$remote/$1" 2>/dev/null || true; }
# WAL names strictly before `first` (by segment number, any timeline), as pg_archivecleanup decides.
wal_before() { awk -v first="$1" 'substr($0, 1, 24) ~ /^[0-9A-F]+$/ && length($0) >= 24 && substr($0, 9, 16) < substr(first, 9, 16) { print }'; }

guard_system() {
  _local=$(cat "$backup_dir/$SYSTEM_FILE")
  _remote=$(remote_file "$SYSTEM_FILE")
  if [ -n "$_remote" ] && [ "$_remote" != "$_local" ]; then
    printf '%s: %s holds the archive of database system %s, this one is %s: nothing uploaded (use another prefix, or restore that system)\n' "$PROG" "$remote" "$_remote" "$_local" >&2
    return "$EXIT_REFUSED"
  fi
}

upload() {
  credentials || return "$EXIT_REFUSED"
  [ -f "$backup_dir/$SYSTEM_FILE" ] || { say "nothing archived yet in $backup_dir"; return 0; }
  guard_system || return $?
  # Finished files only: temporary names start with a dot; backup.info and the owner file last.
  r copy --immutable --exclude '.*' --exclude '.*/**' --exclude "/$BASE_DIR/*/$INFO_FILE" --exclude "/$SYSTEM_FILE" "$backup_dir" "$remote" || return $?
  r copy --immutable --include "/$BASE_DIR/*/$INFO_FILE" --include "/$SYSTEM_FILE" --exclude '.*/**' "$backup_dir" "$remote" || return $?
  retention
}

# Keeps the newest OFFSITE_KEEP finished base backups in the bucket and the WAL they need (the
# bucket's own content decides, never the volume's), and the newest OFFSITE_DUMP_KEEP dumps.
retention() {
  _bases=$(rc lsf -R --include "/*/$INFO_FILE" "$remote/$BASE_DIR" 2>/dev/null | sed -n "s|/$INFO_FILE\$||p" | sort -r) || return 0
  [ -n "$_bases" ] || return 0
  _oldest=$(echo "$_bases" | head -n "$keep" | tail -n 1)
  for _dir in $(rc lsf --dirs-only "$remote/$BASE_DIR" | tr -d / | sort); do
    # Older than the oldest kept, finished or not (an unfinished upload newer than it stays).
    key_before "$_dir" "$_oldest" || continue
    r purge "$remote/$BASE_DIR/$_dir" >/dev/null && say "removed $BASE_DIR/$_dir from the bucket (keeping the newest $keep base backups)"
  done
  _first=$(remote_file "$BASE_DIR/$_oldest/$INFO_FILE" | sed -n 's/^start_wal=//p')
  [ -n "$_first" ] || return 0
  _old=$(rc lsf "$remote/$WAL_DIR" | wal_before "$_first")
  if [ -n "$_old" ]; then
    echo "$_old" | r delete --files-from - "$remote/$WAL_DIR" && say "removed $(echo "$_old" | wc -l | tr -d ' ') WAL file(s) before $_first from the bucket"
  fi
  _dumps=$(rc lsf "$remote/$DUMP_DIR" 2>/dev/null | grep "$DUMP_SUFFIX\$" | sort -r | tail -n "+$((dump_keep + 1))" || true)
  if [ -n "$_dumps" ]; then
    echo "$_dumps" | r delete --files-from - "$remote/$DUMP_DIR" && say "removed $(echo "$_dumps" | wc -l | tr -d ' ') dump(s) from the bucket (keeping the newest $dump_keep)"
  fi
  return 0
}

fetch() {
  case ${RESTORE_SOURCE:-$DEFAULT_RESTORE_SOURCE} in
    volume) say "RESTORE_SOURCE=volume: the restore reads the archive on the backup volume, nothing to fetch"; return 0 ;;
    offsite) ;;
    *) fail "$EXIT_REFUSED" "RESTORE_SOURCE: '$RESTORE_SOURCE' is not 'volume' (the backup volume's archive) or 'offsite' (the object store's). Nothing was changed." ;;
  esac
  _target=${RESTORE_TARGET:-}
  case $_target in
    '') fail "$EXIT_REFUSED" "RESTORE_TARGET is not set: $TARGET_RULE. Nothing was changed." ;;
    latest) _key= ;;
    *) _key=$(time_key "$_target") || fail "$EXIT_REFUSED" "RESTORE_TARGET: '$_target' is not $TARGET_RULE. Nothing was changed." ;;
  esac
  credentials || exit "$EXIT_REFUSED"
  _system=$(rc cat "$remote/$SYSTEM_FILE" 2>&1) || {
    case $_system in *'not found'*|*NoSuchKey*) fail "$EXIT_REFUSED" "no archive at $remote ($SYSTEM_FILE missing): nothing was ever uploaded there. Nothing was changed." ;; esac
    classify "$_system" || exit $?
  }
  _bases=$(r lsf -R --include "/*/$INFO_FILE" "$remote/$BASE_DIR" | sed -n "s|/$INFO_FILE\$||p" | sort) || exit $?
  [ -n "$_bases" ] || fail "$EXIT_REFUSED" "no finished base backup in $remote/$BASE_DIR. Nothing was changed."
  _base= _oldest_end=
  for _b in $_bases; do
    _end=$(remote_file "$BASE_DIR/$_b/$INFO_FILE" | sed -n 's/^end_time=//p')
    [ -n "$_oldest_end" ] || _oldest_end=$_end
    if [ -z "$_key" ] || ! key_before "$_key" "$(time_key "$_end")"; then _base=$_b; fi
  done
  [ -n "$_base" ] || fail "$EXIT_REFUSED" "RESTORE_TARGET: $_target is before the end of the oldest base backup in the bucket (ended $_oldest_end): the archive cannot reach it. Nothing was changed."

  # The volume belongs to another database system (a fresh one created meanwhile): set it aside.
  if [ -f "$backup_dir/$SYSTEM_FILE" ] && [ "$(cat "$backup_dir/$SYSTEM_FILE")" != "$_system" ]; then
    _aside=$backup_dir/.replaced-$(cat "$backup_dir/$SYSTEM_FILE")-$(date -u '+%Y%m%dT%H%M%SZ')
    mkdir -p "$_aside"
    for _entry in "$WAL_DIR" "$BASE_DIR" "$SYSTEM_FILE"; do [ ! -e "$backup_dir/$_entry" ] || mv "$backup_dir/$_entry" "$_aside/"; done
    say "the backup volume held database system $(cat "$_aside/$SYSTEM_FILE")'s archive: moved to $_aside (delete it once you are satisfied)"
  fi
  _first=$(remote_file "$BASE_DIR/$_base/$INFO_FILE" | sed -n 's/^start_wal=//p')
  say "fetching base backup $_base and the WAL from $_first on from $remote"
  mkdir -p "$backup_dir/$BASE_DIR" "$backup_dir/$WAL_DIR"
  if [ ! -f "$backup_dir/$BASE_DIR/$_base/$INFO_FILE" ]; then
    _partial=$backup_dir/$BASE_DIR/.$_base.partial
    r copy "$remote/$BASE_DIR/$_base" "$_partial" || exit $?
    mv "$_partial" "$backup_dir/$BASE_DIR/$_base"
  fi
  _wal=$(rc lsf "$remote/$WAL_DIR" | awk -v first="$_first" '/\.history$/ || (substr($0, 1, 24) ~ /^[0-9A-F]+$/ && length($0) >= 24 && substr($0, 9, 16) >= substr(first, 9, 16)) { print }')
  echo "$_wal" | r copy --immutable --files-from - "$remote/$WAL_DIR" "$backup_dir/$WAL_DIR" || exit $?
  [ -f "$backup_dir/$SYSTEM_FILE" ] || printf '%s\n' "$_system" >"$backup_dir/$SYSTEM_FILE"
  say "fetched base backup $_base and $(echo "$_wal" | grep -c .) WAL file(s) into $backup_dir"
}

case ${1:-} in
  upload) upload ;;
  fetch) fetch ;;
  loop)
    trap 'exit 0' TERM INT
    say "uploading $backup_dir to $remote every ${interval}s"
    while :; do
      if status=$(upload 2>&1); then
        [ -z "$status" ] || printf '%s\n' "$status"
        date -u '+%Y-%m-%dT%H:%M:%SZ ok' >"$backup_dir/$STATUS_FILE.tmp" && mv "$backup_dir/$STATUS_FILE.tmp" "$backup_dir/$STATUS_FILE"
      else
        printf '%s\n' "$status" >&2
        { date -u '+%Y-%m-%dT%H:%M:%SZ failed'; printf '%s\n' "$status"; } >"$backup_dir/$STATUS_FILE.tmp" && mv "$backup_dir/$STATUS_FILE.tmp" "$backup_dir/$STATUS_FILE"
      fi
      sleep "$interval" & wait $! || true
    done ;;
  *) fail "$EXIT_REFUSED" "usage: offsite.sh loop|upload|fetch" ;;
esac

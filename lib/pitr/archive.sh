#!/bin/sh
# PostgreSQL's archive_command (primary.extendedConfiguration): copies one completed WAL file into
# the backup volume's archive, as `sh archive.sh %p %f` from the data directory.
#   - A segment is stored gzip-compressed as <name>.gz (a segment closed early by archive_timeout
#     is mostly zeros); history and backup-label files are stored as they are.
#   - Nothing is ever overwritten: a name already in the archive is accepted only when its content
#     is identical (PostgreSQL may archive a file again after a crash), refused otherwise.
#   - Written under a temporary name, flushed, then linked into place: a killed copy never leaves
#     a partial file under a final name, and the next attempt starts over.
#   - The archive belongs to one database system: a server with another system identifier (a
#     fresh initdb on an empty data volume) is refused instead of mixing its WAL into it.
# Any exit but 0 makes PostgreSQL keep the file in pg_wal and try again later.
# Exit codes, knobs and constants come from its TypeScript contract (lib/pitr/contracts.ts).
set -eu
# learnflow:contract
: "${PROG:?this is the source of archive.sh: run the copy the synth renders}"
src=${1:?usage: archive.sh <path> <file name>}
name=${2:?usage: archive.sh <path> <file name>}
backup_dir=${LEARNFLOW_BACKUP_DIR:-$DEFAULT_LEARNFLOW_BACKUP_DIR}
wal_dir=$backup_dir/$WAL_DIR
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }

case $name in
  */*|.*|'') fail "$EXIT_REFUSED" "'$name' is not a WAL file name" ;;
  [0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]|*.partial)
    stored=$name$SEGMENT_SUFFIX ;;
  *) stored=$name ;;
esac
[ -d "$backup_dir" ] || fail "$EXIT_FAILED" "the backup volume is not mounted at $backup_dir"

# The system identifier of this server, from its own control file (the data directory is the cwd).
system=$(pg_controldata . 2>/dev/null | sed -n 's/^Database system identifier: *//p')
[ -n "$system" ] || fail "$EXIT_FAILED" "cannot read the database system identifier (pg_controldata in $(pwd))"
owner=$backup_dir/$SYSTEM_FILE
if [ ! -f "$owner" ]; then
  printf '%s\n' "$system" >"$owner.$$.tmp"
  # ln refuses an existing name: two first writers cannot both win.
  ln "$owner.$$.tmp" "$owner" 2>/dev/null || true
  rm -f "$owner.$$.tmp"
fi
archived_system=$(cat "$owner")
[ "$archived_system" = "$system" ] || fail "$EXIT_REFUSED" "the archive in $backup_dir belongs to database system $archived_system, this server is $system: restore the archived system (README: Point-in-time recovery) or move the archive aside; nothing was archived"

mkdir -p "$wal_dir"
dest=$wal_dir/$stored
# Identical content: the same SHA-256 (coreutils; the image may lack diffutils' cmp).
same_as_archived() {
  case $stored in
    *"$SEGMENT_SUFFIX") archived=$(gzip -dc "$dest" 2>/dev/null | sha256sum) || return 1 ;;
    *) archived=$(sha256sum <"$dest") ;;
  esac
  [ "$archived" = "$(sha256sum <"$src")" ]
}
if [ -e "$dest" ]; then
  same_as_archived && exit 0
  fail "$EXIT_REFUSED" "$stored is already in the archive with different content: refusing to overwrite it (is another server archiving into $backup_dir?)"
fi

tmp=$wal_dir/.$stored.partial
trap 'rm -f "$tmp"' EXIT
case $stored in
  *"$SEGMENT_SUFFIX") gzip -1 -c <"$src" >"$tmp" ;;
  *) cp "$src" "$tmp" ;;
esac
sync "$tmp"
if ! ln "$tmp" "$dest" 2>/dev/null; then
  # Someone archived the same name meanwhile: fine only if it is the same file.
  [ -e "$dest" ] && same_as_archived && exit 0
  fail "$EXIT_FAILED" "could not link $tmp to $dest"
fi
sync "$wal_dir"

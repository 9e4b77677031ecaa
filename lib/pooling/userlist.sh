#!/bin/sh
# The pooler's init container: writes PgBouncer's auth_file with the one line of its lookup role
# ("user" "password", '"' doubled as PgBouncer reads it) from the credentials Secret's key, mode
# 0600, onto the memory-backed volume PgBouncer reads. Every other user is looked up in the
# database (auth_query). Exit codes and knobs come from its TypeScript contract (lib/pooling/contracts.ts).
set -eu
# learnflow:contract
: "${PROG:?this is the source of userlist.sh: run the copy the synth renders into the pod}"
: "${POOLER_PASSWORD_FILE:?}" "${USERLIST_FILE:?}" "${POOLER_AUTH_USER:=$DEFAULT_POOLER_AUTH_USER}"
fail() { printf '%s: %s\n' "$PROG" "$*" >&2; exit "$EXIT_REFUSED"; }
[ -r "$POOLER_PASSWORD_FILE" ] || fail "cannot read the password file $POOLER_PASSWORD_FILE"
password=$(cat "$POOLER_PASSWORD_FILE")
[ -n "$password" ] || fail "the password file $POOLER_PASSWORD_FILE is empty"
case $password in *'
'*) fail "the password in $POOLER_PASSWORD_FILE holds a line break" ;; esac
(
  umask 077
  printf '"%s" "%s"\n' "$(printf '%s' "$POOLER_AUTH_USER" | sed 's/"/""/g')" "$(printf '%s' "$password" | sed 's/"/""/g')" >"$USERLIST_FILE.new"
) && mv -f "$USERLIST_FILE.new" "$USERLIST_FILE"
password=''
printf '%s: wrote the auth_file for %s\n' "$PROG" "$POOLER_AUTH_USER"

#!/bin/sh
# Credentials bootstrap for LearnFlow's PostgreSQL, run by a Job before the database starts.
#   CREDENTIALS_MODE=generate: create the Secret with random passwords once; keep it afterwards.
#   CREDENTIALS_MODE=verify:   the Secret is user-managed; check it exists and is usable.
# Never overwrites a Secret, and refuses to create one when the database volume already holds
# data: a new password would not match the one the database was initialised with.
# Exit codes, knobs and defaults come from its TypeScript contract
# (lib/credentials/bootstrap-contract.ts), which the synth renders into this copy below.
set -eu
# learnflow:contract
: "${PROG:?this is the source of bootstrap.sh: run the copy the synth renders into the Job}"

: "${NAMESPACE:?}" "${SECRET_NAME:?}" "${DATA_CLAIM:?}" "${OTHER_DATA_CLAIM:?}" "${CREDENTIALS_MODE:?}"
: "${PASSWORD_LENGTH:=$DEFAULT_PASSWORD_LENGTH}" "${MIN_PASSWORD_LENGTH:=$DEFAULT_MIN_PASSWORD_LENGTH}"
: "${ADMIN_PASSWORD_KEY:=$DEFAULT_ADMIN_PASSWORD_KEY}" "${PASSWORD_KEY:=$DEFAULT_PASSWORD_KEY}" "${URI_KEY:=$DEFAULT_URI_KEY}"
: "${POOLED_URI_KEY:=$DEFAULT_POOLED_URI_KEY}"
knobs_ok=1
check_knob PASSWORD_LENGTH "$PASSWORD_LENGTH" >&2 || knobs_ok=''
check_knob MIN_PASSWORD_LENGTH "$MIN_PASSWORD_LENGTH" >&2 || knobs_ok=''
[ -n "$knobs_ok" ] || exit "$EXIT_REFUSED"

work=$(mktemp -d "${TMPDIR:-/tmp}/credentials.XXXXXX")
trap 'rm -rf "$work"' EXIT

log() { printf '%s: %s\n' "$PROG" "$*"; }
# How this Job runs again once the cause is fixed: Argo CD re-creates it at every sync attempt
# (sync-options Force=true,Replace=true); a Failed Job of the same name never runs again by itself.
RERUN="sync again: Argo CD re-creates this Job at every sync attempt (its automatic retries, or argocd app sync <app>); with kubectl: kubectl -n $NAMESPACE delete job -l app.kubernetes.io/component=credentials, then apply dist/ again."
fail() { code=$1; shift; for line; do printf '%s: %s\n' "$PROG" "$line"; done >&2; exit "$code"; }

# kubectl get: 0 found, 1 not found, exits 2 on any other error (RBAC, network, ...).
exists() {
  if kubectl get "$1" "$2" -n "$NAMESPACE" -o name >/dev/null 2>"$work/err"; then return 0; fi
  if grep -q 'NotFound' "$work/err"; then return 1; fi
  fail "$EXIT_API_UNAVAILABLE" "cannot read $1/$2 in namespace $NAMESPACE: $(cat "$work/err")"
}

secret_value() { # key: its value, decoded, into $work/decoded
  kubectl get secret "$SECRET_NAME" -n "$NAMESPACE" -o "jsonpath={.data.$1}" >"$work/value" 2>"$work/err" ||
    fail "$EXIT_API_UNAVAILABLE" "cannot read secret $NAMESPACE/$SECRET_NAME: $(cat "$work/err")"
  base64 -d <"$work/value" >"$work/decoded"
}

# The major-version guard (README: Upgrading PostgreSQL's major version). This Job runs before the
# chart's StatefulSet changes (wave -1; kubectl users wait for it before helm): when the data claim
# exists and the StatefulSet runs another PostgreSQL major on it than this render's chart would
# start, the sync stops here. A data directory of one major cannot start on another.
# The major that runs: the StatefulSet's postgresql image tag, else its helm.sh/chart label's chart.
major_of_tag() { printf '%s\n' "$1" | sed -n 's/^\([0-9][0-9]*\)\(\..*\)\{0,1\}$/\1/p'; }
if exists pvc "$DATA_CLAIM" && exists statefulset "$STATEFULSET"; then
  kubectl get statefulset "$STATEFULSET" -n "$NAMESPACE" \
    -o 'jsonpath={range .spec.template.spec.containers[?(@.name=="postgresql")]}{.image}{end}{"\n"}{.metadata.labels.helm\.sh/chart}{"\n"}' \
    >"$work/statefulset" 2>"$work/err" || fail "$EXIT_API_UNAVAILABLE" "cannot read statefulset/$STATEFULSET in namespace $NAMESPACE: $(cat "$work/err")"
  image=$(sed -n 1p "$work/statefulset")
  running_chart=$(sed -n 2p "$work/statefulset" | sed 's/^postgresql-//')
  running=$(major_of_tag "${image##*:}")
  for pair in $CHART_MAJORS; do
    if [ -z "$running" ] && [ "${pair%%=*}" = "$running_chart" ]; then running=${pair#*=}; fi
  done
  if [ -n "$running" ] && [ "$running" != "$POSTGRESQL_MAJOR" ]; then
    fail "$EXIT_OTHER_MAJOR" "PostgreSQL $running runs on the data volume $NAMESPACE/$DATA_CLAIM (statefulset $STATEFULSET: ${image:-no image}, chart ${running_chart:-unknown})," \
      "and this render's chart would start PostgreSQL $POSTGRESQL_MAJOR on it: a data directory of one major version cannot start on another (the pod would crash-loop)." \
      "Stopped before the database changes: nothing after this Job is applied by Argo CD; with kubectl, do not run the helm upgrade." \
      "Ways through (README: Upgrading PostgreSQL's major version):" \
      "  1. keep the data as it is: set chartVersion back${running_chart:+ to '$running_chart'} in the profile, render again (npm run synth) and sync, or" \
      "  2. move the data across: a dump with the backup Job, a fresh volume for PostgreSQL $POSTGRESQL_MAJOR (delete the claim $DATA_CLAIM), then the restore Job."
  fi
  [ -z "$running" ] || log "PostgreSQL $running runs on $NAMESPACE/$DATA_CLAIM, the major this chart starts"
fi

# The volume guard (README: Read replicas): the chart names the primary's StatefulSet, and so its
# data claim, after its architecture (<fullname> standalone, <fullname>-primary with read
# replicas). Turning replicas on or off over existing data would start the primary empty on a
# new claim while the data stays on the old one, and run the migrations into the empty database.
if ! exists pvc "$DATA_CLAIM" && exists pvc "$OTHER_DATA_CLAIM"; then
  case $DATA_CLAIM in *-primary-0) turned=on ;; *) turned=off ;; esac
  fail "$EXIT_DATA_ELSEWHERE" "the database's data is on $NAMESPACE/$OTHER_DATA_CLAIM, and this render's chart would start the primary empty on a new claim $NAMESPACE/$DATA_CLAIM:" \
    "read replicas are turned $turned, and the chart names the primary's StatefulSet and its claim after that." \
    "Stopped before the database changes: nothing after this Job is applied by Argo CD; with kubectl, do not run the helm upgrade." \
    "Ways through (README: Read replicas):" \
    "  1. keep the data where it is: set readReplicas back in the profile, render again (npm run synth) and sync, or" \
    "  2. move the data across: a dump with the backup Job, delete the claim $OTHER_DATA_CLAIM (the dump stays on its own claim), sync again, then the restore Job."
fi

random_password() {
  # Letters and digits only: safe in a connection URI and in any shell or config file.
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$PASSWORD_LENGTH"
}

# Keys this deployment needs besides the two passwords (replication, the pooler's lookup role):
# generated into a Secret of ours that lacks them, required in a user-managed one.
extra_keys=${EXTRA_PASSWORD_KEYS:-}

# set_keys <key> <file>...: sets each key of the existing Secret to its file's content, in one merge patch.
set_keys() {
  printf '{"data":{' >"$work/patch"
  sep=''
  while [ $# -gt 1 ]; do
    printf '%s"%s":"%s"' "$sep" "$1" "$(base64 <"$2" | tr -d '\n')" >>"$work/patch"
    sep=','
    shift 2
  done
  printf '}}' >>"$work/patch"
  kubectl patch secret "$SECRET_NAME" -n "$NAMESPACE" --type merge --patch-file "$work/patch" >/dev/null 2>"$work/err" ||
    fail "$EXIT_API_UNAVAILABLE" "cannot update secret $NAMESPACE/$SECRET_NAME: $(cat "$work/err")"
  rm -f "$work/patch"
}

# The application's connection strings, from the user's password in $work/user: direct, and through the pooler.
database_uri() {
  printf 'postgresql://%s:%s@%s:%s/%s%s' "$APP_USER" "$(cat "$work/user")" "$DATABASE_HOST" "$DATABASE_PORT" "$DATABASE_NAME" "${URI_QUERY:-}"
}
pooled_uri() {
  printf 'postgresql://%s:%s@%s:%s/%s' "$APP_USER" "$(cat "$work/user")" "$POOLER_HOST" "$POOLER_PORT" "$DATABASE_NAME"
}

if exists secret "$SECRET_NAME"; then
  missing=''
  for key in "$ADMIN_PASSWORD_KEY" "$PASSWORD_KEY" $extra_keys; do
    secret_value "$key"
    length=$(wc -c <"$work/decoded" | tr -d ' ')
    if [ "$length" = 0 ] && [ "$CREDENTIALS_MODE" = generate ] && [ "$key" != "$ADMIN_PASSWORD_KEY" ] && [ "$key" != "$PASSWORD_KEY" ]; then
      missing="$missing $key"
      continue
    fi
    [ "$length" -ge "$MIN_PASSWORD_LENGTH" ] || fail "$EXIT_REFUSED" \
      "secret $NAMESPACE/$SECRET_NAME: key '$key' is missing or shorter than $MIN_PASSWORD_LENGTH characters." \
      "Fix: set it, e.g. kubectl -n $NAMESPACE patch secret $SECRET_NAME --type merge -p '{\"stringData\":{\"$key\":\"<$MIN_PASSWORD_LENGTH+ characters>\"}}'"
    # Our Jobs log in through a libpq password file (one line per login): no line break fits in it.
    [ "$(tr -dc '\n' <"$work/decoded" | wc -c | tr -d ' ')" = 0 ] || fail "$EXIT_REFUSED" \
      "secret $NAMESPACE/$SECRET_NAME: key '$key' holds a line break (a file with a trailing newline, given to --from-file?): passwords reach libpq through a password file, which cannot hold one." \
      "Fix: set it without, e.g. kubectl -n $NAMESPACE patch secret $SECRET_NAME --type merge -p '{\"stringData\":{\"$key\":\"<$MIN_PASSWORD_LENGTH+ characters, one line>\"}}'"
  done
  # Ours (generated): a key this deployment now needs (replicas or the pooler turned on later)
  # gets a new password, the passwords there stay as they are, and the connection strings follow
  # the current host, port and TLS (with replicas the primary's Service is another).
  if [ "$CREDENTIALS_MODE" = generate ]; then
    changes='' added='' derived=''
    for key in $missing; do
      random_password >"$work/key-$key"
      changes="$changes $key $work/key-$key" added="$added $key"
    done
    secret_value "$PASSWORD_KEY"
    cp "$work/decoded" "$work/user"
    database_uri >"$work/uri"
    [ -n "${POOLER_HOST:-}" ] && pooled_uri >"$work/pooled-uri" || rm -f "$work/pooled-uri"
    for pair in "$URI_KEY:$work/uri" "$POOLED_URI_KEY:$work/pooled-uri"; do
      key=${pair%%:*} file=${pair#*:}
      [ -f "$file" ] || continue
      secret_value "$key"
      [ "$(cat "$work/decoded")" = "$(cat "$file")" ] || changes="$changes $key $file" derived="$derived $key"
    done
    if [ -n "$changes" ]; then
      set_keys $changes
      [ -z "$added" ] || log "secret $NAMESPACE/$SECRET_NAME: added$added (generated); the passwords there kept as they are"
      [ -z "$derived" ] || log "secret $NAMESPACE/$SECRET_NAME: set$derived to the current connection ($DATABASE_HOST:$DATABASE_PORT${POOLER_HOST:+, pooler $POOLER_HOST:$POOLER_PORT})"
      exit "$EXIT_OK"
    fi
  fi
  log "secret $NAMESPACE/$SECRET_NAME exists with keys $ADMIN_PASSWORD_KEY and $PASSWORD_KEY${extra_keys:+ and$(printf ' %s' $extra_keys)}: kept as it is"
  exit "$EXIT_OK"
fi

if [ "$CREDENTIALS_MODE" = verify ]; then
  fail "$EXIT_REFUSED" "secret $NAMESPACE/$SECRET_NAME not found. It is user-managed (credentials.existingSecret): nothing is generated." \
    "Fix: create it with keys '$ADMIN_PASSWORD_KEY' and '$PASSWORD_KEY'${extra_keys:+ and $extra_keys} ($MIN_PASSWORD_LENGTH+ characters each), e.g." \
    "  kubectl -n $NAMESPACE create secret generic $SECRET_NAME --from-literal=$ADMIN_PASSWORD_KEY=\"\$(openssl rand -hex 24)\" --from-literal=$PASSWORD_KEY=\"\$(openssl rand -hex 24)\"$(for key in $extra_keys; do printf ' --from-literal=%s="$(openssl rand -hex 24)"' "$key"; done)" \
    "or let External Secrets / Sealed Secrets create it; then $RERUN"
fi

if exists pvc "$DATA_CLAIM"; then
  fail "$EXIT_REFUSED" "secret $NAMESPACE/$SECRET_NAME is missing but the database volume $NAMESPACE/$DATA_CLAIM exists." \
    "Refusing to generate a new password: the data on that volume was initialised with the old one." \
    "Recover one of these ways:" \
    "  1. restore the secret from your backup (kubectl apply -f <saved secret>), or" \
    "  2. recreate it with the passwords the database already has (keys '$ADMIN_PASSWORD_KEY' and '$PASSWORD_KEY'), or" \
    "  3. if the data is disposable: kubectl -n $NAMESPACE delete pvc $DATA_CLAIM (ALL DATA IS LOST)," \
    "then $RERUN"
fi

random_password >"$work/admin"
random_password >"$work/user"
[ "$(wc -c <"$work/admin")" -ge "$PASSWORD_LENGTH" ] || fail "$EXIT_REFUSED" "could not read $PASSWORD_LENGTH random characters from /dev/urandom"
database_uri >"$work/uri"
extra_files=''
for key in $extra_keys; do
  random_password >"$work/key-$key"
  extra_files="$extra_files --from-file=$key=$work/key-$key"
done
if [ -n "${POOLER_HOST:-}" ]; then
  pooled_uri >"$work/pooled-uri"
  extra_files="$extra_files --from-file=$POOLED_URI_KEY=$work/pooled-uri"
fi

# No part-of label: `kubectl apply --prune -l app.kubernetes.io/part-of=...` must never delete it.
if kubectl create secret generic "$SECRET_NAME" -n "$NAMESPACE" \
  --from-file="$ADMIN_PASSWORD_KEY=$work/admin" --from-file="$PASSWORD_KEY=$work/user" --from-file="$URI_KEY=$work/uri" $extra_files \
  >/dev/null 2>"$work/err"; then
  kubectl label secret "$SECRET_NAME" -n "$NAMESPACE" app.kubernetes.io/managed-by=learnflow-credentials-bootstrap >/dev/null 2>&1 || true
  log "secret $NAMESPACE/$SECRET_NAME created with generated passwords ($PASSWORD_LENGTH characters)"
elif grep -q 'AlreadyExists' "$work/err"; then
  log "secret $NAMESPACE/$SECRET_NAME was created by a concurrent run: kept as it is"
else
  fail "$EXIT_API_UNAVAILABLE" "cannot create secret $NAMESPACE/$SECRET_NAME: $(cat "$work/err")"
fi

#!/bin/sh
# The four everyday changes of the README's Development section, made the way a person makes
# them, in a scratch clone of this repository's committed state:
#   1. add a migration      two files in migrations/, then npm run synth
#   2. add a profile        one entry in lib/profiles.ts, then npm run synth
#   3. switch the chart     one prop (chartVersion) of a profile, then npm run synth
#   4. allow a namespace    one prop (allowedNamespaces) of a profile, then npm run synth
# Each change is committed in the clone on its own, and the files it touched (dist/ included) are
# checked against the ones the README names. Then the whole suite (`npm test`) runs once over all
# four: a run takes minutes on 2 cores, and the changes touch disjoint files. The review snapshots
# render props and migrations of their own, so none of the changes touches them.
#
# Usage: sh .ci/walkthroughs.sh   (after npm ci; .ci/run calls it after the suite)
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/learnflow-walkthroughs.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
clone="$work/repo"

say() { printf 'walkthroughs: %s\n' "$*"; }
fail() { printf 'walkthroughs: FAILED: %s\n' "$*" >&2; exit 1; }

git clone -q "$repo" "$clone"
cd "$clone"
git config user.email walkthroughs@example.invalid
git config user.name walkthroughs
ln -s "$repo/node_modules" node_modules
# .gitignore's `node_modules/` matches folders, not this link.
echo node_modules >>.git/info/exclude

# Replaces the first occurrence of $2 in file $1 by $3, or fails naming what it did not find.
edit() {
  node -e '
    const fs = require("fs");
    const [file, from, to] = process.argv.slice(1);
    const text = fs.readFileSync(file, "utf8");
    if (!text.includes(from)) { console.error(`${file}: no ${JSON.stringify(from)}`); process.exit(1); }
    fs.writeFileSync(file, text.replace(from, () => to));
  ' "$@" || fail "cannot make the change in $1"
}

synth() {
  node scripts/synth.cjs >"$work/synth.log" 2>&1 || { cat "$work/synth.log" >&2; fail "npm run synth failed"; }
}

# Checks that the change named $1 touched exactly files matching the patterns that follow (shell
# patterns: dist/staging/* for a folder), and each pattern at least once; then commits it.
touches_only() {
  change=$1
  shift
  git add -A
  touched=$(git diff --cached --name-only)
  [ -n "$touched" ] || fail "$change: changed nothing"
  for file in $touched; do
    allowed=no
    for pattern in "$@"; do
      # shellcheck disable=SC2254
      case $file in $pattern) allowed=yes ;; esac
    done
    [ "$allowed" = yes ] || fail "$change: touched $file, which it should not (allowed: $*)"
  done
  for pattern in "$@"; do
    hit=no
    for file in $touched; do
      # shellcheck disable=SC2254
      case $file in $pattern) hit=yes ;; esac
    done
    [ "$hit" = yes ] || fail "$change: did not touch $pattern"
  done
  git commit -q -m "walkthrough: $change"
  say "$change: touched $(echo "$touched" | wc -l | tr -d ' ') files, all of: $*"
}

# 1. A migration: the next version after the newest of migrations/.
newest=$(ls migrations | sed -n 's/^\([0-9][0-9]*\)_.*/\1/p' | sort | tail -n 1)
next=$(printf "%0${#newest}d" "$(expr "$newest" + 1)")
printf 'ALTER TABLE users ADD COLUMN display_name text;\n' >"migrations/${next}_add_users_display_name.up.sql"
printf 'ALTER TABLE users DROP COLUMN display_name;\n' >"migrations/${next}_add_users_display_name.down.sql"
synth
touches_only "add migration $next" "migrations/${next}_add_users_display_name.up.sql" \
  "migrations/${next}_add_users_display_name.down.sql" 'dist/*/learnflow-postgres.yaml'

# 2. A profile: one entry.
edit lib/profiles.ts '
} as const satisfies Record<string, LearnflowPostgresProps>;' "
  /** A staging deployment: its own namespace, 10Gi. */
  staging: { namespace: 'postgres-staging', storageSize: '10Gi', allowedNamespaces: ['learnflow-staging'], argocd: ARGOCD },
} as const satisfies Record<string, LearnflowPostgresProps>;"
synth
touches_only 'add profile staging' lib/profiles.ts 'dist/staging/*'

# 3. The chart version of one profile: one prop.
edit lib/profiles.ts '
  production: {' "
  production: {
    chartVersion: '16.7.27',"
synth
grep -q -- '^# chart: postgresql 16.7.27 ' dist/production/helm/postgresql-values.yaml || fail 'production does not render chart 16.7.27'
touches_only 'switch production to chart 16.7.27' lib/profiles.ts 'dist/production/*'

# 4. One more namespace whose pods may connect: one prop.
edit lib/profiles.ts "
  development: {
    allowedNamespaces: ['learnflow']," "
  development: {
    allowedNamespaces: ['learnflow', 'analytics'],"
synth
touches_only 'allow namespace analytics in development' lib/profiles.ts 'dist/development/*'

say 'running the whole suite over all four changes'
npm test || fail 'the suite failed after the four changes (see above)'
say 'all four changes pass the suite with no other edit'

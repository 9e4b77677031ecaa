#!/bin/sh
# Builds, installs and caches the tools the test tiers use besides the Kubernetes API tier
# (scripts/kube-test-env.sh). Nothing is downloaded as a prebuilt binary: the Go tools are built
# from the Go module proxy, the servers come from Debian, checkov from PyPI.
#
#   helm        the real Helm: renders and installs the vendored chart (charts/)
#   rclone      `rclone serve s3`: a real S3-compatible server on loopback (Debian's 1.60 lacks it)
#   kube-score  scans dist/ and the chart's render
#   registry    CNCF distribution, a local OCI registry to serve the chart as `oci://`
#   argocd      Argo CD's multi-call binary (argocd-repo-server, argocd-application-controller, …)
#               with its CRDs, for the GitOps tier
#   pgbouncer   Debian's PgBouncer, for the pooling tests
#   redis       Debian's redis-server, which Argo CD needs
#   busybox     Debian's BusyBox: the shell and tools of rclone's image, which the off-site scripts run in
#   checkov     PyPI's checkov in its own virtualenv, the second scanner
#
# Usage: sh scripts/test-tools.sh [TOOL ...]        (no TOOL: all of them)
#
# Each Go tool lands in ${XDG_CACHE_HOME:-$HOME/.cache}/learnflow-postgres/<tool>/<version>/,
# like kube-apiserver; checkov in .../checkov/<version>/venv/. Idempotent: a tool already there,
# reporting its pinned version, is left alone; concurrent runs wait for each other (flock).
# Prints progress on stderr and, on stdout, one `LEARNFLOW_<TOOL>=<path>` line per tool to eval.
# test/support/tools.ts finds the same paths, and reads the versions below: keep each assignment
# on one line.
#
# Environment:
#   LEARNFLOW_TOOLS_CACHE    cache root instead of ${XDG_CACHE_HOME:-$HOME/.cache}/learnflow-postgres
#   LEARNFLOW_TOOLS_NO_APT=1 never call apt-get (fail instead if a Debian package is missing)
#   GOCACHE, GOMODCACHE, GOPROXY, GOFLAGS are honoured as by any go command.
set -eu

# v3.22.0 is served by the proxy but not on its approved list; 3.21.4 is the newest approved v3.
HELM_VERSION=3.21.4
RCLONE_VERSION=1.76.0
KUBE_SCORE_VERSION=1.20.0
REGISTRY_VERSION=3.1.2
ARGOCD_VERSION=3.6.1
# Argo CD 3.6's go.mod needs Go 1.27; the go command fetches this toolchain from the module proxy.
ARGOCD_GO_TOOLCHAIN=go1.27.3
CHECKOV_VERSION=3.3.30

ALL_TOOLS="helm rclone kube-score registry argocd pgbouncer redis busybox checkov"

CACHE=${LEARNFLOW_TOOLS_CACHE:-${XDG_CACHE_HOME:-${HOME:?is unset: set LEARNFLOW_TOOLS_CACHE or XDG_CACHE_HOME}/.cache}/learnflow-postgres}

say() { printf 'test-tools: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- shared steps -------------------------------------------------------------------------------

# Runs "$@" holding an exclusive lock on $1's folder, so two runs never build the same tool at once.
with_lock() {
  dir=$1
  shift
  mkdir -p "$dir"
  if command -v flock >/dev/null 2>&1; then
    (
      flock 9
      "$@"
    ) 9>"$dir/.lock"
  else
    "$@"
  fi
}

# Records beside a tool when, how long and with what it was built (to compare build times).
record_build() { # dir seconds toolchain
  printf 'built_at=%s\nseconds=%s\nbuilt_with=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$3" >"$1/build-info.txt"
}

require_go() {
  command -v go >/dev/null 2>&1 || die "go not found: building $1 needs a Go toolchain (1.26+) and the Go module proxy"
}

# go_install NAME VERSION PACKAGE LDFLAGS: `go install PACKAGE@vVERSION` into the tool's folder.
# (go install pkg@version builds the module exactly as its own go.mod pins it.)
go_install() {
  name=$1 version=$2 package=$3 ldflags=$4
  dir=$CACHE/$name/$version
  require_go "$name"
  say "building $name v$version from the Go module proxy ($package) into $dir"
  started=$(date +%s)
  work=$(mktemp -d "$dir/.build.XXXXXX")
  if ! GOTOOLCHAIN=local GOBIN=$work go install -trimpath -ldflags="$ldflags" "$package@v$version"; then
    rm -rf "$work"
    die "go install $package@v$version failed (see above)"
  fi
  mv -f "$work/$(basename "$package")" "$dir/$name"
  rm -rf "$work"
  record_build "$dir" $(($(date +%s) - started)) "$(go version)"
  say "built $name in $(($(date +%s) - started))s"
}

# ensure NAME: builds or installs NAME unless it is there at its pinned version, then prints its path.
ensure() {
  t=$1
  if ! have_"$t" 2>/dev/null; then
    with_lock "$(tool_dir "$t")" build_if_missing "$t"
    have_"$t" || die "$(file_name "$t") was installed but does not report the pinned version: $(version_"$t" 2>&1 | head -n 3)"
  fi
  say "$(printf '%-11s' "$(file_name "$t")") $(tool_path "$t") ($(version_"$t" 2>/dev/null | head -n 1))"
  printf 'LEARNFLOW_%s=%s\n' "$(echo "$t" | tr 'a-z' 'A-Z')" "$(tool_path "$t")"
}

build_if_missing() {
  if have_"$1" 2>/dev/null; then return 0; fi # another run built it while this one waited
  build_"$1"
}

# Tools are named kube_score inside this script (a shell function name), kube-score outside.
file_name() { echo "$1" | tr _ -; }

tool_dir() {
  case $1 in
    pgbouncer | redis | busybox) echo "$CACHE/apt" ;;
    *) echo "$CACHE/$(file_name "$1")/$(tool_version "$1")" ;;
  esac
}

tool_version() {
  case $1 in
    helm) echo "$HELM_VERSION" ;;
    rclone) echo "$RCLONE_VERSION" ;;
    kube_score) echo "$KUBE_SCORE_VERSION" ;;
    registry) echo "$REGISTRY_VERSION" ;;
    argocd) echo "$ARGOCD_VERSION" ;;
    checkov) echo "$CHECKOV_VERSION" ;;
  esac
}

tool_path() {
  case $1 in
    pgbouncer) command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer ;;
    redis) command -v redis-server 2>/dev/null || echo /usr/bin/redis-server ;;
    busybox) command -v busybox 2>/dev/null || echo /bin/busybox ;;
    checkov) echo "$(tool_dir checkov)/venv/bin/checkov" ;;
    *) echo "$(tool_dir "$1")/$(file_name "$1")" ;;
  esac
}

# A binary is "there" when it runs and its version output holds the pinned version.
reports() { # tool expected-text
  [ -x "$(tool_path "$1")" ] && version_"$1" 2>/dev/null | grep -qF "$2"
}

# --- helm ---------------------------------------------------------------------------------------
version_helm() { "$(tool_path helm)" version --template '{{.Version}}'; }
have_helm() { reports helm "v$HELM_VERSION"; }
build_helm() {
  # What helm's Makefile stamps: its version, and the Kubernetes version of the client-go it
  # builds with (v0.37 -> 1.37), which `helm template` reports as .Capabilities.KubeVersion.
  require_go helm
  gomod=$(GOTOOLCHAIN=local go mod download -json "helm.sh/helm/v3@v$HELM_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  kube_minor=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" 2>/dev/null | head -n 1)
  [ -n "$kube_minor" ] || die "found no k8s.io/client-go requirement in helm.sh/helm/v3@v$HELM_VERSION's go.mod ($gomod)"
  go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "-s -w \
    -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor"
}

# --- rclone -------------------------------------------------------------------------------------
version_rclone() { "$(tool_path rclone)" version; }
have_rclone() { reports rclone "rclone v$RCLONE_VERSION"; }
build_rclone() {
  go_install rclone "$RCLONE_VERSION" github.com/rclone/rclone "-s -w -X github.com/rclone/rclone/fs.Version=v$RCLONE_VERSION"
}

# --- kube-score ---------------------------------------------------------------------------------
version_kube_score() { "$(tool_path kube_score)" version; }
have_kube_score() { reports kube_score "version: $KUBE_SCORE_VERSION"; }
build_kube_score() {
  go_install kube-score "$KUBE_SCORE_VERSION" github.com/zegl/kube-score/cmd/kube-score "-s -w -X main.version=$KUBE_SCORE_VERSION"
}

# --- registry (CNCF distribution) ---------------------------------------------------------------
version_registry() { "$(tool_path registry)" --version; }
have_registry() { reports registry "v$REGISTRY_VERSION"; }
build_registry() {
  go_install registry "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry "-s -w \
    -X github.com/distribution/distribution/v3/version.version=v$REGISTRY_VERSION \
    -X github.com/distribution/distribution/v3/version.mainpkg=github.com/distribution/distribution/v3"
}

# --- argocd -------------------------------------------------------------------------------------
# One binary; the component runs by the name it is started as, so symlinks sit beside it.
ARGOCD_COMMANDS="argocd-repo-server argocd-application-controller argocd-server argocd-applicationset-controller"
ARGOCD_SCRIPTS="git-verify-wrapper.sh gpg-wrapper.sh"
version_argocd() { "$(tool_path argocd)" version --client --short; }
have_argocd() {
  reports argocd "v$ARGOCD_VERSION" && [ -f "$(tool_dir argocd)/crds/application-crd.yaml" ] && [ -f "$(tool_dir argocd)/config/argocd-cm.yaml" ] &&
    for c in $ARGOCD_COMMANDS; do [ -L "$(tool_dir argocd)/$c" ] || return 1; done &&
    for c in $ARGOCD_SCRIPTS; do [ -x "$(tool_dir argocd)/$c" ] || return 1; done
}
build_argocd() {
  dir=$(tool_dir argocd)
  module=github.com/argoproj/argo-cd/v3
  require_go argocd
  say "building Argo CD v$ARGOCD_VERSION from the Go module proxy with $ARGOCD_GO_TOOLCHAIN into $dir (about 6 minutes on 2 cores, 300 MB)"
  started=$(date +%s)
  work=$(mktemp -d "$dir/.build.XXXXXX")
  GOTOOLCHAIN=$ARGOCD_GO_TOOLCHAIN
  export GOTOOLCHAIN
  (cd "$work" && go mod download -json "$module@v$ARGOCD_VERSION") >"$work/argocd.json" || true
  field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" "$work/argocd.json" | head -n 1; }
  gomod=$(field GoMod)
  source_dir=$(field Dir)
  if [ -z "$gomod" ] || [ ! -f "$gomod" ] || [ ! -d "$source_dir" ]; then
    die "could not download $module@v$ARGOCD_VERSION from the Go module proxy: $(cat "$work/argocd.json")"
  fi
  # Argo CD's go.mod pins the k8s.io modules (and a few others) with a replace block, which only
  # the main module's go.mod can apply: a wrapper module requires Argo CD and copies that block.
  # Its other replace, gitops-engine => ./gitops-engine, works only inside Argo CD's repository;
  # the wrapper takes the published github.com/argoproj/argo-cd/gitops-engine/v3 instead.
  {
    echo "module learnflow.local/argocdbuild"
    echo
    sed -n 's/^go \([0-9.]*\)$/go \1/p' "$gomod"
    echo
    echo "require $module v$ARGOCD_VERSION"
    echo
    sed -n '/^replace (/,/^)/p' "$gomod" | grep -v '=>[[:space:]]*\.'
  } >"$work/go.mod"
  echo "package argocdbuild" >"$work/doc.go"
  build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(field Info)" 2>/dev/null || true)
  ldflags="-s -w -X $module/common.version=$ARGOCD_VERSION -X $module/common.gitTreeState=clean"
  ldflags="$ldflags -X $module/common.buildDate=${build_date:-1970-01-01T00:00:00Z}"
  if ! (cd "$work" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -ldflags="$ldflags" -o "$work/argocd" "$module/cmd"); then
    die "go build $module/cmd@v$ARGOCD_VERSION with $ARGOCD_GO_TOOLCHAIN failed (wrapper module kept: $work/go.mod)"
  fi
  # The CRDs (Application, AppProject, ApplicationSet) and the config objects (argocd-cm, …) of
  # the same release, for the test API server; and the helper scripts its image puts beside the
  # binary (the repo-server runs git-verify-wrapper.sh for every revision it renders).
  rm -rf "$dir/crds" "$dir/config"
  mkdir -p "$dir/crds" "$dir/config"
  cp "$source_dir"/manifests/crds/*-crd.yaml "$dir/crds/"
  cp "$source_dir"/manifests/base/config/argocd-*.yaml "$dir/config/"
  chmod 644 "$dir"/crds/* "$dir"/config/*
  for script in $ARGOCD_SCRIPTS; do
    cp "$source_dir/hack/$script" "$dir/$script"
    chmod 755 "$dir/$script"
  done
  mv -f "$work/argocd" "$dir/argocd"
  for c in $ARGOCD_COMMANDS; do ln -sf argocd "$dir/$c"; done
  rm -rf "$work"
  record_build "$dir" $(($(date +%s) - started)) "$ARGOCD_GO_TOOLCHAIN"
  say "built Argo CD in $(($(date +%s) - started))s"
}

# --- Debian packages ----------------------------------------------------------------------------
apt_install() { # package
  [ "${LEARNFLOW_TOOLS_NO_APT:-0}" = 1 ] && die "$1 is not installed and LEARNFLOW_TOOLS_NO_APT=1: apt-get install $1"
  sh "$(dirname "$0")/apt-install.sh" "$1" || die "could not install $1 with apt-get"
}
version_pgbouncer() { "$(tool_path pgbouncer)" --version; }
have_pgbouncer() { reports pgbouncer "PgBouncer"; }
build_pgbouncer() { apt_install pgbouncer; }
version_redis() { "$(tool_path redis)" --version; }
have_redis() { reports redis "Redis server"; }
build_redis() { apt_install redis-server; }
version_busybox() { "$(tool_path busybox)" --help 2>&1 | head -n 1; }
have_busybox() { reports busybox "BusyBox"; }
build_busybox() { apt_install busybox; }

# --- checkov ------------------------------------------------------------------------------------
# Read from the package's metadata: `checkov --version` takes ten seconds to import everything.
version_checkov() { "$(tool_dir checkov)/venv/bin/python" -c 'import importlib.metadata as m; print("checkov", m.version("checkov"))'; }
have_checkov() { reports checkov "checkov $CHECKOV_VERSION"; }
build_checkov() {
  dir=$(tool_dir checkov)
  python=$(command -v python3 2>/dev/null) || die "python3 not found: checkov needs Python 3.9+ with venv"
  say "installing checkov $CHECKOV_VERSION from PyPI into a virtualenv in $dir/venv"
  started=$(date +%s)
  rm -rf "$dir/venv"
  "$python" -m venv "$dir/venv" || die "$python -m venv failed (on Debian: apt-get install python3-venv)"
  "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" ||
    die "pip install checkov==$CHECKOV_VERSION failed (see above)"
  record_build "$dir" $(($(date +%s) - started)) "$("$python" --version 2>&1)"
  say "installed checkov in $(($(date +%s) - started))s"
}

# --- main ---------------------------------------------------------------------------------------
tools=${*:-$ALL_TOOLS}
for tool in $tools; do
  case " $ALL_TOOLS " in
    *" $tool "*) ;;
    *) die "unknown tool '$tool' (known: $ALL_TOOLS)" ;;
  esac
done
for tool in $tools; do ensure "$(echo "$tool" | tr - _)"; done

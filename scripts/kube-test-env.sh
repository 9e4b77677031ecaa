#!/bin/sh
# Sets up the Kubernetes test tier (test/kube/): a real kube-apiserver + etcd on loopback, the
# way controller-runtime's envtest runs them (no kubelet, no containers, no controllers).
#
#   - etcd:                  Debian's etcd-server package (/usr/bin/etcd), installed if missing.
#   - kube-apiserver, kubectl: built from the Go modules of k8s.io/kubernetes at a pinned version
#                            (no prebuilt Kubernetes binaries can be downloaded here), into
#                            ${XDG_CACHE_HOME:-$HOME/.cache}/learnflow-postgres/kube/<version>/.
#
# Idempotent: does nothing but print the paths when everything is already there.
# test/support/kube.ts reads the version below, so keep the assignment on one line.
#
# Environment:
#   LEARNFLOW_KUBE_VERSION  Kubernetes version to build (default below).
#   LEARNFLOW_KUBE_BIN_DIR  where kube-apiserver and kubectl go (default: the cache path above).
#   LEARNFLOW_KUBE_NO_APT=1 never call apt-get (fail instead if etcd is missing).
set -eu

# Why 1.31.0: the newest 1.27–1.31 release whose k8s.io/kubernetes module *and* every k8s.io staging
# module at the matching v0.Y.Z can be fetched from the Go module proxy reachable here, and that builds
# with Go 1.26. (1.27.16 does not: k8s.io/mount-utils, pod-security-admission, … v0.27.16 are missing.)
# It serves every API our manifests use (batch/v1 podFailurePolicy, networking/v1, rbac/v1, PodSecurity).
KUBE_VERSION_DEFAULT=1.31.0
KUBE_VERSION=${LEARNFLOW_KUBE_VERSION:-$KUBE_VERSION_DEFAULT}
KUBE_VERSION=${KUBE_VERSION#v}
BIN_DIR=${LEARNFLOW_KUBE_BIN_DIR:-${XDG_CACHE_HOME:-${HOME:?is unset: set LEARNFLOW_KUBE_BIN_DIR or XDG_CACHE_HOME}/.cache}/learnflow-postgres/kube/$KUBE_VERSION}

say() { printf 'kube-test-env: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

case $KUBE_VERSION in
  1.[0-9]*.[0-9]*) ;;
  *) die "LEARNFLOW_KUBE_VERSION must look like 1.31.0, got '$KUBE_VERSION'" ;;
esac
MINOR_PATCH=${KUBE_VERSION#1.} # 31.0 -> staging modules are v0.31.0

# --- etcd ---------------------------------------------------------------------------------------
find_etcd() {
  if command -v etcd >/dev/null 2>&1; then command -v etcd
  elif [ -x /usr/bin/etcd ]; then echo /usr/bin/etcd
  else return 1
  fi
}

if ! ETCD=$(find_etcd); then
  [ "${LEARNFLOW_KUBE_NO_APT:-0}" = 1 ] && die "etcd not found and LEARNFLOW_KUBE_NO_APT=1; install etcd-server"
  sh "$(dirname "$0")/apt-install.sh" etcd-server || die "etcd not found and could not install etcd-server; install etcd (v3.4+) on PATH"
  ETCD=$(find_etcd) || die "etcd-server installed but no etcd binary found on PATH or at /usr/bin/etcd"
fi

# --- kube-apiserver + kubectl -------------------------------------------------------------------
have_binaries() {
  [ -x "$BIN_DIR/kube-apiserver" ] && [ -x "$BIN_DIR/kubectl" ] &&
    "$BIN_DIR/kube-apiserver" --version 2>/dev/null | grep -q "v$KUBE_VERSION\$"
}

if have_binaries; then
  say "kube-apiserver and kubectl v$KUBE_VERSION already built"
else
  command -v go >/dev/null 2>&1 || die "go not found: building kube-apiserver needs a Go toolchain (1.22+)"
  say "building kube-apiserver and kubectl v$KUBE_VERSION from Go modules into $BIN_DIR (takes a while on 2 cores)"
  started=$(date +%s)
  mkdir -p "$BIN_DIR"
  WORK="$BIN_DIR/.build"
  rm -rf "$WORK"
  mkdir -p "$WORK"

  # Never fetch a Go toolchain, and let `go build` fill go.sum for just what the two commands import.
  GOTOOLCHAIN=local
  GOFLAGS="${GOFLAGS:-} -mod=mod"
  export GOTOOLCHAIN GOFLAGS

  # k8s.io/kubernetes requires its staging repos (k8s.io/api, k8s.io/client-go, …) as v0.0.0 and
  # replaces them with ./staging/…, which only works inside its own repository. A tiny wrapper module
  # requires k8s.io/kubernetes and replaces each of them with the published v0.<minor>.<patch>.
  (cd "$WORK" && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION") >"$WORK/kubernetes.json" ||
    die "could not download k8s.io/kubernetes@v$KUBE_VERSION from the Go module proxy: $(cat "$WORK/kubernetes.json")"
  field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p" "$WORK/kubernetes.json" | head -n 1; }
  GOMOD=$(field GoMod)
  INFO=$(field Info)
  if [ -z "$GOMOD" ] || [ ! -f "$GOMOD" ]; then
    die "could not download k8s.io/kubernetes@v$KUBE_VERSION from the Go module proxy"
  fi
  STAGING=$(sed -n '/^replace (/,/^)/p' "$GOMOD" | sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*|\1|p')
  [ -n "$STAGING" ] || die "found no staging replace directives in $GOMOD"
  GO_DIRECTIVE=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$GOMOD")

  {
    echo "module learnflow.local/kubebuild"
    echo
    echo "go ${GO_DIRECTIVE:-1.22}"
    echo
    echo "require k8s.io/kubernetes v$KUBE_VERSION"
    echo
    echo "replace ("
    for m in $STAGING; do printf '\t%s => %s v0.%s\n' "$m" "$m" "$MINOR_PATCH"; done
    echo ")"
  } >"$WORK/go.mod"
  echo "package kubebuild" >"$WORK/doc.go"

  # What hack/lib/version.sh stamps into release builds; without it both report v0.0.0-master.
  BUILD_DATE=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$INFO" 2>/dev/null || true)
  LDFLAGS="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDFLAGS="$LDFLAGS -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=${MINOR_PATCH%%.*}"
    LDFLAGS="$LDFLAGS -X $pkg.gitCommit= -X $pkg.gitTreeState=archive -X $pkg.buildDate=${BUILD_DATE:-1970-01-01T00:00:00Z}"
  done

  build() {
    (cd "$WORK" && go build -trimpath -ldflags="$LDFLAGS" -o "$WORK/$1" "k8s.io/kubernetes/cmd/$1") ||
      die "go build k8s.io/kubernetes/cmd/$1@v$KUBE_VERSION failed (wrapper module: $WORK/go.mod)"
  }
  build kube-apiserver
  build kubectl
  mv -f "$WORK/kube-apiserver" "$WORK/kubectl" "$BIN_DIR/"
  rm -rf "$WORK"
  have_binaries || die "built binaries in $BIN_DIR do not report v$KUBE_VERSION"
  say "built in $(($(date +%s) - started))s"
fi

say "etcd:           $ETCD ($("$ETCD" --version 2>/dev/null | sed -n 's/^etcd Version: //p'))"
say "kube-apiserver: $BIN_DIR/kube-apiserver"
say "kubectl:        $BIN_DIR/kubectl"
# stdout: a line to eval, for tools that want the directory
echo "LEARNFLOW_KUBE_BIN_DIR=$BIN_DIR"

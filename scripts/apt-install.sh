#!/bin/sh
# Installs Debian packages for the test tiers (scripts/kube-test-env.sh, scripts/test-tools.sh):
# as root, or through sudo; when the install fails, runs `apt-get update` once and tries again.
# Where an init system runs, a package may start its service on its default port; tests never use
# it, they start their own on free ports.
#
# Usage: sh scripts/apt-install.sh PACKAGE...
set -eu
die() { printf 'apt-install: error: %s\n' "$*" >&2; exit 1; }

[ $# -gt 0 ] || die "usage: sh scripts/apt-install.sh PACKAGE..."
command -v apt-get >/dev/null 2>&1 || die "there is no apt-get here: install $* yourself"
sudo=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install $* yourself"
  sudo=sudo
fi
printf 'apt-install: installing %s with apt-get\n' "$*" >&2
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null 2>&1; then
  printf 'apt-install: apt-get install failed; running apt-get update and trying again\n' >&2
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null
fi

#!/bin/bash
# Install the Debian packages listed in the files given (one a line, "#" comments) without letting package
# scripts start services (no systemd here: sysv scripts would start a system libvirtd, mariadb...).
# Used by `make deps`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=$(grep -hv '^\s*#' "$@" | awk 'NF {print $1}')
created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# fastboot.cloud install: start no service\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created=1
fi
trap '[ $created = 0 ] || rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get -o DPkg::Lock::Timeout=600 install -y -qq $pkgs >/dev/null

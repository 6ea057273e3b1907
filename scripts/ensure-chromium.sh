#!/usr/bin/env bash
# Makes Debian's Chromium available at /usr/bin/chromium for the status
# page's browser test (npm run test:browser). Does nothing when it is there;
# otherwise installs the package, refreshing apt's lists first only when the
# package is unknown or the install fails on outdated lists.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Other installs may hold dpkg's lock for a while on a shared machine: wait for it.
APT=(-o DPkg::Lock::Timeout=600)
install() {
  $SUDO apt-get "${APT[@]}" install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
}
if ! apt-cache show chromium >/dev/null 2>&1 || ! install; then
  $SUDO apt-get "${APT[@]}" update -qq >&2
  install
fi
test -x /usr/bin/chromium

#!/usr/bin/env bash
# Makes Debian's headless-capable Chromium available at /usr/bin/chromium for
# the status page's browser test. Installs the package only when it is
# missing, refreshing apt's lists first only then (fast when present).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Other installs may hold dpkg's lock for a while on a shared machine: wait for it.
APT=(-o DPkg::Lock::Timeout=600)
if ! apt-cache show chromium >/dev/null 2>&1; then
  $SUDO apt-get "${APT[@]}" update -qq >&2
fi
$SUDO apt-get "${APT[@]}" install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
test -x /usr/bin/chromium

#!/bin/sh
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser test: does nothing
# when it is there, otherwise installs the `chromium` package (as root, or through sudo).
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n"
else
    echo "ensure-chromium.sh: /usr/bin/chromium is missing and cannot be installed:" \
        "not root and no password-less sudo. Install it with" \
        "'apt-get install --no-install-recommends chromium' and run again." >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium.sh: /usr/bin/chromium is missing and there is no apt-get" \
        "to install it with; install Chromium at /usr/bin/chromium." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# The package lists may be empty (a fresh container) or stale: try the install first,
# and update the lists once if it fails.
if ! $as_root apt-get install -y -q --no-install-recommends chromium; then
    $as_root apt-get update -q
    $as_root apt-get install -y -q --no-install-recommends chromium
fi
test -x /usr/bin/chromium || {
    echo "ensure-chromium.sh: installed chromium, but /usr/bin/chromium is still missing" >&2
    exit 1
}

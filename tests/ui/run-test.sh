#!/usr/bin/env bash
# tests/ui/run-test.sh DEST: ctest's ui_dashboard. Makes sure the pinned
# playwright-core is in DEST (tests/openapi/ensure-node.sh with this
# directory's package.json and lockfile; exit 77, skipped, when node cannot
# be had), then runs dashboard.mjs and exits with its status. Skipped (77)
# without a database to test against or without Debian's chromium
# (scripts/dev test installs it: TEST_PACKAGES).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
(($# == 1)) || {
    echo "usage: $0 DEST" >&2
    exit 100
}
if [[ -z ${WF_TEST_DATABASE_URL:-} ]]; then
    echo "ui_dashboard: WF_TEST_DATABASE_URL is not set: skipped (run through scripts/dev test)"
    exit 77
fi
if [[ ! -x /usr/bin/chromium ]]; then
    echo "ui_dashboard: no /usr/bin/chromium (apt-get install chromium): skipped"
    exit 77
fi
rc=0
"$HERE/../openapi/ensure-node.sh" "$1" "$HERE" >/dev/null || rc=$?
((rc == 0)) || exit "$rc"
exec node "$HERE/dashboard.mjs" --modules "$1"

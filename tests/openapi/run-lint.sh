#!/usr/bin/env bash
# tests/openapi/run-lint.sh DEST SPEC: ctest's openapi_lint. Makes sure the
# pinned tools are in DEST (ensure-node.sh: exit 77, skipped, when node
# cannot be had), then checks SPEC with lint.mjs and exits with its status.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
(($# == 2)) || {
    echo "usage: $0 DEST SPEC" >&2
    exit 100
}
rc=0
"$HERE/ensure-node.sh" "$1" >/dev/null || rc=$?
((rc == 0)) || exit "$rc"
exec node "$HERE/lint.mjs" --modules "$1" "$2"

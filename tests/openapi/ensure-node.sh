#!/usr/bin/env bash
# tests/openapi/ensure-node.sh DEST [PKGDIR]: makes DEST a directory whose
# node_modules holds exactly what PKGDIR/package-lock.json pins, and prints
# DEST. PKGDIR is tests/openapi by default (the OpenAPI checks: lint.mjs,
# validate-reply.mjs); tests/ui passes its own (the dashboard's browser
# test). Each PKGDIR needs a DEST of its own.
#
#   - node and npm missing: installed from Debian's packages (nodejs npm)
#     the way scripts/dev installs its packages (apt-get, as root or
#     through sudo); when that is impossible, exit 77 (ctest: skipped);
#   - DEST/node_modules missing or made from another lockfile: `npm ci`
#     into DEST (a copy of package.json and package-lock.json; the registry
#     is needed then, and only then); otherwise nothing is fetched;
#   - concurrent callers (tests run in parallel) wait for each other on
#     DEST/.lock, so one of them installs and the others reuse it.
# DEST lives in the build directory, never in the repository.
# Exit codes: 0 ready, 77 no node and no way to install it, 1 npm failed,
# 100 usage.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
(($# == 1 || $# == 2)) || {
    echo "usage: $0 DEST [PKGDIR]" >&2
    exit 100
}
DEST=$1
PKG=$(cd "${2:-$HERE}" && pwd -P)

say() { printf 'ensure-node: %s\n' "$*" >&2; }

as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if ! command -v apt-get >/dev/null; then
        say "node or npm missing and no apt-get to install them: skipping"
        exit 77
    fi
    say "node or npm missing: installing Debian's nodejs and npm"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends nodejs npm >&2; then
        # The package lists may be missing or stale: once more after an update.
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends nodejs npm >&2 || true
    fi
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        say "could not install nodejs and npm (not root, no sudo, or no package): skipping"
        exit 77
    fi
fi

mkdir -p "$DEST"
exec 9>"$DEST/.lock"
flock 9
if [[ -d $DEST/node_modules && -f $DEST/.installed ]] &&
    cmp -s "$PKG/package-lock.json" "$DEST/.installed" &&
    cmp -s "$PKG/package.json" "$DEST/package.json"; then
    printf '%s\n' "$DEST"
    exit 0
fi
say "installing the npm tools pinned in $PKG into $DEST (npm ci, node $(node --version))"
rm -f "$DEST/.installed"
cp "$PKG/package.json" "$PKG/package-lock.json" "$DEST/"
if ! (cd "$DEST" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
    say "npm ci failed in $DEST"
    exit 1
fi
cp "$PKG/package-lock.json" "$DEST/.installed"
printf '%s\n' "$DEST"

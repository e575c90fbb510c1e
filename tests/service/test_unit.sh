#!/bin/sh
# test_unit.sh UNIT SERVER_BIN: the systemd unit docs/wf-server.service is
# valid (systemd-analyze verify, which needs no running systemd) and keeps
# the settings the server and the docs rely on.
#
# verify checks that ExecStart's program exists, so it runs on a copy whose
# ExecStart is this build's wf-server. Any line verify prints counts as a
# failure (it reports some problems as warnings with status 0). Without
# systemd-analyze (a machine without the systemd package; scripts/dev test
# installs it) the test is skipped (77). The offline security score
# (systemd-analyze security --offline) is printed for the record.
set -eu

unit=$1
bin=$2

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "test_unit: systemd-analyze not found (Debian package systemd); skipped"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/wf-unit.XXXXXX")
trap 'rm -rf "$dir"' EXIT
copy=$dir/wf-server.service
sed "s|^ExecStart=/usr/local/bin/wf-server\$|ExecStart=$bin|" "$unit" >"$copy"
failed=0

if ! grep -qx "ExecStart=$bin" "$copy"; then
    echo "test_unit: FAILED: no line ExecStart=/usr/local/bin/wf-server in $unit"
    failed=1
fi

if out=$(systemd-analyze verify "$copy" 2>&1) && [ -z "$out" ]; then
    echo "test_unit: ok: systemd-analyze verify ($(systemd-analyze --version | head -n 1))"
else
    echo "test_unit: FAILED: systemd-analyze verify:"
    printf '%s\n' "$out"
    failed=1
fi

# The settings the server's behaviour and docs/operations.md rely on.
for line in Type=notify NotifyAccess=main KillMode=mixed Restart=on-failure \
    'RestartPreventExitStatus=100 113' EnvironmentFile=-/etc/wf-server/env \
    RuntimeDirectory=wf-server Environment=WF_RUNTIME_DIR=/run/wf-server \
    NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=yes \
    ProtectKernelTunables=yes ProtectControlGroups=yes RestrictSUIDSGID=yes \
    LockPersonality=yes; do
    if ! grep -qxF "$line" "$unit"; then
        echo "test_unit: FAILED: $unit has no line \"$line\""
        failed=1
    fi
done

if score=$(systemd-analyze security --offline=true "$copy" 2>/dev/null | tail -n 1); then
    echo "test_unit: $score"
fi
if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "test_unit: passed"

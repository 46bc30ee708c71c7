#!/bin/sh
# dracut initqueue job: run pxeroot-initiator once; exit 3 (no iSCSI root configured) is not an
# error; any other failure ends the boot in the emergency shell with the agent's FAILED line.
# shellcheck source=/dev/null
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh

log=/run/initramfs/pxeroot.log
mkdir -p /run/initramfs
umask 077
{ /sbin/pxeroot-initiator 2>&1; echo $? > /run/initramfs/pxeroot.rc; } | tee "$log" >&2
rc=$(cat /run/initramfs/pxeroot.rc 2>/dev/null || echo 1)
rm -f /run/initramfs/pxeroot.rc
case "$rc" in
0|3)
    rm -f "$log"
    exit 0
    ;;
esac
why=$(grep 'FAILED:' "$log" | tail -n 1)
die "pxeroot: no iSCSI root (pxeroot-initiator exit $rc): ${why:-see the lines above}"

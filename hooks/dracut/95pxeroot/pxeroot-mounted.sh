#!/bin/sh
# dracut pre-pivot hook: the root is mounted; record when (the same line as initramfs-tools'
# local-bottom script prints). /run/pxeroot (root-device, session.env; mode 0700) moves into
# the real root with /run.
if [ -e /run/pxeroot/root-device ]; then
    read -r up _ < /proc/uptime
    echo "pxeroot: root file system mounted at ${up} s, iSCSI disk $(cat /run/pxeroot/root-device)" >&2
fi

#!/bin/bash
# shellcheck disable=SC2154 # moddir and dracutsysrootdir come from dracut
# dracut module: log in to the iSCSI root with pxeroot-initiator instead of iscsid/iscsiadm.
#
# The cmdline hook queues one login job in the initqueue; the job runs the agent, which reads
# the boot parameters itself (Debian's iscsi_*, root=iscsi:, netroot=iscsi:, netroot=dhcp,
# rd.iscsi.*, BOOTIF, ip=, DHCP options 17, 203 and 175), brings up the NIC, logs in and waits
# for the LUN's block device. The root itself is named the usual way (root=UUID=, LABEL=,
# /dev/mapper/... with rd.lvm.lv=), and dracut's root search finds it on the LUN.
# dracut's own iscsi and network modules are not needed: add them only for other disks.

check() {
    require_binaries /usr/sbin/pxeroot-initiator || return 1
    # Included whenever it is installed (or --add pxeroot); without an iSCSI root on the
    # command line or from DHCP, the agent exits 3 at once and nothing happens.
    return 0
}

depends() {
    echo udev-rules
    return 0
}

installkernel() {
    instmods iscsi_tcp libiscsi_tcp libiscsi scsi_transport_iscsi sd_mod crc32c
    # Every NIC driver: the boot NIC must come up before the root exists.
    hostonly='' instmods "=drivers/net/ethernet" virtio_net virtio_pci
}

install() {
    inst_simple /usr/sbin/pxeroot-initiator /sbin/pxeroot-initiator
    inst_script "$moddir/pxeroot-login.sh" /sbin/pxeroot-login
    inst_hook cmdline 90 "$moddir/parse-pxeroot.sh"
    inst_hook pre-pivot 90 "$moddir/pxeroot-mounted.sh"
    inst_multiple tee grep tail cat
    if [ -r "$dracutsysrootdir/etc/iscsi/initiatorname.iscsi" ]; then
        inst_simple "$dracutsysrootdir/etc/iscsi/initiatorname.iscsi" /etc/initiatorname.iscsi
    fi
    local f
    for f in /etc/iscsi/iscsi.initramfs /etc/iscsi.initramfs; do
        if [ -r "$dracutsysrootdir$f" ]; then
            inst_simple "$dracutsysrootdir$f" /etc/iscsi.initramfs
            break
        fi
    done
    dracut_need_initqueue
}

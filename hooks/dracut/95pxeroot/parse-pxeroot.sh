#!/bin/sh
# dracut cmdline hook: queue the iSCSI login (pxeroot-initiator decides whether there is one).
/sbin/initqueue --onetime --unique --name pxeroot /sbin/pxeroot-login

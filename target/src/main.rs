//! pxeroot-target: iSCSI target, DHCP and TFTP server (see DEVELOPERS.md and issues 3 and 5).

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("pxeroot-target: the server is not built yet (issue 3)");
    ExitCode::from(70)
}

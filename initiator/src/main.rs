//! pxeroot-initiator: the initramfs agent (see DEVELOPERS.md and issue 4).

mod kernel;

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("pxeroot-initiator: the agent is not built yet (issue 4)");
    ExitCode::from(kernel::EXIT_NOT_BUILT)
}

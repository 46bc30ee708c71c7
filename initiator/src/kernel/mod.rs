//! The kernel interface (NETLINK_ISCSI, sysfs, module loading): the only place in the workspace
//! where `unsafe` is allowed. Every unsafe block carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

/// Exit code while the agent is not built.
pub const EXIT_NOT_BUILT: u8 = 70;

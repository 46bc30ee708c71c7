//! rtnetlink requests, run to completion one at a time on a private current-thread tokio
//! runtime: the agent is synchronous, and rtnetlink needs an executor only to drive its
//! connection task, which runs while [`Rtnl`] blocks on a request.
//!
//! Addresses and routes are added with `NLM_F_REPLACE`, so that running twice (a retry, or an
//! address the firmware already set) does not fail with EEXIST; nothing else on the interface
//! is flushed.

use std::net::Ipv4Addr;

use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};
use tokio::runtime::Runtime;

/// An rtnetlink connection with its runtime.
#[derive(Debug)]
pub struct Rtnl {
    rt: Runtime,
    handle: Handle,
}

/// A failed request: what was asked and the kernel's answer.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {detail}")]
pub struct RtnlError {
    /// The request (`set link up`, `add address 10.0.0.5/24`, ...).
    pub op: String,
    /// The error.
    pub detail: String,
}

impl Rtnl {
    /// Opens the netlink socket.
    ///
    /// # Errors
    /// [`RtnlError`] if the runtime or the socket cannot be created.
    pub fn new() -> Result<Self, RtnlError> {
        let fail = |op: &str, e: &dyn std::fmt::Display| RtnlError {
            op: op.into(),
            detail: e.to_string(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| fail("start the netlink runtime", &e))?;
        let handle = {
            let _guard = rt.enter();
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(|e| fail("open the rtnetlink socket", &e))?;
            rt.spawn(connection);
            handle
        };
        Ok(Rtnl { rt, handle })
    }

    fn run<F>(&self, op: impl FnOnce() -> String, fut: F) -> Result<(), RtnlError>
    where
        F: std::future::Future<Output = Result<(), rtnetlink::Error>>,
    {
        self.rt.block_on(fut).map_err(|e| RtnlError {
            op: op(),
            detail: e.to_string(),
        })
    }

    /// Sets the link administratively up.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer.
    pub fn set_up(&self, ifindex: u32) -> Result<(), RtnlError> {
        let msg = LinkUnspec::new_with_index(ifindex).up().build();
        let req = self.handle.link().set(msg).execute();
        self.run(|| "set link up".into(), req)
    }

    /// Sets the MTU.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer (EINVAL beyond the driver's range).
    pub fn set_mtu(&self, ifindex: u32, mtu: u16) -> Result<(), RtnlError> {
        let msg = LinkUnspec::new_with_index(ifindex)
            .mtu(u32::from(mtu))
            .build();
        let req = self.handle.link().set(msg).execute();
        self.run(|| format!("set MTU {mtu}"), req)
    }

    /// Adds `address/prefix_len` with its broadcast address.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer.
    pub fn add_address(
        &self,
        ifindex: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), RtnlError> {
        let req = self
            .handle
            .address()
            .add(ifindex, address.into(), prefix_len)
            .replace()
            .execute();
        self.run(|| format!("add address {address}/{prefix_len}"), req)
    }

    /// Adds the default route via `gateway` out of `ifindex`.
    ///
    /// # Errors
    /// [`RtnlError`] with the kernel's answer (ENETUNREACH if the gateway is off-link).
    pub fn add_default_route(&self, ifindex: u32, gateway: Ipv4Addr) -> Result<(), RtnlError> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .output_interface(ifindex)
            .gateway(gateway)
            .build();
        let req = self.handle.route().add(route).replace().execute();
        self.run(|| format!("add default route via {gateway}"), req)
    }
}

//! systemd readiness notification (`Type=notify`): one datagram to
//! `$NOTIFY_SOCKET`. Written by hand because it is ten lines: a crate would
//! bring more than it saves.

/// Tell systemd the service is ready (no-op outside systemd).
pub fn ready() {
    send("READY=1\nSTATUS=mirroring");
}

/// Tell systemd the service is stopping.
pub fn stopping() {
    send("STOPPING=1");
}

#[cfg(target_os = "linux")]
fn send(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let result = addr.and_then(|addr| {
        let sock = UnixDatagram::unbound()?;
        sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, socket = %path, "could not notify systemd");
    }
}

#[cfg(not(target_os = "linux"))]
fn send(_state: &str) {}

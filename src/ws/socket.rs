//! A way to end a WebSocket connection from outside its session. The session runs inside the
//! connection's response body, which the server polls only while the socket takes data: when
//! a client stops reading, its session stops running, timers and all, and nothing inside it
//! can close the connection. The broadcaster, which sees the session's outbox wait, shuts the
//! socket down through this handle instead; the server then finds the connection broken and
//! drops it, session included.
//!
//! The handle is a duplicate of the connection's descriptor, taken at the upgrade (the server
//! records each connection's descriptor as it accepts it, see [`ConnectionFd`]). A duplicate
//! keeps the socket itself alive until the handle is dropped, so the descriptor number can
//! never name another connection by the time it is used.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The descriptor of an accepted connection, as the server records it in the connection's
/// data (`HttpServer::on_connect`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionFd(pub RawFd);

/// See the module documentation.
#[derive(Debug)]
pub struct SocketHandle(OwnedFd);

impl SocketHandle {
    /// A handle on the connection `fd` names; to be taken while the connection is certainly
    /// open (during its request).
    pub fn duplicate(fd: ConnectionFd) -> std::io::Result<SocketHandle> {
        // SAFETY: `fd` is the open descriptor of the connection whose request is being
        // handled; `dup` returns a new descriptor we own (or -1).
        let copy = unsafe { libc::fcntl(fd.0, libc::F_DUPFD_CLOEXEC, 0) };
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `copy` is a fresh descriptor nothing else owns.
        Ok(SocketHandle(unsafe { OwnedFd::from_raw_fd(copy) }))
    }

    /// Caps the kernel's send buffer of the connection at `bytes` (the kernel doubles it for
    /// its bookkeeping): what a client that stops reading can leave queued in the kernel, and
    /// how soon its session sees the stall. 0 leaves the kernel's own sizing.
    pub fn limit_send_buffer(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: setsockopt on a descriptor we own, with a pointer to a live c_int and its size.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    /// Shuts the connection down both ways: the client's and the server's next reads and
    /// writes fail, and the server drops the connection.
    pub fn shut_down(&self) {
        // SAFETY: shutdown on a descriptor we own; it does not close the descriptor.
        unsafe {
            libc::shutdown(self.0.as_raw_fd(), libc::SHUT_RDWR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn shutting_down_the_handle_ends_the_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        let handle = SocketHandle::duplicate(ConnectionFd(server.as_raw_fd())).unwrap();
        handle.shut_down();
        let mut buf = [0u8; 8];
        match client.read(&mut buf) {
            Ok(n) => assert_eq!(n, 0, "the client sees the end"),
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the connection stayed open: {e}"
            ),
        }
        drop((handle, server));
    }
}

//! Socket options for tests that need the kernel to buffer little.

/// Sets SO_SNDBUF on the server's listening socket; accepted sockets
/// inherit it (as they would a small `net.ipv4.tcp_wmem`).
pub fn set_listener_send_buffer(addr: std::net::SocketAddr, size: usize) {
    use std::os::fd::BorrowedFd;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Some(fd) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only queried and given a socket option,
        // never closed; a descriptor closed meanwhile gives EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let ours = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a == addr)
            && sock.is_listener().unwrap_or(false);
        if ours {
            sock.set_send_buffer_size(size).unwrap();
            return;
        }
    }
    panic!("listening socket for {addr} not found");
}

//! Free loopback ports, chosen by the kernel (bind to port 0, read the port, let it go).

use std::net::TcpListener;

/// A port free on 127.0.0.1 at the time of the call.
///
/// Another process may take it before the caller binds it: [`ServerBuilder`](crate::ServerBuilder)
/// retries with a new port when redis-server says the address is in use.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A free port below 55000 whose cluster bus port (the port + 10000) is free too.
pub fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

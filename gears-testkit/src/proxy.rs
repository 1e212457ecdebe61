//! A TCP proxy on 127.0.0.1 in front of a database that can lose a `COMMIT`'s reply: once
//! [armed](CommitLossProxy::arm), the next client message containing `COMMIT` is forwarded to
//! the server, the server's reply is swallowed, and both connections are closed a moment later
//! (the server committed; the client cannot know). New connections then wait until the test
//! [releases](CommitLossProxy::release) them, so it can change the database in between.
//!
//! [`arm_hold`](CommitLossProxy::arm_hold) loses the connection *before* the `COMMIT` reaches
//! the server: the client sees its connection go, while the server keeps the transaction open
//! (its locks held) until the test [forwards](CommitLossProxy::forward_held) the `COMMIT` — a
//! hung connection whose transaction commits late.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the server gets to apply a forwarded `COMMIT` before the connections close.
const COMMIT_GRACE: Duration = Duration::from_millis(300);

#[derive(Default)]
struct State {
    armed: AtomicBool,
    hold: AtomicBool,
    /// The held `COMMIT` and the server connection it is for.
    held: Mutex<Option<(Vec<u8>, TcpStream)>>,
    stop: AtomicBool,
    /// `(dropped, held)`: a commit's reply was lost; new connections wait.
    phase: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl State {
    fn phase(&self) -> std::sync::MutexGuard<'_, (bool, bool)> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The proxy; it stops accepting when dropped.
pub struct CommitLossProxy {
    /// The port clients connect to.
    pub port: u16,
    state: Arc<State>,
}

impl CommitLossProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target`.
    pub fn start(target: u16) -> CommitLossProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || accept_loop(&listener, target, &shared));
        CommitLossProxy { port, state }
    }

    /// Loses the reply of the next `COMMIT` a client sends.
    pub fn arm(&self) {
        self.state.armed.store(true, Ordering::SeqCst);
    }

    /// Holds the next `COMMIT` a client sends (not forwarded; the client's connection closed).
    pub fn arm_hold(&self) {
        self.state.hold.store(true, Ordering::SeqCst);
        self.arm();
    }

    /// Sends the held `COMMIT` to the server; `false` if none is held.
    pub fn forward_held(&self) -> bool {
        let held = self
            .state
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some((commit, mut server)) = held else {
            return false;
        };
        let sent = server.write_all(&commit).is_ok();
        std::thread::sleep(COMMIT_GRACE);
        let _ = server.shutdown(Shutdown::Both);
        sent
    }

    /// Waits until a `COMMIT`'s reply was lost (and the connection closed); `false` on timeout.
    pub fn wait_lost(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut phase = self.state.phase();
        while !phase.0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            phase = self
                .state
                .changed
                .wait_timeout(phase, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Lets the connections that wait since the loss through.
    pub fn release(&self) {
        self.state.phase().1 = false;
        self.state.changed.notify_all();
    }
}

impl Drop for CommitLossProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.release();
        // Wakes the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn accept_loop(listener: &TcpListener, target: u16, state: &Arc<State>) {
    for client in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        {
            let mut phase = state.phase();
            while phase.1 && !state.stop.load(Ordering::SeqCst) {
                phase = state.changed.wait(phase).unwrap_or_else(|p| p.into_inner());
            }
        }
        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
            continue;
        };
        let _ = (client.set_nodelay(true), server.set_nodelay(true));
        let swallow = Arc::new(AtomicBool::new(false));
        let (c2, s2) = match (client.try_clone(), server.try_clone()) {
            (Ok(c), Ok(s)) => (c, s),
            _ => continue,
        };
        let (up_state, up_swallow) = (state.clone(), swallow.clone());
        std::thread::spawn(move || upstream(client, server, &up_state, &up_swallow));
        std::thread::spawn(move || downstream(s2, c2, &swallow));
    }
}

/// Client to server; loses the reply of an armed `COMMIT`.
fn upstream(mut client: TcpStream, mut server: TcpStream, state: &State, swallow: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let commit = chunk.windows(6).any(|w| w.eq_ignore_ascii_case(b"COMMIT"));
        if commit && state.armed.swap(false, Ordering::SeqCst) {
            swallow.store(true, Ordering::SeqCst);
            if state.hold.swap(false, Ordering::SeqCst) {
                // The server keeps the transaction open until the test forwards the COMMIT.
                if let Ok(keep) = server.try_clone() {
                    *state.held.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((chunk.to_vec(), keep));
                }
                let _ = client.shutdown(Shutdown::Both);
                *state.phase() = (true, true);
                state.changed.notify_all();
                return;
            }
            let _ = server.write_all(chunk);
            std::thread::sleep(COMMIT_GRACE);
            *state.phase() = (true, true);
            state.changed.notify_all();
            break;
        }
        if server.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

/// Server to client, unless the connection's replies are being swallowed.
fn downstream(mut server: TcpStream, mut client: TcpStream, swallow: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if swallow.load(Ordering::SeqCst) {
            continue;
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
}

//! A loopback HTTP/1.1 server for tests that download (for example `rampart geo update`):
//! fixed bodies per path, 404 for the rest, and paths that accept a request and never
//! answer (to test client timeouts). It runs on its own thread in the calling process (and
//! network namespace) and stops when dropped, or by itself after its lifetime.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a path answers: a body, or nothing at all (the connection is held unanswered).
type Routes = Arc<Mutex<HashMap<String, Option<Vec<u8>>>>>;

/// The server. See the module documentation.
#[derive(Debug)]
pub struct LoopbackHttp {
    base: String,
    routes: Routes,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackHttp {
    /// Starts a server on 127.0.0.1 (a free port) that stops by itself after `lifetime`.
    pub fn start(lifetime: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        let routes: Routes = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (routes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::SeqCst) && t0.elapsed() < lifetime {
                match listener.accept() {
                    Ok((conn, _)) => answer(conn, &r),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self {
            base,
            routes,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, to which paths are appended.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Answers `path` (starting with `/`) with `body`.
    pub fn serve(&self, path: &str, body: Vec<u8>) {
        lock(&self.routes).insert(path.to_owned(), Some(body));
    }

    /// Accepts requests for `path` and never answers them.
    pub fn stall(&self, path: &str) {
        lock(&self.routes).insert(path.to_owned(), None);
    }

    /// Makes `path` answer 404 again.
    pub fn remove(&self, path: &str) {
        lock(&self.routes).remove(path);
    }
}

impl Drop for LoopbackHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(routes: &Routes) -> MutexGuard<'_, HashMap<String, Option<Vec<u8>>>> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads one request's head and answers it (errors end the connection: a test client
/// sees them as its own failure).
fn answer(mut conn: TcpStream, routes: &Routes) {
    if conn.set_nonblocking(false).is_err()
        || conn.set_read_timeout(Some(Duration::from_secs(5))).is_err()
    {
        return;
    }
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 65536 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&req);
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let body = lock(routes).get(&path).cloned();
    match body {
        Some(Some(b)) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            let _ = conn.write_all(&b);
        }
        // Stall: hold the connection without answering until the client gives up.
        Some(None) => {
            let _ = conn.read(&mut buf);
        }
        None => {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
}

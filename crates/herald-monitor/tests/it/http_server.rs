//! A git server over git's dumb HTTP protocol on 127.0.0.1: the files of bare repositories
//! (after `git update-server-info`) served from a directory, optionally behind basic auth, with
//! `/redirect/<path>` answering a redirect to `/<path>`. It records every request path, and
//! whether a secret showed in any process's command line while a request was served.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use base64::Engine as _;

pub struct GitHttpServer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    root: PathBuf,
    /// `user:password` that requests must carry.
    basic: Option<String>,
    requests: Mutex<Vec<String>>,
    secret_in_cmdline: AtomicBool,
}

impl GitHttpServer {
    /// Serves the directory `root`.
    pub fn start(root: &Path, basic: Option<&str>) -> GitHttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            root: root.to_owned(),
            basic: basic.map(str::to_owned),
            requests: Mutex::new(Vec::new()),
            secret_in_cmdline: AtomicBool::new(false),
        });
        let serving = Arc::clone(&state);
        // The thread ends with the test process; each connection is one request.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&serving);
                thread::spawn(move || serve(&state, stream));
            }
        });
        GitHttpServer { addr, state }
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Whether the password showed in a process's arguments during a request.
    pub fn secret_seen_in_cmdline(&self) -> bool {
        self.state.secret_in_cmdline.load(Ordering::SeqCst)
    }
}

/// Makes `root/<name>` a bare copy of `source`, servable over dumb HTTP.
pub fn publish(source: &Path, root: &Path, name: &str) {
    let target = root.join(name);
    for args in [
        vec![
            "clone",
            "--quiet",
            "--bare",
            source.to_str().unwrap(),
            target.to_str().unwrap(),
        ],
        vec!["-C", target.to_str().unwrap(), "update-server-info"],
    ] {
        let status = std::process::Command::new("git")
            .args(&args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
}

fn serve(state: &State, mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut authorization = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    let path = target.split('?').next().unwrap_or("/").to_owned();
    state.requests.lock().unwrap().push(path.clone());
    if let Some(basic) = &state.basic {
        let password = basic.split_once(':').map_or("", |(_, p)| p);
        if any_cmdline_contains(password) {
            state.secret_in_cmdline.store(true, Ordering::SeqCst);
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(basic)
        );
        if authorization.as_deref() != Some(expected.as_str()) {
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    }
    if let Some(rest) = target.strip_prefix("/redirect/") {
        let _ = write!(
            stream,
            "HTTP/1.1 302 Found\r\nLocation: /{rest}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    let file = state.root.join(path.trim_start_matches('/'));
    match std::fs::read(&file) {
        Ok(body) if !path.contains("..") => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
        _ => {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
}

/// Whether any process's arguments contain `secret` (git and its helpers run while a request
/// is being served).
fn any_cmdline_contains(secret: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(secret))
    })
}

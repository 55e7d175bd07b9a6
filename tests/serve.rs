//! `lab serve` over a real results root: the pages and the JSON API answer, a run that finishes
//! while the server runs shows up without a restart, bad requests get 4xx and never read outside
//! the root, a 1,000-run folder is listed, and 50 concurrent clients lose no request.

mod common;

use common::{lab, lab_bin, text};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A running `lab serve` and its address; killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(root: &Path) -> Server {
    let mut child = Command::new(lab_bin())
        .args(["serve", root.to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

/// GET `path`: (status, content type, body).
fn get(addr: &str, path: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or_default()
        .to_string();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, ctype, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

fn json(addr: &str, path: &str) -> serde_json::Value {
    let (status, ctype, body) = get(addr, path);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/json", "{path}");
    serde_json::from_slice(&body).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn the_browser_api_follows_a_sweep_and_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/smoke.yaml");
    let out = lab(
        dir.path(),
        &[
            "sweep",
            smoke.to_str().unwrap(),
            "--results",
            "res",
            "--bootstrap",
            "20",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let root = dir.path().join("res");
    let runs_dir = root.join("smoke/runs");
    let ids: Vec<String> = std::fs::read_dir(&runs_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // A 1,000-run folder (no plan.json: every folder under runs/ is a run), from the smoke runs.
    for i in 0..1000 {
        let src = runs_dir.join(&ids[i % ids.len()]);
        copy_dir(&src, &root.join(format!("big/runs/r{i:04}")));
    }
    // One smoke run has not finished yet: its status is away.
    let late = runs_dir.join(&ids[0]).join("status.json");
    let parked = dir.path().join("status.json");
    std::fs::rename(&late, &parked).unwrap();

    let started = Instant::now();
    let server = start(&root);
    eprintln!(
        "lab serve answered its address after {:?}",
        started.elapsed()
    );
    let a = &server.addr;

    let (status, ctype, page) = get(a, "/");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"));
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("<script>") && !page.contains("src=\"http"),
        "the page is self-contained"
    );

    let sweeps = json(a, "/api/sweeps");
    let names: Vec<&str> = sweeps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["big", "smoke"]);
    let smoke_sweep = &sweeps[1];
    assert_eq!(smoke_sweep["runs"], 6);
    assert_eq!(smoke_sweep["done"], 5);
    assert_eq!(smoke_sweep["pending"], 1);
    // Runs left and no `lab sweep` holding the folder: stopped (rerun to resume).
    assert_eq!(smoke_sweep["state"], "stopped");
    assert_eq!(sweeps[0]["runs"], 1000);

    let t = Instant::now();
    let big = json(a, "/api/runs?sweep=big");
    eprintln!("1,000-run table answered in {:?}", t.elapsed());
    assert_eq!(big.as_array().unwrap().len(), 1000);

    // Curves: one series per run asked for, as long as its curve.parquet.
    let done: Vec<&String> = ids[1..].iter().collect();
    let ask = done
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let curves = json(a, &format!("/api/curves?sweep=smoke&ids={ask},nosuchrun"));
    assert_eq!(curves.as_array().unwrap().len(), done.len());
    for c in curves.as_array().unwrap() {
        assert!(c["val_loss"].as_array().unwrap().len() >= 5, "{c}");
        assert_eq!(
            c["val_loss"].as_array().unwrap().len(),
            c["tokens"].as_array().unwrap().len()
        );
    }

    // While a sweep holds the folder's lock the sweep is running.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("smoke/.lock"))
        .unwrap();
    fs2::FileExt::try_lock_exclusive(&lock).unwrap();
    assert_eq!(json(a, "/api/sweeps")[1]["state"], "running");
    fs2::FileExt::unlock(&lock).unwrap();
    drop(lock);

    // The run finishes while the server runs: the next answer has it, no restart.
    std::fs::rename(&parked, &late).unwrap();
    let after = json(a, "/api/sweeps");
    assert_eq!(after[1]["done"], 6);
    assert_eq!(after[1]["state"], "done");

    // Fits and figures.
    let (status, _, fit) = get(a, "/api/fit?sweep=smoke");
    assert_eq!(status, 200);
    assert!(String::from_utf8(fit).unwrap().contains("<table>"));
    let figures = json(a, "/api/figures?sweep=smoke");
    let first = figures[0].as_str().unwrap();
    let (status, ctype, png) = get(a, &format!("/figure?sweep=smoke&name={first}"));
    assert_eq!(status, 200);
    assert!(ctype.starts_with("image/"));
    assert_eq!(
        png,
        std::fs::read(root.join("smoke/plots").join(first)).unwrap()
    );

    // Bad requests: 4xx, and nothing outside the root.
    for bad in [
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/runs?sweep=../res",
        "/api/runs?sweep=nosuch",
        "/figure?sweep=smoke&name=../runs.parquet",
        "/figure?sweep=smoke&name=%2e%2e%2fruns.parquet",
        "/api/fit?sweep=big",
        "/nosuchpage",
    ] {
        let (status, _, _) = get(a, bad);
        assert!((400..500).contains(&status), "{bad}: {status}");
    }
    let (status, _, _) = get(a, &format!("/api/runs?sweep={}", "x".repeat(5000)));
    assert_eq!(status, 414);
    let many = vec!["id"; 201].join(",");
    let (status, _, _) = get(a, &format!("/api/curves?sweep=smoke&ids={many}"));
    assert_eq!(status, 400);

    // 50 clients at once, 10 requests each: every one answered.
    let addr = a.clone();
    let workers: Vec<_> = (0..50)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                (0..10)
                    .filter(|_| get(&addr, "/api/sweeps").0 == 200)
                    .count()
            })
        })
        .collect();
    let answered: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(answered, 500);
}

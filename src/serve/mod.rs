//! `lab serve`: a local web app over the results folders under a root. One page (embedded in the
//! binary, no CDN, no JavaScript library) that polls a small JSON API, so it follows a sweep while
//! it writes without reloading. Only GET; every path is matched against fixed routes and every
//! name against directory listings, so nothing outside the root can be read.

pub mod data;

use crate::error::{LabError, LabResult};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tiny_http::{Header, Method, Request, Response, Server};

/// The page: markup, style and script in one file.
const PAGE: &str = include_str!("page.html");

/// The longest URL accepted (path and query).
pub const MAX_URL: usize = 4096;

/// Most runs one curves request may name.
pub const MAX_CURVES: usize = 200;

/// A response: status, content type, body.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn json<T: Serialize>(v: &T) -> Reply {
        match serde_json::to_vec(v) {
            Ok(body) => Reply {
                status: 200,
                content_type: "application/json",
                body,
            },
            Err(e) => Reply::error(500, &e.to_string()),
        }
    }

    fn error(status: u16, message: &str) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: message.as_bytes().to_vec(),
        }
    }
}

/// Splits `url` into its path and decoded query pairs; `None` when a %-escape is malformed.
fn parse_url(url: &str) -> Option<(String, Vec<(String, String)>)> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let pairs = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((decode(path)?, pairs))
}

/// Percent-decoding (and `+` as space) of a URL component.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Answers one GET for `url` over the results `root`.
pub fn answer(root: &Path, url: &str) -> Reply {
    if url.len() > MAX_URL {
        return Reply::error(414, "URL too long");
    }
    let Some((path, query)) = parse_url(url) else {
        return Reply::error(400, "malformed URL");
    };
    let param = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let sweep = || param("sweep").and_then(|n| data::find_sweep(root, n));
    let result = match path.as_str() {
        "/" | "/index.html" => Ok(Reply {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: PAGE.as_bytes().to_vec(),
        }),
        "/api/sweeps" => data::sweep_dirs(root)
            .iter()
            .map(|(name, dir)| data::summary(name, dir))
            .collect::<LabResult<Vec<_>>>()
            .map(|v| Reply::json(&v)),
        "/api/runs" => match sweep() {
            Some(dir) => data::runs(&dir).map(|v| Reply::json(&v)),
            None => Ok(Reply::error(404, "no such sweep")),
        },
        "/api/curves" => match sweep() {
            Some(dir) => {
                let ids: Vec<&str> = param("ids")
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .collect();
                if ids.len() > MAX_CURVES {
                    Ok(Reply::error(400, "too many runs in one request"))
                } else {
                    data::curves(&dir, &ids).map(|v| Reply::json(&v))
                }
            }
            None => Ok(Reply::error(404, "no such sweep")),
        },
        "/api/fit" => match sweep() {
            Some(dir) => Ok(match data::fit_html(&dir) {
                Some(html) => Reply {
                    status: 200,
                    content_type: "text/html; charset=utf-8",
                    body: html.into_bytes(),
                },
                None => Reply::error(404, "not fitted yet"),
            }),
            None => Ok(Reply::error(404, "no such sweep")),
        },
        "/api/figures" => match sweep() {
            Some(dir) => Ok(Reply::json(&data::figures(&dir))),
            None => Ok(Reply::error(404, "no such sweep")),
        },
        "/figure" => Ok(figure(sweep(), param("name"))),
        _ => Ok(Reply::error(404, "not found")),
    };
    result.unwrap_or_else(|e| Reply::error(500, &e.to_string()))
}

/// A figure file of a sweep, by a name its plots/ listing holds.
fn figure(dir: Option<PathBuf>, name: Option<&str>) -> Reply {
    let (Some(dir), Some(name)) = (dir, name) else {
        return Reply::error(404, "no such figure");
    };
    let Some(file) = data::figures(&dir).into_iter().find(|f| f == name) else {
        return Reply::error(404, "no such figure");
    };
    match std::fs::read(dir.join("plots").join(&file)) {
        Ok(body) => Reply {
            status: 200,
            content_type: if file.ends_with(".svg") {
                "image/svg+xml"
            } else {
                "image/png"
            },
            body,
        },
        Err(_) => Reply::error(404, "no such figure"),
    }
}

fn respond(root: &Path, req: Request) {
    let reply = if *req.method() == Method::Get {
        answer(root, req.url())
    } else {
        Reply::error(405, "only GET")
    };
    let header = Header::from_bytes(&b"Content-Type"[..], reply.content_type.as_bytes())
        .expect("ASCII header");
    let cache = Header::from_bytes(&b"Cache-Control"[..], &b"no-store"[..]).expect("ASCII header");
    let response = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_header(header)
        .with_header(cache);
    // A client that went away is not an error of the server.
    let _ = req.respond(response);
}

/// Serves `root` on `bind:port` with `threads` workers until `stop` is set; prints the address it
/// listens on (port 0 picks a free one) as its first line of output.
pub fn serve(
    root: &Path,
    bind: &str,
    port: u16,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> LabResult<()> {
    if !root.is_dir() {
        return Err(LabError::input(root, None, "not a folder of results"));
    }
    let server = Server::http((bind, port)).map_err(|e| {
        LabError::input(
            "--port",
            None,
            format!("cannot listen on {bind}:{port}: {e}"),
        )
    })?;
    let addr = server
        .server_addr()
        .to_ip()
        .map(|a| a.to_string())
        .unwrap_or_else(|| format!("{bind}:{port}"));
    println!("lab serve: http://{addr}/ over {}", root.display());
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let server = Arc::new(server);
    let root = Arc::new(root.to_path_buf());
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (server, root, stop) = (server.clone(), root.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match server.recv_timeout(std::time::Duration::from_millis(200)) {
                        Ok(Some(req)) => respond(&root, req),
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_decode_and_bad_ones_are_refused() {
        let (p, q) = parse_url("/api/runs?sweep=a%20b&ids=x,y").unwrap();
        assert_eq!(p, "/api/runs");
        assert_eq!(
            q,
            vec![("sweep".into(), "a b".into()), ("ids".into(), "x,y".into())]
        );
        assert!(parse_url("/a?x=%zz").is_none());
        assert!(parse_url("/a?x=%e2%28").is_none());
        let root = tempfile::tempdir().unwrap();
        assert_eq!(answer(root.path(), "/nothing").status, 404);
        assert_eq!(answer(root.path(), "/api/runs?sweep=..").status, 404);
        assert_eq!(answer(root.path(), "/%2e%2e/%2e%2e/etc/passwd").status, 404);
        assert_eq!(
            answer(root.path(), "/figure?sweep=x&name=../../etc/passwd").status,
            404
        );
        assert_eq!(
            answer(root.path(), &format!("/?q={}", "a".repeat(MAX_URL))).status,
            414
        );
        assert_eq!(answer(root.path(), "/a?x=%zz").status, 400);
        let home = answer(root.path(), "/");
        assert_eq!(home.status, 200);
        assert!(String::from_utf8(home.body).unwrap().contains("<title>lab"));
        assert_eq!(answer(root.path(), "/api/sweeps").body, b"[]");
    }
}

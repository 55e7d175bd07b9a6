//! `report.html`: report.md rendered as one self-contained page (tables styled, every figure it
//! links embedded as a data URI), to open offline or send to a colleague as a single file.

use crate::error::{LabError, LabResult};
use crate::results::write_atomic;
use base64::Engine as _;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};
use std::path::{Path, PathBuf};

/// The page's style: readable widths, tables with rules, figures scaled to the column.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
padding:0 1rem;line-height:1.45;color:#222}table{border-collapse:collapse;margin:1rem 0;\
font-size:.9rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}\
th{background:#f3f3f3}img{max-width:100%}code{background:#f3f3f3;padding:0 .2rem}\
pre{background:#f3f3f3;padding:.5rem;overflow-x:auto}";

/// The MIME type of an image file, by extension (`None` for what a page cannot embed).
fn mime(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "png" => Some("image/png"),
        "svg" => Some("image/svg+xml"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        _ => None,
    }
}

/// Renders `markdown` (whose relative image links are relative to `dir`) as a complete HTML page
/// titled `title`, with every local image inlined. A linked image that is missing is an error:
/// the page would otherwise show a broken figure.
pub fn render(markdown: &str, dir: &Path, title: &str) -> LabResult<String> {
    let body = body_with_figures(markdown, dir)?;
    let title = escape(title);
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    ))
}

/// Markdown (with tables) as an HTML fragment with every local image inlined (see [`render`]).
pub fn body_with_figures(markdown: &str, dir: &Path) -> LabResult<String> {
    let mut missing: Option<PathBuf> = None;
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|e| match e {
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let local = !dest_url.contains("://") && !dest_url.starts_with("data:");
            let path = dir.join(dest_url.as_ref());
            let dest_url = match (local, mime(&path)) {
                (true, Some(m)) => match std::fs::read(&path) {
                    Ok(bytes) => CowStr::from(format!(
                        "data:{m};base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    )),
                    Err(_) => {
                        missing.get_or_insert(path);
                        dest_url
                    }
                },
                _ => dest_url,
            };
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            })
        }
        other => no_raw_html(other),
    });
    let mut body = String::new();
    html::push_html(&mut body, events);
    if let Some(p) = missing {
        return Err(LabError::input(
            &p,
            None,
            "the markdown links this figure but it is missing: run `lab report` (or `lab plot`) again",
        ));
    }
    Ok(body)
}

/// Raw HTML in the markdown becomes text: a page shows what a results folder holds, never runs it.
fn no_raw_html(e: Event<'_>) -> Event<'_> {
    match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        other => other,
    }
}

/// `text` with the HTML special characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `report.html` beside the `report.md` at `md_path`, titled by its first heading.
pub fn write(md_path: &Path) -> LabResult<PathBuf> {
    let dir = md_path.parent().unwrap_or(Path::new("."));
    let md = std::fs::read_to_string(md_path)?;
    let title = md
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap_or("lab report");
    let page = render(&md, dir, title)?;
    let path = dir.join("report.html");
    write_atomic(&path, page.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_inlined_and_tables_rendered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("plots")).unwrap();
        let png = [0x89u8, b'P', b'N', b'G', 1, 2, 3];
        std::fs::write(dir.path().join("plots/a.png"), png).unwrap();
        let md = "# T <x>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![fig](plots/a.png)\n\n\
                  ![web](https://example.org/x.png)\n";
        let page = render(md, dir.path(), "t & <u>").unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>t &amp; &lt;u&gt;</title>"));
        assert!(page.contains("<table>") && page.contains("<td>2</td>"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(png);
        assert!(page.contains(&format!("src=\"data:image/png;base64,{b64}\"")));
        assert!(!page.contains("src=\"plots/"));
        // Remote images are left as they are (lab's own reports have none).
        assert!(page.contains("src=\"https://example.org/x.png\""));
        assert!(body_with_figures("a <script>x</script>\n", dir.path())
            .unwrap()
            .contains("&lt;script&gt;"));
        let missing = render("![x](plots/b.png)", dir.path(), "t").unwrap_err();
        assert!(missing.to_string().contains("b.png"), "{missing}");
    }
}

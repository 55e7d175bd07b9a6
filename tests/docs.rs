//! The example commands of the README, the docs pages and every `--help`: each parses as a lab
//! command line, and each shipped file it names exists. (Running them is what the other tests and
//! the measured sweeps do; this keeps the written examples from drifting from the CLI.)

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Shell words of one command line: quotes removed, a trailing `# comment` dropped, and one level
/// of brace expansion (`a-{x,y}` -> `a-x a-y`).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, '#') if !started => break,
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, c) => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(cur);
    }
    out.into_iter().flat_map(|w| expand_braces(&w)).collect()
}

fn expand_braces(w: &str) -> Vec<String> {
    match (w.find('{'), w.find('}')) {
        (Some(a), Some(b)) if a < b && w[a..b].contains(',') => w[a + 1..b]
            .split(',')
            .map(|part| format!("{}{}{}", &w[..a], part, &w[b + 1..]))
            .collect(),
        _ => vec![w.to_string()],
    }
}

/// The lab command lines of the ```sh blocks of a markdown file (continuations joined), as the
/// words after `lab` (or after `cargo run --`).
fn doc_commands(path: &Path) -> Vec<(usize, Vec<String>)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let (start, joined) = match pending.take() {
            Some((start, prev)) => (start, format!("{prev} {}", t)),
            None => (i + 1, t.to_string()),
        };
        if let Some(head) = joined.strip_suffix('\\') {
            pending = Some((start, head.to_string()));
            continue;
        }
        let w = words(&joined);
        let args = match w.first().map(String::as_str) {
            Some("lab") => w[1..].to_vec(),
            Some("cargo") if w.get(1).map(String::as_str) == Some("run") => {
                match w.iter().position(|x| x == "--") {
                    Some(p) => w[p + 1..].to_vec(),
                    None => continue,
                }
            }
            _ => continue,
        };
        out.push((start, args));
    }
    out
}

/// Files under these folders ship with the repository (or, for ../shared, with the machine).
fn must_exist(arg: &str) -> bool {
    ["sweeps/", "notebooks/", "bench/", "scripts/", "docs/"]
        .iter()
        .any(|p| arg.starts_with(p))
        || (arg.starts_with("../shared/") && root().join("../shared").is_dir())
}

fn check(where_: &str, args: &[String], problems: &mut Vec<String>) {
    if let Err(e) = lab::cli::parses(args) {
        let first = e.lines().next().unwrap_or_default().to_string();
        problems.push(format!("{where_}: lab {} -> {first}", args.join(" ")));
    }
    for a in args.iter().filter(|a| must_exist(a)) {
        if !root().join(a).exists() {
            problems.push(format!("{where_}: names {a}, which does not exist"));
        }
    }
}

#[test]
fn every_documented_command_parses_and_names_files_that_exist() {
    let mut pages = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in &pages {
        for (line, args) in doc_commands(page) {
            let name = page.strip_prefix(root()).unwrap().display();
            check(&format!("{name}:{line}"), &args, &mut problems);
            checked += 1;
        }
    }
    // The README's main job and the docs' examples are there to be checked.
    assert!(checked >= 20, "only {checked} commands found in the docs");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_help_example_parses_and_names_files_that_exist() {
    let examples = lab::cli::help_examples();
    assert!(examples.len() >= 20, "{examples:?}");
    let mut problems = Vec::new();
    for e in &examples {
        check("--help", &words(e), &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_a_wrong_flag_and_a_missing_file() {
    let mut problems = Vec::new();
    check(
        "t",
        &words("sweep sweeps/chinchilla.yaml --no-such-flag"),
        &mut problems,
    );
    check("t", &words("plan sweeps/no-such-sweep.yaml"), &mut problems);
    check(
        "t",
        &words("plot --compare results/a results/{b,c}"),
        &mut problems,
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("--no-such-flag"), "{problems:?}");
    assert!(problems[1].contains("no-such-sweep"), "{problems:?}");
    assert_eq!(
        words("fit a.csv --n 'Model Size' # comment"),
        ["fit", "a.csv", "--n", "Model Size"]
    );
}

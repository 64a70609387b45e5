//! The documentation against the tree and the binary: every relative link and anchor in
//! README.md, docs/*.md and deploy/**/*.md resolves, and docs/usage.md's flag table
//! lists exactly the flags `tokenxchange --help` prints. Each checker is also run on a
//! small broken tree or text, so a checker that stopped seeing problems fails too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::util::{Cmd, TempDir};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = Path::new(ROOT);
    let files = markdown_files(root);
    for expected in ["README.md", "docs/usage.md", "docs/contracts.md", "deploy/README.md"] {
        assert!(files.contains(&root.join(expected)), "{expected} not among the checked files: {files:?}");
    }
    let problems = link_problems(root, &files);
    assert!(problems.is_empty(), "links that do not resolve:\n{}", problems.join("\n"));
}

#[test]
fn usage_flag_table_lists_exactly_the_flags_of_help() {
    let home = TempDir::new("docs-help");
    let run = Cmd::new(home.path().to_path_buf()).arg("--help").run();
    assert_eq!(run.code, Some(0), "{run}");
    let help_flags = flags_in_help(&run.stdout);
    assert!(help_flags.contains("--oidc-endpoint") && help_flags.contains("-v"), "{help_flags:?}\n{run}");
    let usage = std::fs::read_to_string(Path::new(ROOT).join("docs/usage.md")).expect("read docs/usage.md");
    let problems = flag_table_problems(&help_flags, &flags_in_usage_table(&usage));
    assert!(problems.is_empty(), "docs/usage.md \"Flags\" against `tokenxchange --help`:\n{}", problems.join("\n"));
}

#[test]
fn broken_links_and_anchors_are_reported() {
    let dir = TempDir::new("docs-links");
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    dir.write(
        "README.md",
        "# Tool\n\nSee [usage](docs/usage.md), [flags](docs/usage.md#the---flags-all), [cache](docs/usage.md#cache), \
         [gone](docs/gone.md), [dir](docs/) and [web](https://example.com/x#y).\n\
         [wrong anchor](docs/usage.md#flags) and [here](#tool), [nowhere](#nowhere).\n\
         ```sh\n[in a fence](docs/fenced.md)\n```\n`[in code](docs/code.md)` [out](../outside.md)\n\
         [ref]: docs/missing-ref.md\n",
    );
    dir.write(
        "docs/usage.md",
        "# Usage\n\n## The `--flags`: all\n\n## Cache\n\n## Cache\n\n[twice](#cache-1) [up](../README.md#tool) \
         [up wrong](../README.md#usage)\n",
    );
    let files = markdown_files(dir.path());
    let problems = link_problems(dir.path(), &files);
    let expected = [
        "README.md:3: docs/gone.md: no such file",
        "README.md:4: docs/usage.md#flags: no heading with anchor #flags in docs/usage.md",
        "README.md:4: #nowhere: no heading with anchor #nowhere in README.md",
        "README.md:8: ../outside.md: outside the repository",
        "README.md:9: docs/missing-ref.md: no such file",
        "docs/usage.md:9: ../README.md#usage: no heading with anchor #usage in README.md",
    ];
    assert_eq!(
        problems,
        expected,
        "anchors of docs/usage.md: {:?}",
        anchors(&std::fs::read_to_string(dir.join("docs/usage.md")).unwrap())
    );
}

#[test]
fn flags_missing_from_or_extra_in_the_table_are_reported() {
    let help = "usage:\n  tool [OPTIONS]\n  tool install [--force] DIR   copy, re-read every run\n\noptions:\n  \
                --client-id ID   OAuth client (alias --client)\n  -o, --output text|json   the form\n  \
                -h, --help   this text\n";
    let usage = "# Usage\n\n## Flags\n\n| flag | meaning |\n|---|---|\n| `--client-id ID` (alias `--client`) | \
                 `--force` is not here |\n| `-o text\\|json`, `--output` | form |\n| `--help`, `-h` | help |\n\
                 | `--gone` | removed from the binary |\n\nAfter the table: `--force`.\n\n## Output\n\n| x |\n|---|\n| `--other` |\n";
    let help_flags = flags_in_help(help);
    assert_eq!(
        help_flags.iter().map(String::as_str).collect::<Vec<_>>(),
        ["--client", "--client-id", "--force", "--help", "--output", "-h", "-o"]
    );
    let problems = flag_table_problems(&help_flags, &flags_in_usage_table(usage));
    assert_eq!(
        problems,
        ["--force: in --help, missing from the table", "--gone: in the table (line 10), not in --help",]
    );
}

/// README.md, docs/*.md and deploy/**/*.md under `root`, sorted.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, recurse: bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("read_dir entry").path();
            if path.is_dir() {
                if recurse {
                    walk(&path, true, out);
                }
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![root.join("README.md")];
    walk(&root.join("docs"), false, &mut files);
    walk(&root.join("deploy"), true, &mut files);
    files.retain(|f| f.is_file());
    files.sort();
    files
}

/// One line per link that does not resolve: `file:line: target: why`.
fn link_problems(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let name = file.strip_prefix(root).unwrap_or(file).display().to_string();
        for (line, target) in links(&text) {
            if let Err(why) = resolve(root, file, &target) {
                problems.push(format!("{name}:{line}: {target}: {why}"));
            }
        }
    }
    problems
}

/// Checks one link target found in `file`; absolute URLs are not followed.
fn resolve(root: &Path, file: &Path, target: &str) -> Result<(), String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        root.join(from_root)
    } else {
        file.parent().expect("a file has a directory").join(path)
    };
    let resolved = normalize(&resolved).ok_or("outside the repository")?;
    if !resolved.starts_with(root) {
        return Err("outside the repository".into());
    }
    if !resolved.exists() {
        return Err("no such file".into());
    }
    let Some(anchor) = anchor else { return Ok(()) };
    let shown = resolved.strip_prefix(root).unwrap_or(&resolved).display().to_string();
    if resolved.extension().is_none_or(|e| e != "md") {
        return Err(format!("anchor #{anchor} into {shown}, which is not Markdown"));
    }
    let text = std::fs::read_to_string(&resolved).map_err(|e| format!("read {shown}: {e}"))?;
    if anchors(&text).contains(anchor) { Ok(()) } else { Err(format!("no heading with anchor #{anchor} in {shown}")) }
}

/// `.` and `..` taken out without touching the file system; None above the root of it.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Lines outside fenced code blocks, numbered from 1, with inline code spans blanked.
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut fence: Option<&str> = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if m == open => fence = None,
            (None, None) => out.push((i + 1, blank_code_spans(line))),
            _ => {}
        }
    }
    out
}

fn blank_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(c);
        } else {
            out.push(if in_code { ' ' } else { c });
        }
    }
    out
}

/// (line, target) of every inline link `[text](target)` or image, and every reference
/// definition `[label]: target`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        if let Some(rest) = line.trim_start().strip_prefix('[')
            && let Some((_, target)) = rest.split_once("]:")
        {
            found.push((number, target.split_whitespace().next().unwrap_or("").to_string()));
            continue;
        }
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let mut depth = 0;
            let end = after.char_indices().find_map(|(i, c)| match c {
                '(' => {
                    depth += 1;
                    None
                }
                ')' if depth == 0 => Some(i),
                ')' => {
                    depth -= 1;
                    None
                }
                _ => None,
            });
            let Some(end) = end else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            let target = target.trim_start_matches('<').trim_end_matches('>');
            found.push((number, target.to_string()));
            rest = &after[end..];
        }
    }
    found
}

/// The anchors GitHub gives the headings of a Markdown text: the heading's text without
/// its markup, lower case, spaces as hyphens, other punctuation dropped, a repeat
/// suffixed -1, -2, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => {
                fence = Some(m);
                continue;
            }
            (Some(open), Some(m)) if m == open => {
                fence = None;
                continue;
            }
            (Some(_), _) => continue,
            _ => {}
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let heading = heading_text(line[hashes..].trim());
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c),
                _ => None,
            })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *count == 0 { slug } else { format!("{slug}-{count}") });
        *count += 1;
    }
    out
}

/// A heading's visible text: link targets dropped (`[text](url)` is `text`), the
/// markup characters of emphasis and code left for the slug to drop.
fn heading_text(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find("](") {
        out.push_str(&rest[..open]);
        rest = match rest[open..].find(')') {
            Some(close) => &rest[open + close + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// Every flag token in a text: `--name` or `-x`, at the start or after a space, `[`, `(`
/// or `,`, and not followed by another letter (so `re-read` and `-data` are no flags).
fn flag_tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '-' && (i == 0 || matches!(chars[i - 1], ' ' | '[' | '(' | ',' | '`' | '\n' | '|'));
        if !starts {
            i += 1;
            continue;
        }
        let long = chars.get(i + 1) == Some(&'-');
        let from = if long { i + 2 } else { i + 1 };
        let mut end = from;
        while end < chars.len() && (chars[end].is_ascii_alphanumeric() || (long && chars[end] == '-')) {
            end += 1;
        }
        let name_len = end - from;
        let valid = if long {
            name_len > 0 && chars[from].is_ascii_lowercase()
        } else {
            name_len == 1 && chars[from].is_ascii_alphabetic()
        };
        if valid {
            out.push(chars[i..end].iter().collect());
        }
        i = end.max(i + 1);
    }
    out
}

fn flags_in_help(help: &str) -> BTreeSet<String> {
    flag_tokens(help).into_iter().collect()
}

/// The flags of the first column of each row of the first table under "## Flags", with
/// the line each appears on.
fn flags_in_usage_table(usage: &str) -> BTreeMap<String, usize> {
    let mut flags = BTreeMap::new();
    let mut in_section = false;
    let mut in_table = false;
    for (i, line) in usage.lines().enumerate() {
        if line.starts_with("## ") {
            if in_table {
                break;
            }
            in_section = line.trim() == "## Flags";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(row) = line.strip_prefix('|') {
            in_table = true;
            let first = row.split(" | ").next().unwrap_or("");
            for flag in flag_tokens(first) {
                flags.entry(flag).or_insert(i + 1);
            }
        } else if in_table {
            break;
        }
    }
    flags
}

fn flag_table_problems(help: &BTreeSet<String>, table: &BTreeMap<String, usize>) -> Vec<String> {
    let mut problems: Vec<String> = help
        .iter()
        .filter(|f| !table.contains_key(*f))
        .map(|f| format!("{f}: in --help, missing from the table"))
        .collect();
    problems.extend(
        table
            .iter()
            .filter(|(f, _)| !help.contains(*f))
            .map(|(f, line)| format!("{f}: in the table (line {line}), not in --help")),
    );
    if table.is_empty() {
        problems.push("no flag table found under \"## Flags\"".into());
    }
    problems
}

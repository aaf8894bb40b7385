//! The docs say only what is true (issue 18): every shell example of the
//! README runs, in order, against a real server; the README's settings
//! tables give every declared setting with its flag and default; and the
//! token table of docs/security.md is what a server does.
//!
//! README conventions this test reads (they are written down in
//! docs/design.md, "The docs are tested"):
//! - a fenced `sh`, `bash`, `console` or `shell` block runs in its own
//!   `bash`, in the directory the server was started in, with `pez` on
//!   `PATH` and `localhost:8000` meaning the test's server;
//! - where lines start with `$ `, those are the commands (with their `\`
//!   continuation lines) and the lines after each are its output, compared
//!   line by line with runs of spaces counting as one (column widths may
//!   change, contents may not); otherwise every line is a command and only
//!   its exit status counts;
//! - `<!-- readme-test: not run: REASON -->` on the line before a block
//!   skips it, and the number of such blocks is pinned below, so a block
//!   cannot be skipped silently;
//! - `<!-- readme-test: stop the server -->` before a block stops the
//!   server gracefully first (SIGTERM, as Ctrl-C on `make run`).

use crate::helpers::{PezProcess, TempDir};
use hyper::Method;
use pez::config::declared;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The admin token the README's server is started with (`PEZ_ADMIN_TOKEN`).
const README_ADMIN_TOKEN: &str = "readme-admin-token";

/// Blocks the README marks as not run, each with its reason. Change this
/// only together with the README: it is what makes a skip visible.
const BLOCKS_NOT_RUN: usize = 6;

fn read_doc(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the line before a block asks of the test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    NotRun(String),
    StopTheServer,
}

/// One command of a block and the output the README shows for it.
#[derive(Debug)]
struct Example {
    command: String,
    output: Option<Vec<String>>,
}

#[derive(Debug)]
struct Block {
    line: usize,
    marker: Marker,
    examples: Vec<Example>,
}

fn marker_of(line: &str) -> Marker {
    let Some(rest) = line.trim().strip_prefix("<!-- readme-test:") else {
        return Marker::None;
    };
    let rest = rest.trim_end_matches("-->").trim();
    if let Some(reason) = rest.strip_prefix("not run:") {
        assert!(
            !reason.trim().is_empty(),
            "a not-run marker without a reason"
        );
        Marker::NotRun(reason.trim().to_owned())
    } else if rest == "stop the server" {
        Marker::StopTheServer
    } else {
        panic!("unknown readme-test marker: {line}")
    }
}

/// Every shell block of `markdown`, with the marker before it.
fn shell_blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let mut end = i + 1;
        while end < lines.len() && !lines[end].trim_start().starts_with("```") {
            end += 1;
        }
        if ["sh", "bash", "console", "shell"].contains(&info.trim()) {
            let before = lines[..start]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .copied()
                .unwrap_or_default();
            blocks.push(Block {
                line: start + 1,
                marker: marker_of(before),
                examples: examples(&lines[start + 1..end]),
            });
        }
        i = end + 1;
    }
    blocks
}

/// The commands of a block's body, each with the output shown after it.
fn examples(body: &[&str]) -> Vec<Example> {
    let console = body.iter().any(|l| l.starts_with("$ "));
    let mut examples: Vec<Example> = Vec::new();
    let mut continued = false;
    for line in body {
        if continued {
            let last = examples.last_mut().expect("a command to continue");
            last.command.push('\n');
            last.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ").or((!console).then_some(*line)) {
            if command.trim().is_empty() {
                continue;
            }
            examples.push(Example {
                command: command.to_owned(),
                output: None,
            });
            continued = command.ends_with('\\');
        } else if let Some(last) = examples.last_mut() {
            last.output
                .get_or_insert_with(Vec::new)
                .push(line.to_string());
        } else {
            panic!("output before any command: {line}");
        }
    }
    examples
}

/// A line with runs of whitespace as one space, for comparing output.
fn words(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(words).filter(|l| !l.is_empty()).collect()
}

/// The README's own server: the built binary with `make run`'s defaults
/// (data in `./pez-data` of its directory), on a free port instead of
/// 8000 so that tests can run side by side, with the admin token set.
fn readme_server(dir: &Path) -> PezProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pez"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PEZ_") {
            command.env_remove(key);
        }
    }
    command.current_dir(dir);
    PezProcess::start_command(command, &[("PEZ_ADMIN_TOKEN", README_ADMIN_TOKEN)])
}

/// Runs one block's commands in one `bash` and checks each.
fn run_block(block: &Block, dir: &Path, bin: &Path, address: &str) {
    const MARK: &str = "<<readme-test exit status";
    let mut script = String::new();
    for (n, example) in block.examples.iter().enumerate() {
        let command = example.command.replace("localhost:8000", address);
        script.push_str(&format!(
            "{{\ntrue\n{command}\n}} 2>\"$READMETEST_ERR.{n}\"\nprintf '\\n{MARK} %d>>\\n' $?\n"
        ));
    }
    let mut shell = Command::new("bash");
    for (key, _) in std::env::vars() {
        if key.starts_with("PEZ_") {
            shell.env_remove(key);
        }
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = shell
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("PATH", path)
        .env("PEZ_ADMIN_TOKEN", README_ADMIN_TOKEN)
        .env("READMETEST_ERR", dir.join("readme-test-stderr"))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let separator = format!("\n{MARK} ");
    let mut outputs = stdout.split(&separator);
    let mut before = outputs.next().unwrap_or_default().to_owned();
    for (n, example) in block.examples.iter().enumerate() {
        let rest = outputs.next().unwrap_or_else(|| {
            panic!(
                "README line {}: `{}` did not finish; stdout: {stdout}\nstderr: {}",
                block.line,
                example.command,
                String::from_utf8_lossy(&output.stderr)
            )
        });
        let (status, after) = rest.split_once(">>\n").unwrap_or((rest, ""));
        let stderr = std::fs::read_to_string(dir.join(format!("readme-test-stderr.{n}")))
            .unwrap_or_default();
        assert_eq!(
            status, "0",
            "README line {}: `{}` failed (exit status {status});\nstdout: {before}\nstderr: {stderr}",
            block.line, example.command
        );
        if let Some(expected) = &example.output {
            assert_eq!(
                lines_of(&before),
                expected.iter().map(|l| words(l)).collect::<Vec<_>>(),
                "README line {}: `{}` printed something else than the README shows;\nstderr: {stderr}",
                block.line,
                example.command
            );
        }
        before = after.to_owned();
    }
}

#[test]
fn every_shell_example_of_the_readme_runs_in_order() {
    let blocks = shell_blocks(&read_doc("README.md"));
    let dir = TempDir::new();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_pez"), bin.join("pez")).expect("link pez");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work dir");
    let mut server = Some(readme_server(&work));
    let mut run = 0;
    let mut not_run = Vec::new();
    for block in &blocks {
        match &block.marker {
            Marker::NotRun(reason) => {
                not_run.push(format!("line {}: {reason}", block.line));
                continue;
            }
            Marker::StopTheServer => {
                if let Some(mut pez) = server.take() {
                    pez.terminate();
                    let (code, _) = pez.wait_exit(Duration::from_secs(20));
                    assert_eq!(code, Some(0), "the server's stop: {:?}", pez.log());
                }
            }
            Marker::None => {}
        }
        let address = server
            .as_ref()
            .map(|pez| pez.http.addr().to_string())
            .unwrap_or_else(|| "127.0.0.1:9".to_owned());
        assert!(
            !block.examples.is_empty(),
            "README line {}: an empty block",
            block.line
        );
        run_block(block, &work, &bin, &address);
        run += 1;
    }
    assert_eq!(
        not_run.len(),
        BLOCKS_NOT_RUN,
        "blocks marked not run changed; each needs its reason: {not_run:#?}"
    );
    assert_eq!(run + not_run.len(), blocks.len());
    assert!(run >= 5, "only {run} blocks ran");
}

/// What a setting is when unset: its declared default, or for one with
/// none of its own what its --help names ("[default: prefer, or ...").
fn effective_default(setting: &pez::config::Setting) -> String {
    setting.default.map(str::to_owned).unwrap_or_else(|| {
        setting
            .help
            .split_once("[default: ")
            .map(|(_, d)| d.split([',', ']']).next().unwrap_or_default().to_owned())
            .unwrap_or_default()
    })
}

fn setting_named(variable: &str) -> &'static pez::config::Setting {
    declared::ALL
        .iter()
        .find(|s| s.variable == variable)
        .unwrap_or_else(|| panic!("{variable} is not a setting"))
}

#[test]
fn the_env_file_and_the_chef_attributes_give_the_declared_defaults() {
    // packaging/pez.env: every `#PEZ_X=VALUE` is the default, commented out.
    let mut checked = 0;
    for line in read_doc("packaging/pez.env").lines() {
        let Some((variable, value)) = line
            .strip_prefix('#')
            .filter(|l| l.starts_with("PEZ_"))
            .and_then(|l| l.split_once('='))
        else {
            continue;
        };
        if !value.is_empty() {
            let setting = setting_named(variable);
            assert_eq!(value, effective_default(setting), "pez.env's {variable}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} defaults in pez.env");
    // The cookbook: "(PEZ: VALUE" in the comment above each attribute.
    let attributes = read_doc("chef/cookbooks/pez/attributes/default.rb");
    let mut comment = String::new();
    checked = 0;
    for line in attributes.lines() {
        if let Some(text) = line.strip_prefix('#') {
            comment.push_str(text);
            continue;
        }
        let name = line
            .strip_prefix("default['pez']['env']['")
            .and_then(|l| l.split_once('\''))
            .map(|(name, _)| name);
        if let (Some(name), Some((_, said))) = (name, comment.split_once("(PEZ: ")) {
            let said = said.split([')', ',', ';']).next().unwrap_or_default();
            let variable = format!("PEZ_{}", name.to_uppercase());
            assert_eq!(
                said,
                effective_default(setting_named(&variable)),
                "the cookbook's {name}"
            );
            checked += 1;
        }
        comment.clear();
    }
    assert!(checked >= 20, "only {checked} defaults in the cookbook");
}

/// The rows of every `| variable | flag | default | meaning |` table:
/// (variable, flag, default), without the backquotes.
fn settings_rows(markdown: &str) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in markdown.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if !line.trim_start().starts_with('|') {
            in_table = false;
        } else if cells.first() == Some(&"variable") && cells.get(1) == Some(&"flag") {
            in_table = true;
        } else if in_table && !cells[0].starts_with("---") {
            let bare = |s: &str| s.trim_matches('`').to_owned();
            rows.push((
                bare(cells[0]),
                bare(cells[1]),
                bare(cells.get(2).copied().unwrap_or_default()),
            ));
        }
    }
    rows
}

#[test]
fn the_readme_settings_tables_give_every_declared_setting_with_its_flag_and_default() {
    let rows = settings_rows(&read_doc("README.md"));
    for setting in declared::ALL {
        let found: Vec<_> = rows.iter().filter(|r| r.0 == setting.variable).collect();
        assert_eq!(
            found.len(),
            1,
            "{} in the README's tables",
            setting.variable
        );
        let (_, flag, default) = found[0];
        assert_eq!(flag, &format!("--{}", setting.flag), "{}", setting.variable);
        assert_eq!(
            default,
            &effective_default(setting),
            "the README's default of {}",
            setting.variable
        );
    }
    for (variable, ..) in &rows {
        assert!(
            declared::ALL.iter().any(|s| s.variable == variable),
            "the README lists {variable}, which is not a setting"
        );
    }
}

/// The rows of docs/security.md's "Tokens and what each allows" table.
fn token_table(markdown: &str) -> Vec<Vec<String>> {
    let section = markdown
        .split("## Tokens and what each allows")
        .nth(1)
        .expect("the token section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

/// What a cell promises on a server where every kind of token is set:
/// `None` for "yes", else the status it names after "else"/"otherwise",
/// or first.
fn promised(cell: &str) -> Option<u16> {
    if cell.starts_with("yes") {
        return None;
    }
    let tail = ["otherwise", "else"]
        .iter()
        .find_map(|w| cell.split_once(w).map(|(_, t)| t))
        .unwrap_or(cell);
    let status = tail
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 3)
        .unwrap_or_else(|| panic!("no status in {cell:?}"));
    Some(status.parse().expect("a status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_table_of_security_md_is_what_a_server_does() {
    const ADMIN: &str = "table-admin";
    const CLIENT: &str = "table-client";
    const LEASER: &str = "table-leaser";
    const SCRAPER: &str = "table-scraper";
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_ADMIN_TOKEN", ADMIN),
            ("PEZ_TOKENS", CLIENT),
            ("PEZ_LEASE_TOKENS", LEASER),
            ("PEZ_METRICS_TOKENS", SCRAPER),
        ],
    );
    let rows = token_table(&read_doc("docs/security.md"));
    assert_eq!(rows.len(), 5, "{rows:?}");
    let tokens_of = |row: &str| -> Vec<Option<&str>> {
        match row {
            r if r.starts_with("none / unknown") => vec![None, Some("not-a-token")],
            r if r.contains("PEZ_TOKENS") => vec![Some(CLIENT)],
            r if r.contains("PEZ_LEASE_TOKENS") => vec![Some(LEASER)],
            r if r.contains("PEZ_METRICS_TOKENS") => vec![Some(SCRAPER)],
            r if r.contains("PEZ_ADMIN_TOKEN") => vec![Some(ADMIN)],
            r => panic!("unknown token row {r:?}"),
        }
    };
    // Each column: the requests of its route class.
    let classes: [&[(Method, &str)]; 4] = [
        &[
            (Method::GET, "/v1/forward"),
            (Method::GET, "/v1/reverse"),
            (Method::GET, "/v2/forward?count=2"),
            (Method::GET, "/v2/reverse"),
            (Method::GET, "/v2/sequences/forward/next"),
            (Method::POST, "/v2/sequences/reverse/next?count=3"),
        ],
        &[(Method::POST, "/v2/sequences/forward/lease?count=10")],
        &[
            (Method::GET, "/v2/sequences"),
            (Method::GET, "/v2/sequences/forward"),
        ],
        &[(Method::GET, "/metrics")],
    ];
    let none_row = rows[0].clone();
    for row in &rows {
        for token in tokens_of(&row[0]) {
            for (column, requests) in classes.iter().enumerate() {
                let mut cell = row[column + 1].as_str();
                if cell.starts_with("as no token") {
                    cell = none_row[column + 1].as_str();
                }
                let expected = promised(cell);
                for (method, path) in requests.iter() {
                    let bearer = token.map(|t| format!("Bearer {t}"));
                    let headers: Vec<(&str, &str)> = bearer
                        .as_deref()
                        .map(|b| vec![("authorization", b)])
                        .unwrap_or_default();
                    let answer = pez.http.send(method.clone(), path, &headers, None).await;
                    match expected {
                        None => assert!(
                            answer.status.is_success(),
                            "{}: {method} {path} should be allowed: {} {}",
                            row[0],
                            answer.status,
                            answer.body
                        ),
                        Some(status) => assert_eq!(
                            answer.status.as_u16(),
                            status,
                            "{}: {method} {path}: {}",
                            row[0],
                            answer.body
                        ),
                    }
                }
                // The status page's details go with the /metrics column.
                if column == 3 {
                    let bearer = token.map(|t| format!("Bearer {t}"));
                    let headers: Vec<(&str, &str)> = bearer
                        .as_deref()
                        .map(|b| vec![("authorization", b)])
                        .unwrap_or_default();
                    let page = pez.http.send(Method::GET, "/", &headers, None).await;
                    assert_eq!(page.status, 200);
                    assert_eq!(
                        page.body.contains("data-sequence=\"forward\""),
                        expected.is_none(),
                        "{}: the status page's details",
                        row[0]
                    );
                }
            }
        }
    }
}

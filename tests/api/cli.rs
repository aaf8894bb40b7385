//! The `pez` command line: settings, help, and `pez sequence`.

use crate::helpers::{MAX, PezProcess, TempDir, pez_command, run_pez};

fn one_error_line(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "expected failure: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr:?}");
    assert!(lines[0].starts_with("pez: "), "{stderr}");
    lines[0].to_owned()
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let output = run_pez(&std::env::temp_dir(), &["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for (variable, default) in [
        ("PEZ_LISTEN", "127.0.0.1:8000"),
        ("PEZ_DATA_DIR", "./pez-data"),
        ("PEZ_MAX_COUNT", "100"),
        ("PEZ_LOG", "info"),
        ("PEZ_BLOCK_SIZE", "1000"),
        ("PEZ_BLOCK_MAX", "1000000"),
        ("PEZ_LEASE_WAIT_MS", "1000"),
        ("PEZ_STORE_TIMEOUT_MS", "500"),
        ("PEZ_SHUTDOWN_TIMEOUT_MS", "5000"),
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} missing:\n{help}"
        );
        assert!(
            help.contains(&format!("[default: {default}]")),
            "{default} missing:\n{help}"
        );
    }
}

#[test]
fn a_bad_max_count_stops_pez_with_one_line_naming_the_variable() {
    let dir = TempDir::new();
    for bad in ["abc", "-1", "1.5", " 5", "99999999999999999999999"] {
        let output = pez_command(dir.path())
            .env("PEZ_MAX_COUNT", bad)
            .output()
            .expect("run");
        let line = one_error_line(&output);
        assert!(line.contains("PEZ_MAX_COUNT"), "{line}");
    }
    let flag = run_pez(dir.path(), &["--max-count", "x"]);
    assert!(one_error_line(&flag).contains("PEZ_MAX_COUNT"));
}

#[tokio::test]
async fn max_count_comes_from_the_environment_a_flag_or_a_dot_env_file() {
    let dir = TempDir::new();
    let from_env = PezProcess::start(dir.path(), &[("PEZ_MAX_COUNT", "0")]);
    assert_eq!(
        from_env.http.numbers("/v2/forward?count=100").await.len(),
        100
    );
    from_env
        .http
        .get("/v2/forward?count=101")
        .await
        .problem(400);
    drop(from_env);

    let dir = TempDir::new();
    std::fs::write(dir.path().join(".env"), "PEZ_MAX_COUNT=3\n").expect("write .env");
    let from_dot_env = PezProcess::start(dir.path(), &[]);
    assert_eq!(
        from_dot_env.http.numbers("/v2/forward?count=3").await.len(),
        3
    );
    let problem = from_dot_env
        .http
        .get("/v2/forward?count=4")
        .await
        .problem(400);
    assert_eq!(problem["maximum"], 3);
}

#[test]
fn unknown_flags_get_one_line() {
    let output = run_pez(&std::env::temp_dir(), &["--no-such-flag"]);
    assert!(one_error_line(&output).contains("--no-such-flag"));
}

#[test]
fn sequence_list_prints_each_sequence_with_its_next_number() {
    let dir = TempDir::new();
    let output = run_pez(dir.path(), &["sequence", "list"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("forward")[..3], ["forward", "ascending", "1"]);
    assert_eq!(
        row("reverse")[..3],
        ["reverse", "descending", &MAX.to_string()]
    );
}

#[tokio::test]
async fn restart_moves_a_sequence_and_both_ends_wrap() {
    let dir = TempDir::new();
    for (name, value) in [
        ("forward", (MAX - 1).to_string()),
        ("reverse", "2".to_owned()),
    ] {
        let output = run_pez(dir.path(), &["sequence", "restart", name, &value]);
        assert!(output.status.success(), "{output:?}");
    }
    let listed =
        String::from_utf8_lossy(&run_pez(dir.path(), &["sequence", "list"]).stdout).into_owned();
    assert!(listed.contains(&(MAX - 1).to_string()), "{listed}");

    let pez = PezProcess::start(dir.path(), &[]);
    assert_eq!(
        pez.http.numbers("/v2/forward?count=3").await,
        vec![MAX - 1, MAX, 1]
    );
    assert_eq!(pez.http.numbers("/v1/forward").await, vec![2]);
    assert_eq!(
        pez.http.numbers("/v2/reverse?count=3").await,
        vec![2, 1, MAX]
    );
    assert_eq!(pez.http.numbers("/v1/reverse").await, vec![MAX - 1]);
}

#[test]
fn restart_refuses_bad_values_and_unknown_names_with_one_line() {
    let dir = TempDir::new();
    for value in ["0", "-5", "9223372036854775808", "abc", "1.0", ""] {
        let line = one_error_line(&run_pez(
            dir.path(),
            &["sequence", "restart", "forward", value],
        ));
        assert!(line.contains("9223372036854775807"), "{line}");
    }
    let line = one_error_line(&run_pez(
        dir.path(),
        &["sequence", "restart", "sideways", "5"],
    ));
    assert!(line.contains("sideways"), "{line}");
    let line = one_error_line(&run_pez(dir.path(), &["sequence", "restart"]));
    assert!(line.contains("required"), "{line}");
}

#[tokio::test]
async fn restart_refuses_while_a_server_holds_the_store() {
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[]);
    let line = one_error_line(&run_pez(
        dir.path(),
        &["sequence", "restart", "forward", "500"],
    ));
    assert!(line.contains("another pez process"), "{line}");
    assert_eq!(pez.http.numbers("/v1/forward").await, vec![1]);
    // Listing still works beside the server, and says what it shows.
    let listed = run_pez(dir.path(), &["sequence", "list"]);
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stderr).contains("next lease"));
}

#[test]
fn sequences_are_created_shown_and_deleted_from_the_command_line() {
    let dir = TempDir::new();
    let ok = |args: &[&str]| {
        let output = run_pez(dir.path(), args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(
        ok(&[
            "sequence",
            "create",
            "orders",
            "--direction",
            "descending",
            "--min",
            "5",
            "--max",
            "9"
        ])
        .contains("created")
    );
    assert!(
        ok(&[
            "sequence",
            "create",
            "orders",
            "--direction",
            "descending",
            "--min",
            "5",
            "--max",
            "9"
        ])
        .contains("exists already")
    );
    let shown = ok(&["sequence", "show", "orders"]);
    for line in [
        "direction  descending",
        "min        5",
        "max        9",
        "start      9",
        "next       9",
        "mode       leased",
    ] {
        assert!(shown.contains(line), "{line} missing:\n{shown}");
    }
    assert!(
        ok(&["sequence", "list"])
            .lines()
            .any(|l| l.starts_with("orders") && l.ends_with("leased -"))
    );
    for (args, says) in [
        (
            vec!["sequence", "create", "orders", "--min", "6"],
            "other settings",
        ),
        (vec!["sequence", "create", "Bad-Name"], "a-z"),
        (vec!["sequence", "create", "x", "--min", "0"], "--min"),
        (
            vec!["sequence", "create", "x", "--min", "9", "--max", "3"],
            "must be below max",
        ),
        (
            vec!["sequence", "create", "x", "--max", "5", "--start", "6"],
            "outside",
        ),
        (vec!["sequence", "create", "x", "--mode", "loose"], "--mode"),
        (
            vec!["sequence", "create", "x", "--cycle", "maybe"],
            "--cycle",
        ),
        (
            vec!["sequence", "create", "x", "--direction", "up"],
            "--direction",
        ),
        (vec!["sequence", "delete", "forward"], "built in"),
        (vec!["sequence", "show", "nope"], "nope"),
    ] {
        let line = one_error_line(&run_pez(dir.path(), &args));
        assert!(line.contains(says), "{args:?}: {line}");
    }
    assert!(ok(&["sequence", "delete", "orders"]).contains("deleted"));
    assert!(
        one_error_line(&run_pez(dir.path(), &["sequence", "show", "orders"])).contains("orders")
    );
}

/// Issue 16, point 9: a malformed `.env` line was printed whole on stderr,
/// the database password with it. The error names the file, the line and
/// the variable, never the value.
#[test]
fn a_malformed_env_file_is_named_without_its_values() {
    let dir = TempDir::new();
    std::fs::write(
        dir.path().join(".env"),
        "PEZ_MAX_COUNT=3\nPEZ_DB_PASSWORD='s3cr3t-value\nPEZ_LOG=info\n",
    )
    .expect("write .env");
    let output = run_pez(dir.path(), &["settings"]);
    let line = one_error_line(&output);
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!everything.contains("s3cr3t"), "{everything}");
    assert!(
        line.contains(".env") && line.contains("line 2") && line.contains("PEZ_DB_PASSWORD"),
        "{line}"
    );
}

/// Issue 16, point 12: `pez store copy --to URL` put the password on the
/// command line, where every local user sees it in `ps`. A password there
/// is refused; the URL comes from a file, or the password from libpq's
/// PGPASSWORD or .pgpass.
#[test]
fn store_copy_takes_no_password_on_the_command_line() {
    let dir = TempDir::new();
    let refused = run_pez(
        dir.path(),
        &[
            "store",
            "copy",
            "--to",
            "postgres://pez:hunter2@db.internal/pez",
        ],
    );
    let line = one_error_line(&refused);
    assert!(
        line.contains("--to-file") && !line.contains("hunter2"),
        "{line}"
    );
}

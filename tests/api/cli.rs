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
    // A read-only command creates no store: `pez migrate` makes it.
    assert!(run_pez(dir.path(), &["migrate"]).status.success());
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

// Issue 18, the CLI.

/// Every subcommand path (`["sequence", "list"]`, ...), from clap's own
/// definition, so a new subcommand is covered without editing this test.
fn subcommand_paths() -> Vec<(Vec<String>, Vec<String>)> {
    use clap::CommandFactory;
    fn walk(command: &clap::Command, path: Vec<String>, out: &mut Vec<(Vec<String>, Vec<String>)>) {
        for sub in command.get_subcommands() {
            let mut here = path.clone();
            here.push(sub.get_name().to_owned());
            // Its own flags and arguments, as help prints them.
            let own = sub
                .get_arguments()
                .filter(|arg| !arg.is_global_set())
                .map(|arg| match arg.get_long() {
                    Some(long) => format!("--{long}"),
                    None => format!("<{}>", arg.get_id().as_str().to_ascii_uppercase()),
                })
                .collect();
            out.push((here.clone(), own));
            walk(sub, here, out);
        }
    }
    let mut out = Vec::new();
    walk(&pez::config::command::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn every_subcommands_help_shows_its_own_flags_before_the_server_settings() {
    let dir = TempDir::new();
    let paths = subcommand_paths();
    assert!(paths.len() > 10, "{paths:?}");
    for (path, own) in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let output = run_pez(dir.path(), &args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        let help = String::from_utf8_lossy(&output.stdout);
        let settings = help
            .find("--listen")
            .unwrap_or_else(|| panic!("{args:?}: no settings listed:\n{help}"));
        for flag in own.iter().map(String::as_str).chain(["--help"]) {
            let at = help
                .find(flag)
                .unwrap_or_else(|| panic!("{args:?}: {flag} missing:\n{help}"));
            assert!(
                at < settings,
                "{args:?}: {flag} comes after the settings:\n{help}"
            );
        }
        assert!(
            help[..settings].contains("Settings"),
            "{args:?}: the settings have no heading of their own:\n{help}"
        );
    }
}

/// Everything in `dir`, to show that a command left it as it was.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn read_only_commands_in_an_empty_directory_create_no_store() {
    let dir = TempDir::new();
    let data = dir.path().join("pez-data");
    for args in [
        vec!["sequence", "list"],
        vec!["sequence", "show", "forward"],
        vec!["sequence", "export"],
    ] {
        let output = pez_command(dir.path())
            .env("PEZ_DATA_DIR", &data)
            .args(&args)
            .output()
            .expect("run");
        let line = one_error_line(&output);
        assert!(
            line.contains("no store") && line.contains("pez-data"),
            "{args:?}: {line}"
        );
        assert!(entries(dir.path()).is_empty(), "{args:?} created a store");
    }
    let settings = pez_command(dir.path())
        .env("PEZ_DATA_DIR", &data)
        .arg("settings")
        .output()
        .expect("run");
    assert!(settings.status.success(), "{settings:?}");
    assert!(
        entries(dir.path()).is_empty(),
        "pez settings created a store"
    );
}

/// The settings file an operator's `pez` reads on a host installed from
/// the RPM, here named by PEZ_ENV_FILE: what it sets is used unless the
/// environment or a flag says otherwise, it is parsed as systemd parses
/// an EnvironmentFile (no `$` expansion), and the line on stderr names it.
#[test]
fn the_settings_file_is_read_below_the_environment_and_the_flags() {
    let dir = TempDir::new();
    let file = dir.path().join("pez.env");
    std::fs::write(
        &file,
        "# the service's settings\n\
         PEZ_MAX_COUNT=3\n\
         PEZ_BLOCK_SIZE=7\n\
         \x20 PEZ_BLOCK_MAX=9000\n\
         PEZ_DB_SSLROOTCERT=\"/etc/pez$USER\"\n",
    )
    .expect("write");
    let output = pez_command(dir.path())
        .env("PEZ_ENV_FILE", &file)
        .env("PEZ_BLOCK_SIZE", "8")
        .args(["settings", "--block-max", "9001"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8_lossy(&output.stdout);
    for line in [
        "PEZ_MAX_COUNT=3",
        "PEZ_BLOCK_SIZE=8",
        "PEZ_BLOCK_MAX=9001",
        // Not a store's name: the test's PEZ_DATA_DIR names the store.
        "PEZ_DB_SSLROOTCERT=/etc/pez$USER",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} missing:\n{shown}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.contains(&*file.to_string_lossy()))
            .count(),
        1,
        "{stderr}"
    );
}

/// Which store a command reaches is named by several settings together: an
/// operator who names a store of their own (a data directory, another
/// host) must not get the file's PEZ_DATABASE_URL (which wins over a data
/// directory) or its password along with it.
#[test]
fn a_store_named_in_the_environment_takes_none_of_the_files_store_settings() {
    let dir = TempDir::new();
    let file = dir.path().join("pez.env");
    std::fs::write(
        &file,
        "PEZ_DATABASE_URL=postgres://127.0.0.1:1/production\n\
         PEZ_DB_PASSWORD=service-secret\n\
         PEZ_DB_NAME=production\n\
         PEZ_MAX_COUNT=3\n",
    )
    .expect("write");
    let data = dir.path().join("mine");
    let output = pez_command(dir.path())
        .env("PEZ_ENV_FILE", &file)
        .env("PEZ_DATA_DIR", &data)
        .args(["sequence", "create", "scratch"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    assert!(
        data.join("pez.sqlite3").exists(),
        "the embedded store named by PEZ_DATA_DIR, not the file's database: {output:?}"
    );

    let settings = pez_command(dir.path())
        .env("PEZ_ENV_FILE", &file)
        .env("PEZ_DB_HOST", "staging.internal")
        .arg("settings")
        .output()
        .expect("run");
    assert!(settings.status.success(), "{settings:?}");
    let shown = String::from_utf8_lossy(&settings.stdout);
    for line in ["PEZ_DATABASE_URL=", "PEZ_DB_PASSWORD=", "PEZ_DB_NAME=pez"] {
        assert!(shown.lines().any(|l| l == line), "{line} missing:\n{shown}");
    }
    // Settings that name no store still come from the file.
    assert!(shown.lines().any(|l| l == "PEZ_MAX_COUNT=3"), "{shown}");
}

#[test]
fn a_settings_file_another_user_may_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let file = dir.path().join("pez.env");
    std::fs::write(&file, "PEZ_MAX_COUNT=3\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let output = pez_command(dir.path())
        .env("PEZ_ENV_FILE", &file)
        .arg("settings")
        .output()
        .expect("run");
    let line = one_error_line(&output);
    assert!(
        line.contains("pez.env") && line.contains("other users"),
        "{line}"
    );
    // A file named but missing is an error too, not silently nothing.
    let output = pez_command(dir.path())
        .env("PEZ_ENV_FILE", dir.path().join("nonexistent.env"))
        .arg("settings")
        .output()
        .expect("run");
    assert!(one_error_line(&output).contains("nonexistent.env"));
}

#[test]
fn a_bad_sslmode_is_refused_at_once_naming_the_modes_that_work() {
    let dir = TempDir::new();
    let started = std::time::Instant::now();
    let output = pez_command(dir.path())
        .env("PEZ_DB_HOST", "127.0.0.1")
        .env("PEZ_DB_SSLMODE", "bogus")
        .args(["sequence", "list"])
        .output()
        .expect("run");
    let line = one_error_line(&output);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        line.contains("PEZ_DB_SSLMODE") && line.contains("verify-full") && line.contains("prefer"),
        "{line}"
    );
}

#[test]
fn a_database_url_of_another_kind_says_which_schemes_work() {
    let dir = TempDir::new();
    let output = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", "mysql://pez:hunter2@db.internal/pez")
        .args(["sequence", "list"])
        .output()
        .expect("run");
    let line = one_error_line(&output);
    assert!(
        line.contains("mysql://")
            && line.contains("postgres://")
            && line.contains("postgresql://")
            && !line.contains("hunter2"),
        "{line}"
    );
}

#[test]
fn a_data_dir_that_is_a_file_is_called_a_file() {
    let dir = TempDir::new();
    let file = dir.path().join("passwd");
    std::fs::write(&file, "root:x:0:0::/root:/bin/sh\n").expect("write");
    for args in [vec!["sequence", "list"], vec!["sequence", "create", "x"]] {
        let output = pez_command(dir.path())
            .env("PEZ_DATA_DIR", &file)
            .args(&args)
            .output()
            .expect("run");
        let line = one_error_line(&output);
        assert!(
            line.contains("is a file") && !line.contains("remove it"),
            "{args:?}: {line}"
        );
    }
}

#[test]
fn list_columns_fit_their_contents() {
    let dir = TempDir::new();
    let long = "a-rather-long-sequence-name-for-orders-of-2024";
    for args in [
        vec!["migrate"],
        vec!["sequence", "create", long, "--max", "99"],
    ] {
        assert!(run_pez(dir.path(), &args).status.success(), "{args:?}");
    }
    let output = run_pez(dir.path(), &["sequence", "list"]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = table.lines().collect();
    // Text columns start where their heading starts, numbers end where
    // theirs ends, on every line: nothing spills across.
    let header = lines[0];
    let edge = |heading: &str| header.find(&format!(" {heading} ")).expect(heading) + 1;
    for line in &lines[1..] {
        let bytes = line.as_bytes();
        for heading in ["DIRECTION", "CYCLE", "MODE"] {
            let at = edge(heading);
            assert!(
                bytes[at - 1] == b' ' && bytes[at] != b' ',
                "{heading}: {line}\n{table}"
            );
        }
        for heading in ["NEXT", "MIN", "MAX", "MAX_LEASE"] {
            let end = edge(heading) + heading.len();
            assert!(
                bytes[end - 1] != b' ' && bytes[end] == b' ',
                "{heading}: {line}\n{table}"
            );
        }
    }
    // No column wider than its widest cell: the name column is exactly as
    // wide as the long name, plus one space.
    assert_eq!(header.find(" DIRECTION"), Some(long.len()), "{table}");
    let row = lines.iter().find(|l| l.starts_with(long)).expect("row");
    assert!(row.contains(" 1 "), "{table}");
}

#[test]
fn every_commands_output_ends_with_a_newline() {
    let dir = TempDir::new();
    for args in [
        vec!["--help"],
        vec!["--version"],
        vec!["migrate"],
        vec!["settings"],
        vec!["sequence", "list"],
        vec!["sequence", "show", "forward"],
        vec!["sequence", "export"],
        vec!["sequence", "create", "orders"],
        vec!["sequence", "restart", "orders", "5"],
        vec!["sequence", "delete", "orders"],
        vec!["sequence", "show", "nope"],
        vec!["--no-such-flag"],
    ] {
        let output = run_pez(dir.path(), &args);
        for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            assert!(
                text.is_empty() || text.ends_with(b"\n"),
                "{args:?}: {stream} {:?}",
                String::from_utf8_lossy(text)
            );
        }
    }
}

/// On PostgreSQL a read-only command runs no migration and creates
/// nothing: in an empty database it says there is no store, and the
/// database is still empty.
#[test]
fn read_only_commands_on_an_empty_database_create_nothing() {
    use diesel::{Connection, RunQueryDsl};
    let database = crate::postgres_support::TestDatabase::create();
    let dir = TempDir::new();
    for args in [
        vec!["sequence", "list"],
        vec!["sequence", "show", "forward"],
        vec!["sequence", "export"],
        vec!["settings"],
    ] {
        let output = crate::helpers::run_pez_on(dir.path(), Some(&database.url), &args);
        if args[0] != "settings" {
            let line = one_error_line(&output);
            assert!(line.contains("no PEZ store"), "{args:?}: {line}");
        }
    }
    let mut conn = diesel::PgConnection::establish(&database.url).expect("connect");
    let made: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
          WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
            AND n.nspname NOT LIKE 'pg_toast%') \
         + (SELECT count(*) FROM pg_namespace WHERE nspname = 'pez')",
    ))
    .get_result(&mut conn)
    .expect("count");
    assert_eq!(made, 0, "a read-only command created something");
    assert!(entries(dir.path()).is_empty());
}

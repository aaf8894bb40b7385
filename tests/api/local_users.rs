//! What another local user can do to a PEZ run by root or by a service
//! user: plant links and files in a directory they control, or change the
//! files PEZ reads its settings and secrets from. And the modes of what
//! PEZ makes, whatever the umask.
//!
//! These tests run as root (as CI does): they hand files to uid 4242, a
//! uid no one uses, which needs no user of that name.

use crate::helpers::{
    PezProcess, TempDir, pez_command, pez_command_under_umask, run_pez, the_error_line,
};
use std::fs::{self, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;

/// The other local user.
const OTHER: u32 = 4242;

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, Permissions::from_mode(mode)).expect("chmod");
}

fn give_to_other_user(path: &Path) {
    chown(path, Some(OTHER), Some(OTHER)).expect("chown (the tests run as root)");
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

#[test]
fn a_lock_file_linked_to_another_file_is_refused_and_that_file_left_untouched() {
    let dir = TempDir::new();
    let data = dir.path().join("pez-data");
    fs::create_dir(&data).unwrap();
    let root_only = dir.path().join("root-only");
    fs::write(&root_only, "root's own\n").unwrap();
    set_mode(&root_only, 0o600);
    symlink(&root_only, data.join("pez.lock")).unwrap();

    let output = run_pez(&data, &["sequence", "restart", "forward", "5"]);

    let line = the_error_line(&output);
    assert!(line.contains("pez.lock"), "{line}");
    assert!(line.contains("is a symbolic link"), "{line}");
    assert_eq!(fs::read_to_string(&root_only).unwrap(), "root's own\n");
}

#[test]
fn a_database_file_linked_elsewhere_is_refused_and_nothing_is_made_there() {
    let dir = TempDir::new();
    let data = dir.path().join("pez-data");
    fs::create_dir(&data).unwrap();
    let elsewhere = dir.path().join("elsewhere.sqlite3");
    symlink(&elsewhere, data.join("pez.sqlite3")).unwrap();

    let output = run_pez(&data, &["sequence", "restart", "forward", "5"]);

    let line = the_error_line(&output);
    assert!(line.contains("pez.sqlite3 is a symbolic link"), "{line}");
    assert!(!elsewhere.exists(), "a database was made through the link");
}

#[test]
fn a_data_directory_another_user_owns_is_refused() {
    let dir = TempDir::new();
    give_to_other_user(dir.path());

    let output = run_pez(dir.path(), &["sequence", "restart", "forward", "5"]);

    let line = the_error_line(&output);
    assert!(line.contains(&dir.path().display().to_string()), "{line}");
    assert!(line.contains("belongs to uid 4242"), "{line}");
    assert!(line.contains("chown 0 "), "{line}");
    assert!(!dir.path().join("pez.lock").exists());
}

#[test]
fn a_data_directory_others_may_write_is_refused_even_with_the_sticky_bit() {
    for mode in [0o777, 0o1777, 0o775] {
        let dir = TempDir::new();
        set_mode(dir.path(), mode);

        let output = run_pez(dir.path(), &["sequence", "restart", "forward", "5"]);

        let line = the_error_line(&output);
        assert!(line.contains(&format!("mode {mode:04o}")), "{line}");
        assert!(
            line.contains(&format!("chmod go-w {}", dir.path().display())),
            "{line}"
        );
        assert!(!dir.path().join("pez.lock").exists());
    }
}

#[test]
fn a_token_file_another_user_owns_or_others_may_write_is_refused() {
    let dir = TempDir::new();
    let tokens = dir.path().join("tokens");
    let setting = format!("@{}", tokens.display());
    for (mode, other_owns, expected) in [
        (0o666, false, "chmod go-w"),
        (0o620, false, "chmod go-w"),
        (0o600, true, "belongs to uid 4242"),
    ] {
        fs::write(&tokens, "t0ken\n").unwrap();
        set_mode(&tokens, mode);
        if other_owns {
            give_to_other_user(&tokens);
        }

        let output = pez_command(dir.path())
            .env("PEZ_TOKENS", &setting)
            .arg("settings")
            .output()
            .unwrap();

        let line = the_error_line(&output);
        assert!(line.contains("PEZ_TOKENS"), "{line}");
        assert!(line.contains(&tokens.display().to_string()), "{line}");
        assert!(line.contains(expected), "{mode:o}: {line}");
        fs::remove_file(&tokens).unwrap();
    }
}

#[test]
fn a_link_another_user_owns_cannot_lead_pez_to_a_file_of_roots() {
    // A file of root's that no one else may write, whose lines another
    // user knows (as anyone knows /etc/hostname's).
    let dir = TempDir::new();
    let roots = dir.path().join("roots-file");
    fs::write(&roots, "well-known\n").unwrap();
    set_mode(&roots, 0o644);
    // A directory the other user owns, where they put a link to it under
    // the name an operator configured, and one that leads there through a
    // link they own in the middle of the path.
    let theirs = dir.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    give_to_other_user(&theirs);
    let link = theirs.join("tokens");
    symlink(&roots, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(OTHER), Some(OTHER)).unwrap();
    let through = theirs.join("via");
    symlink(dir.path(), &through).unwrap();
    std::os::unix::fs::lchown(&through, Some(OTHER), Some(OTHER)).unwrap();

    for (variable, path) in [
        ("PEZ_TOKENS", link.clone()),
        ("PEZ_LEASE_TOKENS", link.clone()),
        ("PEZ_METRICS_TOKENS", through.join("roots-file")),
    ] {
        let output = pez_command(dir.path())
            .env(variable, format!("@{}", path.display()))
            .arg("settings")
            .output()
            .unwrap();

        let line = the_error_line(&output);
        assert!(line.contains(variable), "{line}");
        assert!(line.contains("uid 4242"), "{variable}: {line}");
    }

    // The same link made by root is followed (as Kubernetes mounts secrets).
    let roots_link = dir.path().join("tokens-link");
    symlink(&roots, &roots_link).unwrap();
    let output = pez_command(dir.path())
        .env("PEZ_TOKENS", format!("@{}", roots_link.display()))
        .arg("settings")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_dot_env_file_another_user_owns_or_others_may_write_is_refused() {
    let dir = TempDir::new();
    let env_file = dir.path().join(".env");
    for (mode, other_owns, expected) in [
        (0o666, false, "chmod go-w .env"),
        (0o644, true, "belongs to uid 4242"),
    ] {
        fs::write(&env_file, "PEZ_MAX_COUNT=7\n").unwrap();
        set_mode(&env_file, mode);
        if other_owns {
            give_to_other_user(&env_file);
        }

        let output = run_pez(dir.path(), &["settings"]);

        let line = the_error_line(&output);
        assert!(line.contains(".env"), "{line}");
        assert!(line.contains(expected), "{mode:o}: {line}");
        fs::remove_file(&env_file).unwrap();
    }
}

#[test]
fn a_store_copy_url_file_another_user_owns_is_refused() {
    let dir = TempDir::new();
    let url_file = dir.path().join("copy-to.url");
    fs::write(&url_file, "postgres://them@127.0.0.1:1/theirs\n").unwrap();
    set_mode(&url_file, 0o600);
    give_to_other_user(&url_file);

    let output = run_pez(
        dir.path(),
        &[
            "store",
            "copy",
            "--to-file",
            &url_file.display().to_string(),
        ],
    );

    let line = the_error_line(&output);
    assert!(line.contains("copy-to.url belongs to uid 4242"), "{line}");
}

#[test]
fn a_service_user_is_trusted_with_its_own_files_and_roots() {
    // pez run as uid 4242: its own data directory and .env, root's token
    // file (world-readable: readable is not writable).
    let dir = TempDir::new();
    let data = dir.path().join("pez-data");
    fs::create_dir(&data).unwrap();
    set_mode(&data, 0o750);
    give_to_other_user(&data);
    let env_file = dir.path().join(".env");
    fs::write(&env_file, "PEZ_MAX_COUNT=7\n").unwrap();
    set_mode(&env_file, 0o600);
    give_to_other_user(&env_file);
    let tokens = dir.path().join("tokens");
    fs::write(&tokens, "t0ken\n").unwrap();
    set_mode(&tokens, 0o644);
    let as_other_user = |args: &[&str]| {
        pez_command(dir.path())
            .env("PEZ_DATA_DIR", &data)
            .env("PEZ_TOKENS", format!("@{}", tokens.display()))
            .uid(OTHER)
            .gid(OTHER)
            .args(args)
            .output()
            .unwrap()
    };

    let settings = as_other_user(&["settings"]);
    assert!(settings.status.success(), "{settings:?}");
    assert!(
        String::from_utf8_lossy(&settings.stdout).contains("PEZ_MAX_COUNT=7"),
        "{settings:?}"
    );
    let created = as_other_user(&["sequence", "create", "orders"]);
    assert!(created.status.success(), "{created:?}");
    for made in ["pez.lock", "pez.sqlite3"] {
        assert_eq!(
            fs::metadata(data.join(made)).unwrap().uid(),
            OTHER,
            "{made}"
        );
    }
}

#[tokio::test]
async fn files_pez_makes_are_private_whatever_the_umask() {
    for umask in ["0022", "0000"] {
        let dir = TempDir::new();
        let data = dir.path().join("pez-data");
        let data_dir = data.display().to_string();
        let pez = PezProcess::start_command(
            pez_command_under_umask(dir.path(), umask),
            &[("PEZ_DATA_DIR", &data_dir)],
        );
        assert_eq!(pez.http.numbers("/v1/forward").await.len(), 1);

        assert_eq!(mode_of(&data), 0o700, "umask {umask}: the data directory");
        for file in [
            "pez.sqlite3",
            "pez.sqlite3-wal",
            "pez.sqlite3-shm",
            "pez.lock",
        ] {
            assert_eq!(mode_of(&data.join(file)), 0o600, "umask {umask}: {file}");
        }
        let export = dir.path().join("sequences.json");
        let exported = pez_command_under_umask(dir.path(), umask)
            .env("PEZ_DATA_DIR", &data_dir)
            .args(["sequence", "export", "--output"])
            .arg(&export)
            .output()
            .unwrap();
        assert!(exported.status.success(), "{exported:?}");
        assert_eq!(mode_of(&export), 0o600, "umask {umask}: the export");
    }
}

#[test]
fn an_export_is_never_written_through_a_link() {
    let dir = TempDir::new();
    assert!(
        run_pez(dir.path(), &["sequence", "create", "orders"])
            .status
            .success()
    );
    let root_only = dir.path().join("root-only");
    fs::write(&root_only, "root's own\n").unwrap();
    let export = dir.path().join("sequences.json");
    symlink(&root_only, &export).unwrap();

    let output = run_pez(
        dir.path(),
        &[
            "sequence",
            "export",
            "--output",
            &export.display().to_string(),
        ],
    );

    let line = the_error_line(&output);
    assert!(line.contains("sequences.json is a symbolic link"), "{line}");
    assert_eq!(fs::read_to_string(&root_only).unwrap(), "root's own\n");
}

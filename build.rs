//! Stamps the binary with its version: Cargo's, plus `git describe` when
//! built from a git checkout (the original PEZ derived its version from git
//! tags). Outside git (a source tarball) it is Cargo's version alone.

use std::process::Command;

fn main() {
    for path in [".git/HEAD", ".git/refs", ".git/packed-refs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let version = env!("CARGO_PKG_VERSION");
    let described = Command::new("git")
        .args(["describe", "--tags", "--always"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|d| !d.is_empty());
    let full = match &described {
        Some(described) => format!("{version} (git {described})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=PEZ_VERSION={full}");
    println!(
        "cargo:rustc-env=PEZ_GIT_DESCRIBE={}",
        described.unwrap_or_default()
    );
}

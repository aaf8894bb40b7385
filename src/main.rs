//! The `pez` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    pez::cli::main()
}

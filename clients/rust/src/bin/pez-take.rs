//! `pez-take --url URL[,URL...] --sequence NAME --count N [--token T]
//! [--deadline-ms MS]`: prints N numbers of a PEZ sequence, one a line,
//! taken through range leases by a `pez_client::Client`, and one line of
//! statistics on stderr.

use pez_client::Client;
use std::io::{BufWriter, ErrorKind, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: pez-take --url URL[,URL...] --sequence NAME --count N [--token T] [--deadline-ms MS]";

/// The command line, validated.
struct Args {
    urls: Vec<String>,
    sequence: String,
    count: u64,
    token: Option<String>,
    deadline: Duration,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut urls, mut sequence, mut count, mut token, mut deadline) =
        (None, None, None, None, None);
    while let Some(flag) = raw.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (flag.clone(), None),
        };
        let slot = match name.as_str() {
            "--url" => &mut urls,
            "--sequence" => &mut sequence,
            "--count" => &mut count,
            "--token" => &mut token,
            "--deadline-ms" => &mut deadline,
            _ => return Err(format!("unknown argument {flag:?}")),
        };
        let value = match inline.or_else(|| raw.next()) {
            Some(value) => value,
            None => return Err(format!("{name} needs a value")),
        };
        if slot.replace(value).is_some() {
            return Err(format!("{name} given twice"));
        }
    }
    let urls: Vec<String> = urls
        .ok_or("--url is required")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let sequence = sequence.ok_or("--sequence is required")?;
    let count = count.ok_or("--count is required")?;
    let count = count
        .parse::<u64>()
        .map_err(|_| format!("--count must be a whole number from 0; got {count:?}"))?;
    let deadline = match deadline {
        None => Duration::from_secs(10),
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                return Err(format!(
                    "--deadline-ms must be a whole number above 0; got {ms:?}"
                ));
            }
        },
    };
    Ok(Some(Args {
        urls,
        sequence,
        count,
        token,
        deadline,
    }))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(why) => {
            eprintln!("pez-take: {why} ({USAGE})");
            return ExitCode::from(2);
        }
    };
    let mut builder = Client::builder()
        .urls(args.urls)
        .sequence(args.sequence)
        .deadline(args.deadline);
    if let Some(token) = args.token {
        builder = builder.token(token);
    }
    let client = match builder.build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("pez-take: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut taken = 0u64;
    let mut failure = None;
    while taken < args.count {
        // What was handed out is written before any wait for a lease, so a
        // reader sees every number as soon as the client may block (the
        // fault suite measures waits this way).
        let next = match client.next_on_hand() {
            Some(number) => Ok(number),
            None => match out.flush() {
                Ok(()) => client.next(),
                Err(e) => {
                    failure = Some(write_failure(e));
                    break;
                }
            },
        };
        match next {
            Ok(number) => {
                if let Err(e) = writeln!(out, "{number}") {
                    failure = Some(write_failure(e));
                    break;
                }
                taken += 1;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    if let Err(e) = out.flush() {
        failure.get_or_insert_with(|| write_failure(e));
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = client.stats();
    eprintln!(
        "pez-take: {taken} numbers, {} ranges leased in {} leases, {seconds:.3} s, {:.0} numbers/s",
        stats.ranges,
        stats.leases,
        if seconds > 0.0 {
            taken as f64 / seconds
        } else {
            0.0
        }
    );
    match failure {
        None => ExitCode::SUCCESS,
        Some(why) => {
            eprintln!(
                "pez-take: stopped after {taken} of {} numbers: {why}",
                args.count
            );
            ExitCode::FAILURE
        }
    }
}

fn write_failure(e: std::io::Error) -> String {
    if e.kind() == ErrorKind::BrokenPipe {
        "stdout was closed".to_owned()
    } else {
        format!("cannot write to stdout: {e}")
    }
}

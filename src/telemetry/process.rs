//! The standard `process_*` metrics of the Prometheus client libraries
//! (CPU time, memory, file descriptors, start time), read from
//! `/proc/self` at each scrape.
//!
//! The `prometheus` crate has the same collector behind its `process`
//! feature, but that feature pulls in the `procfs` crate (and its own
//! dependencies) for six numbers from three files; reading them here keeps
//! the dependency list as it is (docs/design.md, "Metrics").

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};
use std::sync::Mutex;

/// Collects the `process_*` metrics of this process when gathered.
#[derive(Debug)]
pub struct ProcessCollector {
    cpu: Counter,
    /// The CPU seconds counted so far: a `Counter` only goes up, so each
    /// scrape adds what was used since the last one. A `std` mutex: no
    /// `.await` while it is held.
    cpu_counted: Mutex<f64>,
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    start_time: Gauge,
    descs: Vec<Desc>,
}

/// Bytes of a page and clock ticks per second, as the kernel counts them
/// in `/proc/self/stat`.
struct Units {
    page_size: f64,
    ticks_per_second: f64,
}

fn units() -> Units {
    // SAFETY: sysconf only reads a system constant.
    #[allow(unsafe_code)]
    let (page, ticks) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE),
            libc::sysconf(libc::_SC_CLK_TCK),
        )
    };
    Units {
        page_size: if page > 0 { page as f64 } else { 4096.0 },
        ticks_per_second: if ticks > 0 { ticks as f64 } else { 100.0 },
    }
}

/// What `/proc/self/stat` says, in the units Prometheus wants.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    /// Seconds after boot the process started.
    started_after_boot: f64,
    virtual_bytes: f64,
    resident_bytes: f64,
}

/// Parses `/proc/<pid>/stat`. The command (field 2) is in parentheses and
/// may hold spaces and parentheses: the fields are counted from the last
/// `)`.
fn parse_stat(text: &str, units: &Units) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the command: field 3 (state) is index 0.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) / units.ticks_per_second,
        started_after_boot: field(22)? / units.ticks_per_second,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * units.page_size,
    })
}

/// The boot time, seconds since the epoch, from `/proc/stat`'s `btime`.
fn boot_time(proc_stat: &str) -> Option<f64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of open files from `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<i64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(i64::MAX),
        soft => soft.parse().ok(),
    }
}

impl ProcessCollector {
    /// The collector, its metrics at zero until the first scrape.
    pub fn new() -> Self {
        // Fixed, valid names and help texts: making them cannot fail.
        let int = |name: &str, help: &str| {
            IntGauge::with_opts(Opts::new(name, help)).expect("valid metric")
        };
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))
        .expect("valid metric");
        let start_time = Gauge::with_opts(Opts::new(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        ))
        .expect("valid metric");
        let resident = int(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        );
        let virtual_memory = int(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        );
        let open_fds = int("process_open_fds", "Number of open file descriptors.");
        let max_fds = int(
            "process_max_fds",
            "Maximum number of open file descriptors.",
        );
        let descs = [
            cpu.desc(),
            start_time.desc(),
            resident.desc(),
            virtual_memory.desc(),
            open_fds.desc(),
            max_fds.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Self {
            cpu,
            cpu_counted: Mutex::new(0.0),
            resident,
            virtual_memory,
            open_fds,
            max_fds,
            start_time,
            descs,
        }
    }

    /// Reads `/proc/self` into the metrics. A file that cannot be read
    /// leaves its metrics as they were: a scrape never fails for it.
    fn refresh(&self) {
        let units = units();
        if let Some(stat) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| parse_stat(&text, &units))
        {
            let mut counted = crate::unpoisoned::lock(&self.cpu_counted);
            if stat.cpu_seconds > *counted {
                self.cpu.inc_by(stat.cpu_seconds - *counted);
                *counted = stat.cpu_seconds;
            }
            self.resident.set(stat.resident_bytes as i64);
            self.virtual_memory.set(stat.virtual_bytes as i64);
            if let Some(boot) = std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|text| boot_time(&text))
            {
                self.start_time.set(boot + stat.started_after_boot);
            }
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            // The directory's own descriptor, open while it is read, is
            // counted too, as the Prometheus clients count it.
            self.open_fds.set(fds.count() as i64);
        }
        if let Some(max) = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| max_open_files(&text))
        {
            self.max_fds.set(max);
        }
    }
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        [
            self.cpu.collect(),
            self.start_time.collect(),
            self.resident.collect(),
            self.virtual_memory.collect(),
            self.open_fds.collect(),
            self.max_fds.collect(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITS: Units = Units {
        page_size: 4096.0,
        ticks_per_second: 100.0,
    };

    #[test]
    fn a_stat_line_is_read_past_a_command_with_spaces_and_parentheses() {
        let line = "4242 (pez (a) b) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 9 0 123456 1000000 300 18446744073709551615";
        assert_eq!(
            parse_stat(line, &UNITS),
            Some(Stat {
                cpu_seconds: 3.0,
                started_after_boot: 1234.56,
                virtual_bytes: 1_000_000.0,
                resident_bytes: 300.0 * 4096.0,
            })
        );
        assert_eq!(parse_stat("4242 (pez) S 1", &UNITS), None);
    }

    #[test]
    fn boot_time_and_the_open_files_limit_are_read() {
        assert_eq!(boot_time("cpu  1 2 3\nbtime 1700000000\n"), Some(1.7e9));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), Some(i64::MAX));
    }

    #[test]
    fn this_process_is_measured() {
        let collector = ProcessCollector::new();
        let families = collector.collect();
        assert_eq!(families.len(), 6);
        assert!(collector.resident.get() > 0);
        assert!(collector.open_fds.get() > 0);
        assert!(collector.max_fds.get() >= collector.open_fds.get());
        assert!(collector.start_time.get() > 1.5e9);
    }
}

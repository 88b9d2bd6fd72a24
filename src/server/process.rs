//! The standard process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//! `process_open_fds`, `process_max_fds`, `process_start_time_seconds`, the
//! names every Prometheus client library uses) and `cliq_sync_build_info`.
//!
//! Read from `/proc/self` at scrape time on Linux; elsewhere only the build
//! info is exported. The start time is derived from the boot-time clock
//! rather than `/proc/stat`: the systemd unit's `ProcSubset=pid` hides
//! everything in `/proc` but the process directories.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// Register the build info and, on Linux, the process metrics on `root`
/// (which must have no prefix: `process_*` names are not ours to prefix).
pub fn register(root: &mut Registry) {
    let info = Family::<VersionLabel, Gauge>::default();
    info.get_or_create(&VersionLabel {
        version: env!("CARGO_PKG_VERSION").into(),
    })
    .set(1);
    root.register(
        "cliq_sync_build_info",
        "Always 1; the version label says which cliq-sync is running",
        info,
    );
    #[cfg(target_os = "linux")]
    if let Some(stats) = linux::read() {
        stats.register(root);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::registry::Registry;

    type FCounter = Counter<f64, std::sync::atomic::AtomicU64>;
    type FGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

    pub(super) struct ProcessStats {
        cpu_seconds: f64,
        resident_bytes: i64,
        virtual_bytes: i64,
        open_fds: i64,
        max_fds: Option<i64>,
        start_time_seconds: Option<f64>,
    }

    /// One look at `/proc/self`; `None` when it cannot be read (a scrape
    /// then simply lacks these series rather than failing).
    pub(super) fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_stat(&stat, clock_ticks()?, page_size()?).map(|p| ProcessStats {
            cpu_seconds: p.cpu_seconds,
            resident_bytes: p.resident_bytes,
            virtual_bytes: p.virtual_bytes,
            open_fds: open_fds().unwrap_or(0),
            max_fds: max_fds(),
            start_time_seconds: boot_time().map(|b| b + p.started_after_boot),
        })
    }

    impl ProcessStats {
        pub(super) fn register(self, root: &mut Registry) {
            let cpu = FCounter::default();
            cpu.inc_by(self.cpu_seconds);
            root.register(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                cpu,
            );
            let gauge = |root: &mut Registry, name: &str, help: &str, v: i64| {
                let g = Gauge::<i64>::default();
                g.set(v);
                root.register(name, help, g);
            };
            gauge(
                root,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                self.resident_bytes,
            );
            gauge(
                root,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                self.virtual_bytes,
            );
            gauge(
                root,
                "process_open_fds",
                "Number of open file descriptors",
                self.open_fds,
            );
            if let Some(max) = self.max_fds {
                gauge(
                    root,
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    max,
                );
            }
            if let Some(start) = self.start_time_seconds {
                let g = FGauge::default();
                g.set(start);
                root.register(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds",
                    g,
                );
            }
        }
    }

    #[derive(Debug, PartialEq)]
    pub(super) struct Stat {
        pub cpu_seconds: f64,
        pub resident_bytes: i64,
        pub virtual_bytes: i64,
        pub started_after_boot: f64,
    }

    /// `/proc/self/stat`: the command name (field 2) is in parentheses and
    /// may hold spaces, so fields are counted after the last `)`.
    pub(super) fn parse_stat(stat: &str, ticks: f64, page: i64) -> Option<Stat> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state): field n is f[n - 3].
        let num = |n: usize| f.get(n - 3)?.parse::<f64>().ok();
        Some(Stat {
            cpu_seconds: (num(14)? + num(15)?) / ticks,
            started_after_boot: num(22)? / ticks,
            virtual_bytes: num(23)? as i64,
            resident_bytes: num(24)? as i64 * page,
        })
    }

    fn clock_ticks() -> Option<f64> {
        // SAFETY: sysconf has no preconditions.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        (t > 0).then_some(t as f64)
    }

    fn page_size() -> Option<i64> {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        (p > 0).then_some(p as i64)
    }

    fn open_fds() -> Option<i64> {
        Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as i64)
    }

    fn max_fds() -> Option<i64> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        (rc == 0).then(|| i64::try_from(lim.rlim_cur).unwrap_or(i64::MAX))
    }

    /// Wall-clock time of boot: now minus the time since boot.
    fn boot_time() -> Option<f64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the struct we pass.
        if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
            return None;
        }
        let since_boot = ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs_f64();
        Some(now - since_boot)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn stat_fields_are_counted_after_the_command_name() {
            // A command name with a space and a ')' in it.
            let line = "4242 (cliq (sync) x) S 1 4242 4242 0 -1 4194560 3000 0 0 0 \
                        250 50 0 0 20 0 9 0 123400 104857600 2560 18446744073709551615";
            let s = parse_stat(line, 100.0, 4096).unwrap();
            assert_eq!(
                s,
                Stat {
                    cpu_seconds: 3.0,
                    resident_bytes: 2560 * 4096,
                    virtual_bytes: 104_857_600,
                    started_after_boot: 1234.0,
                }
            );
        }

        #[test]
        fn this_process_reads_plausibly() {
            let p = read().unwrap();
            assert!(p.resident_bytes > 1 << 20);
            assert!(p.open_fds >= 3);
            let start = p.start_time_seconds.unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!(
                start <= now + 1.0 && start > now - 86400.0,
                "{start} vs {now}"
            );
        }
    }
}

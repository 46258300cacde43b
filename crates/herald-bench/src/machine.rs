//! How busy the whole machine was over a phase, from the `cpu` line of
//! `/proc/stat`: every core's time, in the same clock ticks as a process's
//! `/proc/<pid>/stat`, so a process's CPU time is a share of it.

use std::time::Duration;

use crate::postgres::ticks_to_duration;

/// The machine's CPU time so far, summed over every core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineCpu {
    /// Ticks spent running anything (user, nice, system, irq, softirq).
    busy: u64,
    /// Ticks of every kind: busy, idle, waiting on I/O, and stolen by the hypervisor.
    total: u64,
}

impl MachineCpu {
    /// Now, or `None` without a readable `/proc/stat` (not Linux).
    pub fn now() -> Option<Self> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Percent of every core's time since `earlier` that was busy.
    pub fn busy_pct_since(&self, earlier: &Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total).filter(|t| *t > 0)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        Some(busy as f64 * 100.0 / total as f64)
    }

    /// Every core's time since `earlier`: wall time times cores, the whole of
    /// which a process's CPU time is a share.
    pub fn capacity_since(&self, earlier: &Self) -> Option<Duration> {
        Some(ticks_to_duration(self.total.checked_sub(earlier.total)?))
    }
}

/// The first line: `cpu user nice system idle iowait irq softirq steal guest
/// guest_nice`. Guest time is already counted in user and nice, so only the
/// first eight fields add up to the total; idle and iowait are the idle part,
/// and steal (time the hypervisor gave to others) is neither ours nor idle.
fn parse(stat: &str) -> Option<MachineCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields[..] else {
        return None;
    };
    Some(MachineCpu {
        busy: user + nice + system + irq + softirq,
        total: user + nice + system + idle + iowait + irq + softirq + steal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cpu_line_and_leaves_guest_time_out() {
        let stat = "cpu  100 5 50 800 20 3 2 10 40 0\ncpu0 50 2 25 400 10 1 1 5 20 0\n";
        let cpu = parse(stat).expect("a cpu line");
        assert_eq!(
            cpu,
            MachineCpu {
                busy: 160,
                total: 990
            }
        );
    }

    #[test]
    fn busy_percent_is_over_the_interval() {
        let before = MachineCpu {
            busy: 100,
            total: 1_000,
        };
        let after = MachineCpu {
            busy: 250,
            total: 1_200,
        };
        assert_eq!(after.busy_pct_since(&before), Some(75.0));
        assert_eq!(after.capacity_since(&before), Some(Duration::from_secs(2)));
        assert_eq!(before.busy_pct_since(&before), None);
    }

    #[test]
    fn this_machine_has_a_readable_proc_stat() {
        assert!(MachineCpu::now().is_some());
    }
}

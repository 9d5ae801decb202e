//! The clock leases are measured on here: one that keeps counting while the machine is
//! suspended (`CLOCK_BOOTTIME` on Linux). A monotonic clock that stops during a suspend would
//! let a replica wake up believing its lease still runs when the database's has long ended.

/// Nanoseconds on the boot clock: only differences mean anything.
pub(crate) fn boot_nanos() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let clock = rustix::time::ClockId::Boottime;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let clock = rustix::time::ClockId::Monotonic;
    let now = rustix::time::clock_gettime(clock);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(now.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_moves_forward() {
        let a = boot_nanos();
        let b = boot_nanos();
        assert!(a > 0 && b >= a);
    }
}

//! Rate limits for log lines about things a client controls (bad packets, refused requests,
//! floods): per kind, at most `burst` lines per interval, and the next line after a quiet spell
//! carries how many were suppressed. Kinds are few and fixed strings, so the map cannot grow with
//! the traffic.

use std::collections::HashMap;

/// The limiter.
#[derive(Debug)]
pub struct Throttle {
    interval: u64,
    burst: u64,
    /// kind -> (start of the current interval, lines logged in it, lines suppressed since the
    /// last logged one).
    last: HashMap<&'static str, (u64, u64, u64)>,
}

impl Throttle {
    /// At most `burst` lines per kind in each `interval` seconds.
    pub fn new(interval: u64, burst: u64) -> Throttle {
        Throttle {
            interval,
            burst: burst.max(1),
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a line of `kind` may be logged at `now` (seconds), with how many
    /// were suppressed since the last one.
    pub fn allow(&mut self, kind: &'static str, now: u64) -> Option<u64> {
        let entry = self.last.entry(kind).or_insert((0, 0, 0));
        if entry.0 == 0 || now >= entry.0.saturating_add(self.interval) {
            *entry = (now.max(1), 0, entry.2);
        }
        if entry.1 < self.burst {
            entry.1 += 1;
            let suppressed = entry.2;
            entry.2 = 0;
            Some(suppressed)
        } else {
            entry.2 += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_interval_then_the_count_of_what_was_dropped() {
        let mut t = Throttle::new(10, 2);
        assert_eq!(t.allow("a", 100), Some(0));
        assert_eq!(t.allow("a", 101), Some(0));
        assert_eq!(t.allow("a", 102), None);
        assert_eq!(t.allow("a", 103), None);
        assert_eq!(t.allow("b", 103), Some(0), "kinds are separate");
        assert_eq!(t.allow("a", 110), Some(2));
        assert_eq!(t.allow("a", 111), Some(0));
        assert_eq!(t.allow("a", 112), None);
    }
}

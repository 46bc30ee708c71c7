//! The boot timeline. The guest prints `PXRT-T <uptime> <label>` at each step (uptime from
//! /proc/uptime, so it is the guest's own clock); the harness adds the host time at which the line
//! arrived, measured from QEMU's start.

use std::fmt;
use std::time::Duration;

use crate::qemu::Line;

/// The console prefix of a timeline stamp.
pub const STAMP: &str = "PXRT-T ";

/// One step of the boot.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's label.
    pub label: String,
    /// Guest uptime in seconds when the step was reached.
    pub uptime: f64,
    /// Host time since QEMU started when the console line arrived.
    pub host: Duration,
}

/// The steps of one boot in console order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// What the timeline is of.
    pub title: String,
    /// Steps.
    pub steps: Vec<Step>,
}

impl Timeline {
    /// Collect the stamps from console lines; other lines are ignored.
    pub fn from_console(title: &str, lines: &[Line]) -> Timeline {
        let steps = lines
            .iter()
            .filter_map(|line| {
                let rest = &line.text[line.text.find(STAMP)? + STAMP.len()..];
                let (uptime, label) = rest.split_once(' ')?;
                Some(Step {
                    label: label.trim().to_string(),
                    uptime: uptime.parse().ok()?,
                    host: line.at,
                })
            })
            .collect();
        Timeline {
            title: title.to_string(),
            steps,
        }
    }

    /// The step with this label.
    pub fn step(&self, label: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.label == label)
    }
}

impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "boot timeline: {}", self.title)?;
        writeln!(f, "  {:>9} {:>9} {:>8}  step", "guest s", "host s", "delta")?;
        let mut prev = None;
        for s in &self.steps {
            let delta = prev.map(|p| s.uptime - p).unwrap_or(0.0);
            writeln!(
                f,
                "  {:>9.2} {:>9.2} {:>+8.2}  {}",
                s.uptime,
                s.host.as_secs_f64(),
                delta,
                s.label
            )?;
            prev = Some(s.uptime);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ms: u64, text: &str) -> Line {
        Line {
            at: Duration::from_millis(ms),
            text: text.into(),
        }
    }

    #[test]
    fn stamps_are_collected_in_order_and_noise_is_ignored() {
        let t = Timeline::from_console(
            "t",
            &[
                line(10, "[    1.2] random kernel line"),
                line(1500, "PXRT-T 1.41 initramfs-start"),
                line(1600, "\u{1b}[0mPXRT-T 1.68 network up"),
                line(1700, "PXRT-T notanumber bad"),
            ],
        );
        assert_eq!(t.steps.len(), 2);
        assert_eq!(
            t.steps[1],
            Step {
                label: "network up".into(),
                uptime: 1.68,
                host: Duration::from_millis(1600)
            }
        );
        assert!(t.to_string().contains("+0.27  network up"), "{t}");
    }
}

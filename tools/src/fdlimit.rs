//! The descriptor limit (`RLIMIT_NOFILE`): read it, and raise the soft
//! limit to the hard one, through `getrlimit(2)`/`setrlimit(2)` (the
//! `rlimit` crate holds the `unsafe`).
//!
//! # Examples
//!
//! ```
//! let limit = halfclose_tools::fdlimit::raise();
//! assert!(limit.soft.is_some_and(|s| s >= limit.before.unwrap()));
//! ```

use std::fmt;
use std::io;

use rlimit::Resource;

/// `(soft, hard)` limit on open files; `None` stands for unlimited.
pub fn nofile() -> io::Result<(Option<u64>, Option<u64>)> {
    let (soft, hard) = rlimit::getrlimit(Resource::NOFILE)?;
    let finite = |v: u64| (v != rlimit::INFINITY).then_some(v);
    Ok((finite(soft), finite(hard)))
}

/// What became of the descriptor limit; `None` stands for unlimited (or,
/// in all three, for a limit that could not be read).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The soft limit before [`raise`].
    pub before: Option<u64>,
    /// The soft limit now.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
        write!(f, "soft {}, hard {}", show(self.soft), show(self.hard))?;
        if self.before != self.soft {
            write!(f, " (raised from {})", show(self.before))?;
        } else if self.soft != self.hard {
            f.write_str(" (could not raise it)")?;
        }
        Ok(())
    }
}

/// Raise the soft limit on open files to the hard one; what it was and is
/// (read back). A failure is logged and leaves the limit as it was.
pub fn raise() -> Limit {
    let Ok((soft, hard)) = nofile() else {
        return Limit::default();
    };
    let mut limit = Limit {
        before: soft,
        soft,
        hard,
    };
    if soft != hard {
        let to = hard.unwrap_or(rlimit::INFINITY);
        if let Err(e) = rlimit::setrlimit(Resource::NOFILE, to, to) {
            log::warn!("cannot raise the descriptor limit to {to}: {e}");
        }
        if let Ok((soft, _)) = nofile() {
            limit.soft = soft;
        }
    }
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_as_raised_or_not() {
        let l = |before, soft, hard| Limit { before, soft, hard }.to_string();
        assert_eq!(
            l(Some(1024), Some(4096), Some(4096)),
            "soft 4096, hard 4096 (raised from 1024)"
        );
        assert_eq!(
            l(Some(1024), Some(1024), None),
            "soft 1024, hard unlimited (could not raise it)"
        );
        assert_eq!(l(None, None, None), "soft unlimited, hard unlimited");
    }
}

//! Resource limits: the rlimits a sandbox's command gets ([`Resource`], set with
//! [`Sandbox::rlimit`](crate::Sandbox::rlimit)) and why a sandbox ended ([`EndReason`]).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// A resource limit of setrlimit(2) that [`Sandbox::rlimit`](crate::Sandbox::rlimit) sets
/// in the command's process just before its exec; the command's children inherit it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `RLIMIT_NOFILE`: one more than the highest fd number the command may open (EMFILE
    /// beyond). Never above fs.nr_open (`/proc/sys/fs/nr_open`).
    Nofile,
    /// `RLIMIT_NPROC`: processes (threads) of the command's real uid. Since Linux 5.14 it is
    /// counted per user namespace (the processes of that uid in the sandbox's user namespace
    /// and below); it does not bind a command whose uid is host root (or that holds
    /// CAP_SYS_RESOURCE or CAP_SYS_ADMIN in the initial user namespace).
    Nproc,
    /// `RLIMIT_CPU`: CPU seconds of each process; SIGXCPU at the soft limit (then once a
    /// second), SIGKILL at the hard limit.
    Cpu,
    /// `RLIMIT_FSIZE`: the largest file a process may write, in bytes; SIGXFSZ beyond.
    Fsize,
    /// `RLIMIT_CORE`: the largest core dump, in bytes (0: none).
    Core,
    /// `RLIMIT_AS`: the address space of each process, in bytes (ENOMEM beyond).
    As,
    /// `RLIMIT_STACK`: the main thread's stack, in bytes.
    Stack,
    /// `RLIMIT_MEMLOCK`: bytes of memory that may be locked (mlock, io_uring rings).
    Memlock,
}

impl Resource {
    /// The value of "no limit" (`RLIM_INFINITY`) for [`Sandbox::rlimit`](crate::Sandbox::rlimit).
    pub const INFINITY: u64 = u64::MAX;

    /// Every resource, in the order of the wire codes.
    pub(crate) const ALL: [Resource; 8] = [
        Resource::Nofile,
        Resource::Nproc,
        Resource::Cpu,
        Resource::Fsize,
        Resource::Core,
        Resource::As,
        Resource::Stack,
        Resource::Memlock,
    ];

    /// The kernel's name, as `/proc/PID/limits` and error messages show it.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Nofile => "RLIMIT_NOFILE",
            Resource::Nproc => "RLIMIT_NPROC",
            Resource::Cpu => "RLIMIT_CPU",
            Resource::Fsize => "RLIMIT_FSIZE",
            Resource::Core => "RLIMIT_CORE",
            Resource::As => "RLIMIT_AS",
            Resource::Stack => "RLIMIT_STACK",
            Resource::Memlock => "RLIMIT_MEMLOCK",
        }
    }

    /// The resource of a name as prlimit(1) and `/proc/PID/limits` spell it, without regard
    /// to case: `nofile`, `nproc`, `cpu`, `fsize`, `core`, `as`, `stack`, `memlock`, with or
    /// without the `RLIMIT_` prefix. `None` for any other name.
    ///
    /// ```
    /// use nsbox::Resource;
    /// assert_eq!(Resource::from_name("nofile"), Some(Resource::Nofile));
    /// assert_eq!(Resource::from_name("RLIMIT_CPU"), Some(Resource::Cpu));
    /// assert_eq!(Resource::from_name("rss"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Resource> {
        let upper = name.to_ascii_uppercase();
        let short = upper.strip_prefix("RLIMIT_").unwrap_or(&upper);
        Resource::ALL
            .into_iter()
            .find(|r| r.name().strip_prefix("RLIMIT_") == Some(short))
    }

    /// A `NAME=SOFT[:HARD]` setting as command-line tools take it (nsrun's and the
    /// orchestrator example's `--rlimit`): NAME as [`from_name`](Self::from_name) takes it,
    /// each value a number or `unlimited`. Without HARD the hard limit is SOFT, but for cpu
    /// SOFT+1: at the hard limit the kernel sends SIGKILL, which must not come with the soft
    /// limit's SIGXCPU. The error says what is wrong, for the tool to prefix with its option.
    ///
    /// ```
    /// use nsbox::Resource;
    /// assert_eq!(Resource::parse_setting("nofile=64"), Ok((Resource::Nofile, 64, 64)));
    /// assert_eq!(Resource::parse_setting("cpu=1"), Ok((Resource::Cpu, 1, 2)));
    /// assert!(Resource::parse_setting("fsize=2:1").is_err());
    /// ```
    pub fn parse_setting(s: &str) -> Result<(Resource, u64, u64), String> {
        let (name, values) = s.split_once('=').ok_or_else(|| {
            format!("expected NAME=SOFT[:HARD] (as nofile=1024 or cpu=60:70), got {s:?}")
        })?;
        let resource = Resource::from_name(name).ok_or_else(|| {
            format!("unknown limit {name:?} (nofile, nproc, cpu, fsize, core, as, stack, memlock)")
        })?;
        let value = |v: &str| match v {
            "unlimited" | "infinity" => Ok(Resource::INFINITY),
            _ => v
                .parse::<u64>()
                .map_err(|_| format!("{v:?} is not a number or `unlimited`")),
        };
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (value(soft)?, value(hard)?),
            None => {
                let soft = value(values)?;
                let hard = if resource == Resource::Cpu && soft != Resource::INFINITY {
                    soft.saturating_add(1)
                } else {
                    soft
                };
                (soft, hard)
            }
        };
        if soft > hard {
            return Err(format!(
                "the soft limit {} is above the hard limit {}",
                show(soft),
                show(hard)
            ));
        }
        Ok((resource, soft, hard))
    }

    /// The wire code (its index in [`ALL`](Self::ALL)).
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The resource of a wire code.
    pub(crate) fn from_code(c: u8) -> Option<Resource> {
        Resource::ALL.get(c as usize).copied()
    }

    /// rustix's name for it.
    pub(crate) fn rustix(self) -> rustix::process::Resource {
        use rustix::process::Resource as R;
        match self {
            Resource::Nofile => R::Nofile,
            Resource::Nproc => R::Nproc,
            Resource::Cpu => R::Cpu,
            Resource::Fsize => R::Fsize,
            Resource::Core => R::Core,
            Resource::As => R::As,
            Resource::Stack => R::Stack,
            Resource::Memlock => R::Memlock,
        }
    }
}

/// A limit's value for messages: `unlimited` for [`Resource::INFINITY`].
/// Check the rlimits a sandbox or a Supervisor was given: a soft limit above its hard one is
/// bad input, named.
pub(crate) fn check(rlimits: &[(Resource, u64, u64)]) -> std::io::Result<()> {
    for &(r, soft, hard) in rlimits {
        if soft > hard {
            return Err(crate::Error::invalid(
                crate::Step::Rlimit,
                format!(
                    "{}: the soft limit {} is above the hard limit {}",
                    r.name(),
                    show(soft),
                    show(hard)
                ),
            )
            .into());
        }
    }
    Ok(())
}

pub(crate) fn show(v: u64) -> String {
    if v == Resource::INFINITY {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

/// Why a sandbox ended, told from its status and what nsbox and the kernel recorded:
/// [`Child::end_reason`](crate::Child::end_reason) and [`Output::end_reason`](crate::Output::end_reason).
///
/// The first that applies wins, in this order: [`Killed`](Self::Killed),
/// [`TimedOut`](Self::TimedOut), [`OutOfMemory`](Self::OutOfMemory),
/// [`CpuLimit`](Self::CpuLimit), [`FileSizeLimit`](Self::FileSizeLimit),
/// [`ProcessLimit`](Self::ProcessLimit), then the command's own
/// [`Exited`](Self::Exited) or [`Signaled`](Self::Signaled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The command exited by itself with this code.
    Exited(i32),
    /// The command died by this signal, which neither nsbox nor a limit explains (its own
    /// `abort()`, a SIGSEGV, a signal from another process).
    Signaled(i32),
    /// The sandbox's [timeout](crate::Sandbox::timeout) fired while the command ran.
    TimedOut,
    /// The kernel's OOM killer killed a process of the sandbox's cgroup (memory.events
    /// `oom_kill`), and the command did not succeed. Needs a [cgroup](crate::Sandbox::cgroup).
    OutOfMemory,
    /// A fork failed at the cgroup's pids.max (pids.events `max`), and the command did not
    /// succeed. Needs a [cgroup](crate::Sandbox::cgroup).
    ProcessLimit,
    /// The command died by SIGXCPU: its RLIMIT_CPU soft limit ([`Resource::Cpu`]). (At the
    /// hard limit the kernel sends SIGKILL, which reads as `Signaled(9)`: keep the soft
    /// limit below the hard one.)
    CpuLimit,
    /// The command died by SIGXFSZ: it wrote past its RLIMIT_FSIZE ([`Resource::Fsize`]).
    FileSizeLimit,
    /// The orchestrator killed the sandbox ([`Child::kill`](crate::Child::kill),
    /// [`start_kill`](crate::Child::start_kill), a drop, or the orchestrator's death) while
    /// the command ran.
    Killed,
}

/// What the reason is decided from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EndFacts {
    pub timed_out: bool,
    pub killed: bool,
    pub oom_kills: u64,
    pub pids_max_hits: u64,
}

impl EndReason {
    pub(crate) fn of(status: ExitStatus, f: EndFacts) -> EndReason {
        let failed = !status.success();
        if f.killed {
            EndReason::Killed
        } else if f.timed_out {
            EndReason::TimedOut
        } else if failed && f.oom_kills > 0 {
            EndReason::OutOfMemory
        } else if status.signal() == Some(libc::SIGXCPU) {
            EndReason::CpuLimit
        } else if status.signal() == Some(libc::SIGXFSZ) {
            EndReason::FileSizeLimit
        } else if failed && f.pids_max_hits > 0 {
            EndReason::ProcessLimit
        } else if let Some(sig) = status.signal() {
            EndReason::Signaled(sig)
        } else {
            EndReason::Exited(status.code().unwrap_or(-1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_decodes_from_its_code() {
        for r in Resource::ALL {
            assert_eq!(Resource::from_code(r.code()), Some(r));
        }
        assert_eq!(Resource::from_code(8), None);
    }

    #[test]
    fn every_resource_is_found_by_its_name() {
        for r in Resource::ALL {
            assert_eq!(Resource::from_name(r.name()), Some(r));
            let short = r
                .name()
                .strip_prefix("RLIMIT_")
                .unwrap()
                .to_ascii_lowercase();
            assert_eq!(Resource::from_name(&short), Some(r));
        }
        for bad in ["", "RLIMIT_", "rss", "nofiles", "RLIMIT_RLIMIT_CPU"] {
            assert_eq!(Resource::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_reason_follows_the_order() {
        let st = |raw| ExitStatus::from_raw(raw);
        let none = EndFacts::default();
        assert_eq!(EndReason::of(st(3 << 8), none), EndReason::Exited(3));
        assert_eq!(EndReason::of(st(11), none), EndReason::Signaled(11));
        assert_eq!(EndReason::of(st(libc::SIGXCPU), none), EndReason::CpuLimit);
        assert_eq!(
            EndReason::of(st(libc::SIGXFSZ | 0x80), none),
            EndReason::FileSizeLimit
        );
        let oom = EndFacts {
            oom_kills: 1,
            pids_max_hits: 1,
            ..none
        };
        assert_eq!(EndReason::of(st(9), oom), EndReason::OutOfMemory);
        assert_eq!(EndReason::of(st(0), oom), EndReason::Exited(0));
        let pids = EndFacts {
            pids_max_hits: 2,
            ..none
        };
        assert_eq!(EndReason::of(st(1 << 8), pids), EndReason::ProcessLimit);
        let both = EndFacts {
            timed_out: true,
            killed: true,
            ..oom
        };
        assert_eq!(EndReason::of(st(9), both), EndReason::Killed);
        let to = EndFacts {
            timed_out: true,
            ..oom
        };
        assert_eq!(EndReason::of(st(15), to), EndReason::TimedOut);
    }
}

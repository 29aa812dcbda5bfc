//! What the Supervisor's main command gives up before its exec: the same restrictions as a
//! sandbox's command (a new session on request, the rlimits, the syscall filters, the
//! capabilities), prepared here and applied in std's pre_exec hook, after the fork.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::caps::Capabilities;
use crate::error::Error;
use crate::limits::Resource;
use crate::proto::report::{Report, ReportSender};
use crate::seccomp::{Insn, SeccompProgram};
use crate::steps::{Step, StepError};

/// The restrictions of a [`Supervisor`](super::supervisor::Supervisor)'s command.
#[derive(Clone, Debug)]
pub(crate) struct Restrict {
    pub new_session: bool,
    pub capabilities: Capabilities,
    pub default_filter: bool,
    pub user_namespaces: bool,
    pub filters: Vec<SeccompProgram>,
    /// (resource, soft, hard), one per resource, in the order given.
    pub rlimits: Vec<(Resource, u64, u64)>,
}

impl Default for Restrict {
    fn default() -> Self {
        Restrict {
            new_session: false,
            capabilities: Capabilities::none(),
            default_filter: true,
            user_namespaces: false,
            filters: Vec::new(),
            rlimits: Vec::new(),
        }
    }
}

impl Restrict {
    /// Compile the filters now and make `cmd` apply everything between its fork and exec.
    /// The returned pipe holds the failed step, if one failed (std passes only an errno on).
    pub(crate) fn apply(&self, cmd: &mut Command) -> io::Result<FailedStep> {
        crate::limits::check(&self.rlimits)?;
        let (report_r, report_w) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )
        .map_err(|e| io::Error::from(crate::Error::os(crate::Step::Pipe, e.raw_os_error())))?;
        let mut filters: Vec<Vec<Insn>> = Vec::new();
        if self.default_filter {
            filters.push(crate::seccomp::default_filter(self.user_namespaces)?.to_vec());
        }
        filters.extend(
            self.filters
                .iter()
                .map(|p| crate::seccomp::insns_of(p.as_bytes())),
        );
        let keep = self.capabilities.mask();
        let new_session = self.new_session;
        let rlimits = self.rlimits.clone();
        let hook = move || -> io::Result<()> {
            // Async-signal-safe from here: raw system calls on what was prepared above; an
            // error is reported on the pipe and passed to std as a bare errno (no allocation).
            let fail = |e: StepError| {
                ReportSender(report_w.as_fd()).send(Report::Failed(e));
                io::Error::from_raw_os_error(e.errno)
            };
            if new_session {
                rustix::process::setsid()
                    .map_err(|e| fail(StepError::new(Step::Setsid, e.raw_os_error())))?;
            }
            // The rlimits before the filters (a caller's filter may refuse prlimit64) and
            // before the capability drop (a privileged caller may raise a hard limit), as in
            // a sandbox's command.
            crate::steps::rlimits::set_rlimits(&rlimits).map_err(fail)?;
            for f in &filters {
                crate::steps::restrict::install_filter(f).map_err(fail)?;
            }
            if let Some(keep) = keep {
                crate::steps::restrict::drop_capabilities(keep).map_err(fail)?;
            }
            Ok(())
        };
        // SAFETY: the hook makes only async-signal-safe system calls on memory prepared
        // before the fork (the compiled filters, moved into the closure), and allocates
        // nothing on success. On failure, std reports the error's errno to the parent.
        unsafe { cmd.pre_exec(hook) };
        Ok(FailedStep(report_r))
    }
}

impl Restrict {
    /// The error of a step that failed in the hook, naming the rlimit that could not be set.
    pub(crate) fn step_error(&self, e: StepError) -> Error {
        match (e.step, self.rlimits.get(e.detail as usize)) {
            (Step::Rlimit, Some(&(r, soft, hard))) => Error::from(e).with_context(format!(
                "{} (soft {}, hard {})",
                r.name(),
                crate::limits::show(soft),
                crate::limits::show(hard)
            )),
            _ => Error::from(e),
        }
    }
}

/// Where the pre_exec hook reports a failed step.
pub(crate) struct FailedStep(OwnedFd);

impl FailedStep {
    /// The step that failed, once spawn has returned an error (nothing is waiting after a
    /// successful exec: the pipe is close-on-exec).
    pub(crate) fn take(&self) -> Option<StepError> {
        match crate::proto::report::recv_blocking(self.0.as_fd()) {
            Some(Report::Failed(e)) => Some(e),
            _ => None,
        }
    }
}

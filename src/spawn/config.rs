//! The sandbox's configuration as data: what [`Sandbox`](super::Sandbox)'s builder methods
//! set, and what [`prepare`](super::prepare) reads.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::hook::SetupHook;
use super::stdio::Stdio;
use crate::error::Error;
use crate::ns::Namespaces;
use crate::signals::SignalSet;
use crate::steps::{Step, StepError};

#[derive(Clone)]
pub(crate) struct Config {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env_clear: bool,
    pub env: BTreeMap<OsString, Option<OsString>>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<Stdio>,
    pub stdout: Option<Stdio>,
    pub stderr: Option<Stdio>,
    pub fds: Vec<(RawFd, Arc<OwnedFd>)>,
    pub kill_on_drop: bool,
    pub namespaces: Namespaces,
    pub timeout: Option<Duration>,
    pub kill_after: Duration,
    pub die_with_parent: bool,
    pub wait_all: bool,
    pub no_new_privs: bool,
    pub new_session: bool,
    pub hook: Option<Arc<dyn SetupHook>>,
    pub use_launcher: bool,
    pub capabilities: crate::caps::Capabilities,
    pub default_filter: bool,
    pub user_namespaces: bool,
    pub filters: Vec<crate::seccomp::SeccompProgram>,
    /// `None`: the default view ([`Filesystem::sandbox_default`](crate::Filesystem::sandbox_default)).
    pub filesystem: Option<crate::fs::Filesystem>,
    /// Most bytes of each stream that output() and wait_with_output() keep.
    pub output_limit: usize,
    pub ignored_signals: SignalSet,
    pub blocked_signals: SignalSet,
    pub exit_grace: Duration,
    /// The command's rlimits (resource, soft, hard), one per resource.
    pub rlimits: Vec<(crate::limits::Resource, u64, u64)>,
    /// The sandbox's cgroup v2 leaf, if any.
    pub cgroup: Option<crate::cgroup::Cgroup>,
}

impl Config {
    pub(crate) fn new(program: &OsStr) -> Self {
        Config {
            program: program.to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            fds: Vec::new(),
            kill_on_drop: true,
            namespaces: Namespaces::new(),
            timeout: None,
            kill_after: Duration::from_secs(5),
            die_with_parent: true,
            wait_all: false,
            no_new_privs: true,
            new_session: true,
            hook: None,
            use_launcher: true,
            capabilities: crate::caps::Capabilities::none(),
            default_filter: true,
            user_namespaces: false,
            filters: Vec::new(),
            filesystem: None,
            output_limit: super::Sandbox::DEFAULT_OUTPUT_LIMIT,
            ignored_signals: SignalSet::empty(),
            blocked_signals: SignalSet::empty(),
            exit_grace: Duration::ZERO,
            rlimits: Vec::new(),
            cgroup: None,
        }
    }

    /// The error a failed step of the init becomes, with this sandbox's paths (the program, the working directory, the namespace file).
    pub(crate) fn step_error(&self, e: StepError, fs: Option<&crate::fs::FsSpec>) -> io::Error {
        match e.step {
            Step::Filesystem => match fs {
                Some(fs) => fs.error(e),
                None => e.into(),
            },
            Step::Exec => Error::from(e).with_path(&self.program).into(),
            Step::Chdir => match &self.cwd {
                Some(d) => Error::from(e).with_path(d).into(),
                None => e.into(),
            },
            Step::Rlimit => match self.rlimits.get(e.detail as usize) {
                Some(&(r, soft, hard)) => Error::from(e)
                    .with_context(format!(
                        "{} (soft {}, hard {})",
                        r.name(),
                        crate::limits::show(soft),
                        crate::limits::show(hard)
                    ))
                    .into(),
                None => e.into(),
            },
            Step::Join => match self.namespaces.joins.get(e.detail as usize) {
                Some(j) => j.error(e.errno),
                None => e.into(),
            },
            _ => e.into(),
        }
    }
}

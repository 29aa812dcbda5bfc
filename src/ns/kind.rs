//! The kinds of namespace and sets of them, and the propagation of `/`: plain data that
//! every layer uses (it imports nothing of the crate).

use std::fmt;

/// One kind of Linux namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// User namespace (`CLONE_NEWUSER`): ids and capabilities.
    User,
    /// Mount namespace (`CLONE_NEWNS`).
    Mount,
    /// UTS namespace (`CLONE_NEWUTS`): hostname and domain name.
    Uts,
    /// IPC namespace (`CLONE_NEWIPC`): System V IPC and POSIX message queues.
    Ipc,
    /// Network namespace (`CLONE_NEWNET`).
    Net,
    /// PID namespace (`CLONE_NEWPID`).
    Pid,
    /// Cgroup namespace (`CLONE_NEWCGROUP`).
    Cgroup,
}

impl Namespace {
    /// Every kind, in the order nsbox creates them (user first, so that the others are owned by it; pid last but cgroup).
    pub const ALL: [Namespace; 7] = [
        Namespace::User,
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Cgroup,
    ];

    /// The `CLONE_NEW*` flag of this kind.
    pub(crate) fn clone_flag(self) -> u32 {
        (match self {
            Namespace::User => libc::CLONE_NEWUSER,
            Namespace::Mount => libc::CLONE_NEWNS,
            Namespace::Uts => libc::CLONE_NEWUTS,
            Namespace::Ipc => libc::CLONE_NEWIPC,
            Namespace::Net => libc::CLONE_NEWNET,
            Namespace::Pid => libc::CLONE_NEWPID,
            Namespace::Cgroup => libc::CLONE_NEWCGROUP,
        }) as u32
    }

    /// The sysctl file that limits how many namespaces of this kind a user may own.
    pub(crate) fn limit_file(self) -> String {
        let name = match self {
            Namespace::Mount => "mnt",
            k => k.proc_name(),
        };
        format!("/proc/sys/user/max_{name}_namespaces")
    }

    /// The name used in `/proc/PID/ns/` (`user`, `mnt`, `uts`, `ipc`, `net`, `pid`, `cgroup`).
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::User => "user",
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// Parse a kind from its `/proc/PID/ns` name or its long name (`mount`, `network`).
    pub fn from_name(name: &str) -> Option<Namespace> {
        Some(match name {
            "user" => Namespace::User,
            "mnt" | "mount" => Namespace::Mount,
            "uts" => Namespace::Uts,
            "ipc" => Namespace::Ipc,
            "net" | "network" => Namespace::Net,
            "pid" => Namespace::Pid,
            "cgroup" => Namespace::Cgroup,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Namespace::Mount => "mount",
            other => other.proc_name(),
        })
    }
}

/// A set of namespace kinds.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NamespaceSet(u8);

impl NamespaceSet {
    /// The empty set.
    pub const fn empty() -> Self {
        NamespaceSet(0)
    }

    /// Add a kind.
    pub fn insert(&mut self, kind: Namespace) {
        self.0 |= kind.bit();
    }

    /// Remove a kind.
    pub fn remove(&mut self, kind: Namespace) {
        self.0 &= !kind.bit();
    }

    /// Whether `kind` is in the set.
    pub fn contains(self, kind: Namespace) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The set as bits (one per kind, in [`Namespace::ALL`] order), for the wire.
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    /// A set from [`bits`](Self::bits); `None` when a bit names no kind.
    pub(crate) fn from_bits(bits: u8) -> Option<Self> {
        (bits >> Namespace::ALL.len() == 0).then_some(NamespaceSet(bits))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in creation order.
    pub fn iter(self) -> impl Iterator<Item = Namespace> {
        Namespace::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }

    /// The union of the kinds' `CLONE_NEW*` flags.
    pub(crate) fn clone_flags(self) -> u32 {
        self.iter().fold(0, |acc, k| acc | k.clone_flag())
    }
}

impl FromIterator<Namespace> for NamespaceSet {
    fn from_iter<I: IntoIterator<Item = Namespace>>(iter: I) -> Self {
        let mut set = NamespaceSet::empty();
        for k in iter {
            set.insert(k);
        }
        set
    }
}

impl fmt::Debug for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for NamespaceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for k in self.iter() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}")?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// Propagation given to `/` in a new mount namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Recursively slave: mount events flow in from the host, never out (the default).
    #[default]
    Slave,
    /// Recursively private: no events in either direction.
    Private,
}

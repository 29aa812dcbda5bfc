//! The capabilities a sandboxed command keeps (see [`Capabilities`]).

use std::fmt;
use std::str::FromStr;

macro_rules! capabilities {
    ($($(#[$doc:meta])* $name:ident = $n:literal $text:literal,)*) => {
        /// A Linux capability (capabilities(7)), by the kernel's number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Capability {
            $($(#[$doc])* $name = $n,)*
        }

        impl Capability {
            /// Every capability nsbox knows, in the kernel's order.
            pub const ALL: &'static [Capability] = &[$(Capability::$name),*];

            /// The kernel's name, as `CAP_NET_ADMIN`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Capability::$name => $text,)*
                }
            }
        }
    };
}

capabilities! {
    /// CAP_CHOWN.
    Chown = 0 "CAP_CHOWN",
    /// CAP_DAC_OVERRIDE.
    DacOverride = 1 "CAP_DAC_OVERRIDE",
    /// CAP_DAC_READ_SEARCH.
    DacReadSearch = 2 "CAP_DAC_READ_SEARCH",
    /// CAP_FOWNER.
    Fowner = 3 "CAP_FOWNER",
    /// CAP_FSETID.
    Fsetid = 4 "CAP_FSETID",
    /// CAP_KILL.
    Kill = 5 "CAP_KILL",
    /// CAP_SETGID.
    Setgid = 6 "CAP_SETGID",
    /// CAP_SETUID.
    Setuid = 7 "CAP_SETUID",
    /// CAP_SETPCAP.
    Setpcap = 8 "CAP_SETPCAP",
    /// CAP_LINUX_IMMUTABLE.
    LinuxImmutable = 9 "CAP_LINUX_IMMUTABLE",
    /// CAP_NET_BIND_SERVICE.
    NetBindService = 10 "CAP_NET_BIND_SERVICE",
    /// CAP_NET_BROADCAST.
    NetBroadcast = 11 "CAP_NET_BROADCAST",
    /// CAP_NET_ADMIN.
    NetAdmin = 12 "CAP_NET_ADMIN",
    /// CAP_NET_RAW.
    NetRaw = 13 "CAP_NET_RAW",
    /// CAP_IPC_LOCK.
    IpcLock = 14 "CAP_IPC_LOCK",
    /// CAP_IPC_OWNER.
    IpcOwner = 15 "CAP_IPC_OWNER",
    /// CAP_SYS_MODULE.
    SysModule = 16 "CAP_SYS_MODULE",
    /// CAP_SYS_RAWIO.
    SysRawio = 17 "CAP_SYS_RAWIO",
    /// CAP_SYS_CHROOT.
    SysChroot = 18 "CAP_SYS_CHROOT",
    /// CAP_SYS_PTRACE.
    SysPtrace = 19 "CAP_SYS_PTRACE",
    /// CAP_SYS_PACCT.
    SysPacct = 20 "CAP_SYS_PACCT",
    /// CAP_SYS_ADMIN.
    SysAdmin = 21 "CAP_SYS_ADMIN",
    /// CAP_SYS_BOOT.
    SysBoot = 22 "CAP_SYS_BOOT",
    /// CAP_SYS_NICE.
    SysNice = 23 "CAP_SYS_NICE",
    /// CAP_SYS_RESOURCE.
    SysResource = 24 "CAP_SYS_RESOURCE",
    /// CAP_SYS_TIME.
    SysTime = 25 "CAP_SYS_TIME",
    /// CAP_SYS_TTY_CONFIG.
    SysTtyConfig = 26 "CAP_SYS_TTY_CONFIG",
    /// CAP_MKNOD.
    Mknod = 27 "CAP_MKNOD",
    /// CAP_LEASE.
    Lease = 28 "CAP_LEASE",
    /// CAP_AUDIT_WRITE.
    AuditWrite = 29 "CAP_AUDIT_WRITE",
    /// CAP_AUDIT_CONTROL.
    AuditControl = 30 "CAP_AUDIT_CONTROL",
    /// CAP_SETFCAP.
    Setfcap = 31 "CAP_SETFCAP",
    /// CAP_MAC_OVERRIDE.
    MacOverride = 32 "CAP_MAC_OVERRIDE",
    /// CAP_MAC_ADMIN.
    MacAdmin = 33 "CAP_MAC_ADMIN",
    /// CAP_SYSLOG.
    Syslog = 34 "CAP_SYSLOG",
    /// CAP_WAKE_ALARM.
    WakeAlarm = 35 "CAP_WAKE_ALARM",
    /// CAP_BLOCK_SUSPEND.
    BlockSuspend = 36 "CAP_BLOCK_SUSPEND",
    /// CAP_AUDIT_READ.
    AuditRead = 37 "CAP_AUDIT_READ",
    /// CAP_PERFMON.
    Perfmon = 38 "CAP_PERFMON",
    /// CAP_BPF.
    Bpf = 39 "CAP_BPF",
    /// CAP_CHECKPOINT_RESTORE.
    CheckpointRestore = 40 "CAP_CHECKPOINT_RESTORE",
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Capability {
    type Err = std::io::Error;

    /// `CAP_NET_ADMIN`, `cap_net_admin` or `net_admin`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        Capability::ALL
            .iter()
            .copied()
            .find(|c| c.name() == full)
            .ok_or_else(|| {
                crate::Error::invalid(
                    crate::Step::Input,
                    format!("unknown capability {s:?} (expected a name such as CAP_NET_ADMIN)"),
                )
                .into()
            })
    }
}

/// The capabilities a sandboxed command keeps across its exec.
///
/// By default it keeps none, as with bubblewrap: root inside a user namespace (or a root
/// orchestrator's sandbox without one) cannot mount, change the network, load modules, trace
/// processes or override file permissions. The init drops them from the ambient,
/// inheritable, permitted and effective sets of the command just before its exec; no exec
/// brings them back (root's, a setuid-root program's, a file capability's): with
/// no_new_privs (a [`Sandbox`](crate::Sandbox)'s default) the kernel refuses every gain,
/// without it the bounding set is emptied too. Kept capabilities go into the ambient set too,
/// so that they survive the exec of a program run as a non-root uid.
///
/// [`Capabilities::all`] keeps whatever the process has (nsbox's behaviour before this
/// default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capabilities(Option<u64>);

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::none()
    }
}

impl Capabilities {
    /// Keep no capability (the default).
    pub fn none() -> Self {
        Capabilities(Some(0))
    }

    /// Keep every capability the process has: drop nothing.
    pub fn all() -> Self {
        Capabilities(None)
    }

    /// Also keep `cap` (no effect on [`Capabilities::all`]).
    pub fn with(self, cap: Capability) -> Self {
        Capabilities(self.0.map(|m| m | (1 << cap as u32)))
    }

    /// Whether `cap` is kept.
    pub fn contains(self, cap: Capability) -> bool {
        self.0.is_none_or(|m| m & (1 << cap as u32) != 0)
    }

    /// The mask of kept capabilities; `None`: keep everything.
    pub(crate) fn mask(self) -> Option<u64> {
        self.0
    }
}

impl FromIterator<Capability> for Capabilities {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter()
            .fold(Capabilities::none(), Capabilities::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_every_spelling_and_unknown_ones_are_refused() {
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>().unwrap(), *c);
            let short = c.name().trim_start_matches("CAP_").to_ascii_lowercase();
            assert_eq!(short.parse::<Capability>().unwrap(), *c);
        }
        assert!("CAP_FLY".parse::<Capability>().is_err());
        assert_eq!(Capability::ALL.len(), 41);
        assert_eq!(Capability::CheckpointRestore as u32, 40);
    }

    #[test]
    fn sets_keep_what_they_are_given() {
        let s: Capabilities = [Capability::NetAdmin, Capability::Chown]
            .into_iter()
            .collect();
        assert!(s.contains(Capability::NetAdmin) && s.contains(Capability::Chown));
        assert!(!s.contains(Capability::SysAdmin));
        assert_eq!(s.mask(), Some((1 << 12) | 1));
        assert!(!Capabilities::default().contains(Capability::Chown));
        assert!(Capabilities::all().contains(Capability::SysAdmin));
        assert_eq!(
            Capabilities::all().with(Capability::Kill),
            Capabilities::all()
        );
    }
}

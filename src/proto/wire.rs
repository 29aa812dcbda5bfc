//! The launcher's wire format: a [`Spec`] as length-prefixed fields in native endianness
//! (both ends are the same program on the same machine), and the launcher's answer.

use std::ffi::CString;
use std::time::Duration;

use super::spec::{Restrictions, Spec};
use crate::fs::{Base, FsSpec, Kind, PreparedOp};
use crate::ns::kind::{NamespaceSet, Propagation};

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_ne_bytes());
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        self.bool(b.is_some());
        if let Some(b) = b {
            self.bytes(b);
        }
    }
    fn opt_millis(&mut self, v: Option<Duration>) {
        self.bool(v.is_some());
        self.millis(v.unwrap_or_default());
    }
    fn millis(&mut self, d: Duration) {
        self.u64(super::spec::millis(d));
    }
    fn cstrs(&mut self, v: &[CString]) {
        self.u64(v.len() as u64);
        for c in v {
            self.bytes(c.as_bytes());
        }
    }
    fn ints(&mut self, v: impl ExactSizeIterator<Item = i64>) {
        self.u64(v.len() as u64);
        for x in v {
            self.u64(x as u64);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::try_from(self.u64()?).ok()?;
        Some(self.take(n)?.to_vec())
    }
    fn opt_bytes(&mut self) -> Option<Option<Vec<u8>>> {
        Some(if self.bool()? {
            Some(self.bytes()?)
        } else {
            None
        })
    }
    fn millis(&mut self) -> Option<Duration> {
        Some(Duration::from_millis(self.u64()?))
    }
    fn opt_millis(&mut self) -> Option<Option<Duration>> {
        let some = self.bool()?;
        let v = self.millis()?;
        Some(some.then_some(v))
    }
    fn cstrs(&mut self) -> Option<Vec<CString>> {
        let n = usize::try_from(self.u64()?).ok()?;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(CString::new(self.bytes()?).ok()?);
        }
        Some(v)
    }
    fn ints<T: TryFrom<i64>>(&mut self) -> Option<Vec<T>> {
        let n = usize::try_from(self.u64()?).ok()?;
        let mut v = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            v.push(T::try_from(self.u64()? as i64).ok()?);
        }
        Some(v)
    }
}

fn propagation_code(p: Option<Propagation>) -> u8 {
    match p {
        None => 0,
        Some(Propagation::Slave) => 1,
        Some(Propagation::Private) => 2,
    }
}

fn propagation_of(code: u8) -> Option<Option<Propagation>> {
    Some(match code {
        0 => None,
        1 => Some(Propagation::Slave),
        2 => Some(Propagation::Private),
        _ => return None,
    })
}

/// The request bytes for `s`.
pub(crate) fn encode(s: &Spec) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(4096));
    w.u8(s.namespaces.bits());
    w.cstrs(&s.argv);
    w.cstrs(&s.envp);
    w.cstrs(&s.exec_paths);
    w.opt_bytes(s.cwd.as_ref().map(|c| c.as_bytes()));
    w.bool(s.cwd_soft);
    w.opt_bytes(s.hostname.as_deref());
    w.opt_bytes(s.domainname.as_deref());
    w.bool(s.id_maps.is_some());
    if let Some((uid, gid)) = &s.id_maps {
        w.bytes(uid);
        w.bytes(gid);
    }
    w.u8(propagation_code(s.propagation));
    for b in [s.mount_proc, s.lock_mounts] {
        w.bool(b);
    }
    w.ints(s.join_types.iter().map(|&t| t as i64));
    w.ints(s.targets.iter().map(|&t| t as i64));
    for b in [
        s.wait_for_go,
        s.die_with_parent,
        s.wait_all,
        s.no_new_privs,
        s.new_session,
    ] {
        w.bool(b);
    }
    w.opt_millis(s.timeout);
    w.millis(s.grace);
    let r = &s.restrict;
    w.bool(r.protect_kernel);
    w.bool(r.keep_caps.is_some());
    w.u64(r.keep_caps.unwrap_or(0));
    w.bool(r.default_filter);
    w.bool(r.user_namespaces);
    w.u64(r.filters.len() as u64);
    for f in &r.filters {
        w.bytes(f);
    }
    w.bool(s.fs.is_some());
    if let Some(fs) = &s.fs {
        w.u8(base_code(fs.base));
        w.cstrs(&fs.sources);
        w.bytes(fs.staging.as_bytes());
        w.bool(fs.make_private);
        w.u64(fs.ops.len() as u64);
        for op in &fs.ops {
            w.u8(op.kind as u8);
            w.u64(op.source as i64 as u64);
            w.bytes(op.dst.as_bytes());
            w.u64(u64::from(op.flags));
            w.u64(u64::from(op.mode));
            w.bytes(&op.data);
        }
    }
    w.u64(s.ignored_signals);
    w.u64(s.blocked_signals);
    w.millis(s.exit_grace);
    w.u64(s.rlimits.len() as u64);
    for &(res, soft, hard) in &s.rlimits {
        w.u8(res.code());
        w.u64(soft);
        w.u64(hard);
    }
    w.bool(s.cgroup);
    w.0
}

/// The spec in `buf`; `None` for anything but exactly one well-formed spec.
pub(crate) fn decode(buf: &[u8]) -> Option<Spec> {
    let mut r = Reader(buf);
    let spec = Spec {
        namespaces: NamespaceSet::from_bits(r.u8()?)?,
        argv: r.cstrs()?,
        envp: r.cstrs()?,
        exec_paths: r.cstrs()?,
        cwd: match r.opt_bytes()? {
            Some(b) => Some(CString::new(b).ok()?),
            None => None,
        },
        cwd_soft: r.bool()?,
        hostname: r.opt_bytes()?,
        domainname: r.opt_bytes()?,
        id_maps: if r.bool()? {
            Some((r.bytes()?, r.bytes()?))
        } else {
            None
        },
        propagation: propagation_of(r.u8()?)?,
        mount_proc: r.bool()?,
        lock_mounts: r.bool()?,
        join_types: r.ints()?,
        targets: r.ints()?,
        wait_for_go: r.bool()?,
        die_with_parent: r.bool()?,
        wait_all: r.bool()?,
        no_new_privs: r.bool()?,
        new_session: r.bool()?,
        timeout: r.opt_millis()?,
        grace: r.millis()?,
        restrict: restrictions(&mut r)?,
        fs: filesystem(&mut r)?,
        ignored_signals: r.u64()?,
        blocked_signals: r.u64()?,
        exit_grace: r.millis()?,
        rlimits: rlimits(&mut r)?,
        cgroup: r.bool()?,
    };
    r.0.is_empty().then_some(spec)
}

fn rlimits(r: &mut Reader<'_>) -> Option<Vec<(crate::limits::Resource, u64, u64)>> {
    let n = usize::try_from(r.u64()?).ok()?;
    let mut v = Vec::with_capacity(n.min(16));
    for _ in 0..n {
        v.push((
            crate::limits::Resource::from_code(r.u8()?)?,
            r.u64()?,
            r.u64()?,
        ));
    }
    Some(v)
}

fn base_code(b: Base) -> u8 {
    match b {
        Base::Host => 0,
        Base::HostReadOnly => 1,
        Base::Empty => 2,
    }
}

fn filesystem(r: &mut Reader<'_>) -> Option<Option<FsSpec>> {
    if !r.bool()? {
        return Some(None);
    }
    let base = match r.u8()? {
        0 => Base::Host,
        1 => Base::HostReadOnly,
        2 => Base::Empty,
        _ => return None,
    };
    let sources = r.cstrs()?;
    let staging = CString::new(r.bytes()?).ok()?;
    let make_private = r.bool()?;
    let n = usize::try_from(r.u64()?).ok()?;
    let mut ops = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let kind = Kind::from_code(r.u8()?)?;
        let source = i32::try_from(r.u64()? as i64).ok()?;
        if source >= 0 && source as usize >= sources.len() {
            return None;
        }
        ops.push(PreparedOp {
            kind,
            source,
            dst: CString::new(r.bytes()?).ok()?,
            flags: u32::try_from(r.u64()?).ok()?,
            mode: u32::try_from(r.u64()?).ok()?,
            data: r.bytes()?,
        });
    }
    Some(Some(FsSpec {
        base,
        sources,
        ops,
        staging,
        make_private,
    }))
}

fn restrictions(r: &mut Reader<'_>) -> Option<Restrictions> {
    let protect_kernel = r.bool()?;
    let some_caps = r.bool()?;
    let caps = r.u64()?;
    let default_filter = r.bool()?;
    let user_namespaces = r.bool()?;
    let n = usize::try_from(r.u64()?).ok()?;
    let mut filters = Vec::with_capacity(n.min(16));
    for _ in 0..n {
        let f = r.bytes()?;
        crate::seccomp::SeccompProgram::from_bytes(f.clone()).ok()?;
        filters.push(f);
    }
    Some(Restrictions {
        protect_kernel,
        keep_caps: some_caps.then_some(caps),
        default_filter,
        user_namespaces,
        filters,
    })
}

/// The launcher's answer to a request: the init's pid, or the clone's errno (the init's
/// pidfd travels beside it as SCM_RIGHTS on success).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Cloned(i32),
    Failed(i32),
    /// The clone fallback made the init (the orchestrator's child, CLONE_PARENT) but could
    /// not get its pidfd: the launcher SIGKILLed it, and the orchestrator must reap it.
    Unreaped {
        pid: i32,
        errno: i32,
    },
}

pub(crate) const ANSWER_LEN: usize = 8;

impl Answer {
    pub(crate) fn encode(self) -> [u8; ANSWER_LEN] {
        let (pid, errno) = match self {
            Answer::Cloned(pid) => (pid, 0),
            Answer::Failed(e) => (0, e),
            Answer::Unreaped { pid, errno } => (pid, errno),
        };
        let mut out = [0u8; ANSWER_LEN];
        out[..4].copy_from_slice(&pid.to_ne_bytes());
        out[4..].copy_from_slice(&errno.to_ne_bytes());
        out
    }

    pub(crate) fn decode(b: &[u8]) -> Option<Answer> {
        if b.len() != ANSWER_LEN {
            return None;
        }
        let pid = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let errno = i32::from_ne_bytes([b[4], b[5], b[6], b[7]]);
        match (pid, errno) {
            (p, 0) if p > 0 => Some(Answer::Cloned(p)),
            (0, e) if e > 0 => Some(Answer::Failed(e)),
            (pid, errno) if pid > 0 && errno > 0 => Some(Answer::Unreaped { pid, errno }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::kind::Namespace;

    fn sample() -> Spec {
        Spec {
            namespaces: [Namespace::User, Namespace::Pid, Namespace::Mount]
                .into_iter()
                .collect(),
            argv: vec![CString::new("sh").unwrap(), CString::new("-c").unwrap()],
            envp: vec![CString::new("A=b").unwrap()],
            exec_paths: vec![CString::new("/bin/sh").unwrap()],
            cwd: Some(CString::new("/tmp").unwrap()),
            cwd_soft: true,
            hostname: Some(b"h".to_vec()),
            domainname: None,
            id_maps: Some((b"0 1000 1\n".to_vec(), b"0 1000 1\n".to_vec())),
            propagation: Some(Propagation::Private),
            mount_proc: true,
            lock_mounts: true,
            join_types: vec![0, 0x4000_0000],
            targets: vec![0, 1, 2, 7],
            wait_for_go: true,
            die_with_parent: true,
            wait_all: false,
            no_new_privs: true,
            new_session: true,
            timeout: Some(Duration::from_millis(1500)),
            grace: Duration::from_secs(5),
            restrict: Restrictions {
                protect_kernel: false,
                keep_caps: Some(1 << 12),
                default_filter: true,
                user_namespaces: true,
                filters: vec![vec![6, 0, 0, 0, 0, 0, 0xff, 0x7f]],
            },
            fs: Some({
                let mut fs = crate::fs::Filesystem::empty();
                fs.ro_bind("/", "/host")
                    .tmpfs("/tmp")
                    .symlink("usr/bin", "/bin");
                fs.prepare().unwrap()
            }),
            ignored_signals: 1 << (libc::SIGHUP - 1),
            blocked_signals: 1 << 39,
            exit_grace: Duration::from_millis(250),
            rlimits: vec![
                (crate::limits::Resource::Nofile, 64, 128),
                (crate::limits::Resource::Cpu, 1, u64::MAX),
            ],
            cgroup: true,
        }
    }

    #[test]
    fn a_spec_survives_encoding() {
        let s = sample();
        assert_eq!(decode(&encode(&s)), Some(s));
        assert_eq!(decode(&encode(&Spec::default())), Some(Spec::default()));
    }

    #[test]
    fn truncated_or_padded_requests_are_rejected_without_panicking() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
    }

    #[test]
    fn answers_survive_encoding() {
        for a in [
            Answer::Cloned(42),
            Answer::Failed(libc::ENOSPC),
            Answer::Unreaped {
                pid: 42,
                errno: libc::ENOSYS,
            },
        ] {
            assert_eq!(Answer::decode(&a.encode()), Some(a));
        }
        assert_eq!(Answer::decode(&[0; ANSWER_LEN]), None);
        assert_eq!(Answer::decode(&[1; 3]), None);
    }
}

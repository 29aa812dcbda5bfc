//! Syscall filters: the default deny list, compiled to a classic BPF program once per
//! process, and programs given by the caller.
//!
//! The default filter refuses a short list of system calls with EPERM and allows everything
//! else. It is a deny list on purpose: a build action may run any compiler, linker or test,
//! and an allow list would break some of them. What it refuses, and why (compared with
//! Docker's default profile and flatpak's filter, which refuse the same calls):
//!
//! - `ioctl` with TIOCSTI (push bytes into a terminal's input queue) or TIOCLINUX (the same
//!   and more on a virtual console): typing commands into the user's shell from a sandbox
//!   that still holds a terminal fd (CVE-2017-5226, bubblewrap). The number is compared on
//!   its low 32 bits, as the kernel does (`ioctl`'s `cmd` is an `unsigned int`).
//! - `add_key`, `request_key`, `keyctl`: the kernel keyring is not namespaced; a sandbox
//!   could read or plant keys of the user.
//! - `kexec_load`, `kexec_file_load`: load a new kernel (root only, but a root orchestrator's
//!   sandbox without a user namespace is root).
//! - `open_by_handle_at`: opens files by handle, bypassing the mount view (the "shocker"
//!   container escape).
//! - `perf_event_open`: kernel profiling, a rich source of kernel bugs and side channels.
//! - `userfaultfd`: stalls kernel accesses to user memory at will, the classic tool of
//!   kernel race exploits.
//! - `syslog`: reads and clears the kernel log.
//! - `acct`: switches process accounting on the host.
//! - `quotactl`, `quotactl_fd`: the host's disk quotas.
//! - `uselib`: an obsolete way to load a library, with a history of bugs.
//! - `modify_ldt` (x86): segment descriptors, a history of bugs, needed only by 16-bit code.
//! - `mbind`, `get_mempolicy`, `set_mempolicy`, `set_mempolicy_home_node`,
//!   `migrate_pages`, `move_pages`: NUMA placement; `migrate_pages` and `move_pages` act on
//!   other processes. Programs that try them handle EPERM.
//! - `io_uring_setup`, `io_uring_enter`, `io_uring_register` (ENOSYS, so that programs fall
//!   back as on an old kernel): io_uring's operations never pass a syscall filter (an openat
//!   with a setuid mode would get through), and it has been a steady source of kernel bugs;
//!   Docker's default profile refuses it too.
//! - `personality` with any persona but PER_LINUX, PER_LINUX32, UNAME26 and their
//!   combination (and the 0xffffffff query): the other flags (READ_IMPLIES_EXEC,
//!   ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO...) weaken the command's own exploit mitigations.
//!
//! On x86_64 the filter also covers the 32-bit system calls (`int 0x80`, and 32-bit
//! programs), with their own numbers; x32 system calls are refused altogether (ENOSYS: the
//! x32 ABI is off in most kernels, and its numbers would otherwise bypass the list). A
//! system call of any other architecture kills the process.

use std::io;
use std::sync::OnceLock;

/// One BPF instruction (`struct sock_filter`).
pub(crate) type Insn = libc::sock_filter;

const fn stmt(code: u32, k: u32) -> Insn {
    Insn {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u32, k: u32, jt: u8, jf: u8) -> Insn {
    Insn {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

const LD_W_ABS: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ_K: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGE_K: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const RET_K: u32 = libc::BPF_RET | libc::BPF_K;
const JSET_K: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const JA: u32 = libc::BPF_JMP | libc::BPF_JA;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low 32 bits of argument `i`.
const fn arg_lo(i: u32) -> u32 {
    let base = 16 + 8 * i;
    if cfg!(target_endian = "little") {
        base
    } else {
        base + 4
    }
}

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

/// What a rule refuses.
#[derive(Clone, Copy)]
enum Refuse {
    /// Every call.
    Always,
    /// Calls whose argument `arg` (low 32 bits) is one of the values.
    ArgIn(u32, &'static [u32]),
    /// Calls whose argument `arg` (low 32 bits) is none of the values.
    ArgNotIn(u32, &'static [u32]),
    /// Calls whose argument `arg` (low 32 bits) has any of the bits.
    ArgHasBits(u32, u32),
    /// Every call, with this errno (ENOSYS makes callers fall back, as for clone3).
    AlwaysErrno(i32),
}

/// The ioctls a sandbox may not make: terminal injection, and USERFAULTFD_IOC_NEW, which
/// makes a userfaultfd through /dev/userfaultfd (the same object as the refused syscall).
#[allow(clippy::unnecessary_cast)]
const REFUSED_IOCTLS: &[u32] = &[
    libc::TIOCSTI as u32,
    0x541C, // TIOCLINUX
    0xAA00, // USERFAULTFD_IOC_NEW
];
const CLONE_NEWUSER: u32 = 0x1000_0000;
/// The personas `personality` may set (and the query).
const PERSONAS: &[u32] = &[0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

/// The default list, by name, with each name's number on the native and (x86_64) the
/// 32-bit ABI. `None`: the call does not exist there.
struct Rule {
    native: Option<i64>,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    i386: Option<u32>,
    refuse: Refuse,
}

/// New user namespaces: unshare and clone with CLONE_NEWUSER (EPERM), clone3 (ENOSYS: its
/// flags are in memory a filter cannot read; glibc and others fall back to clone).
fn user_namespace_rules() -> Vec<Rule> {
    use Refuse::*;
    let r = |native: i64, i386: u32, refuse| Rule {
        native: Some(native),
        i386: Some(i386),
        refuse,
    };
    vec![
        r(libc::SYS_unshare, 310, ArgHasBits(0, CLONE_NEWUSER)),
        r(libc::SYS_clone, 120, ArgHasBits(0, CLONE_NEWUSER)),
        r(libc::SYS_clone3, 435, AlwaysErrno(libc::ENOSYS)),
    ]
}

/// Modes with the setuid or setgid bit: a file the command makes setuid would run with its
/// owner's rights outside the sandbox (with root mapped to host root, as real root).
const SET_ID: u32 = 0o6000;

/// The calls that set a file's mode, refused with a setuid or setgid bit in it: chmod,
/// fchmod, fchmodat, fchmodat2, and creating a file with open, openat, creat, mknod or
/// mknodat. openat2
/// takes its mode in memory a filter cannot read: ENOSYS, so that callers fall back to openat.
fn set_id_rules() -> Vec<Rule> {
    use Refuse::*;
    let r = |native: Option<i64>, i386: Option<u32>, refuse| Rule {
        native,
        i386,
        refuse,
    };
    #[allow(unused_mut)]
    let mut v = vec![
        r(Some(libc::SYS_fchmod), Some(94), ArgHasBits(1, SET_ID)),
        r(Some(libc::SYS_fchmodat), Some(306), ArgHasBits(2, SET_ID)),
        r(Some(452), Some(452), ArgHasBits(2, SET_ID)), // fchmodat2
        r(Some(libc::SYS_openat), Some(295), ArgHasBits(3, SET_ID)),
        r(
            Some(libc::SYS_openat2),
            Some(437),
            AlwaysErrno(libc::ENOSYS),
        ),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        r(Some(libc::SYS_chmod), Some(15), ArgHasBits(1, SET_ID)),
        r(Some(libc::SYS_creat), Some(8), ArgHasBits(1, SET_ID)),
        r(Some(libc::SYS_open), Some(5), ArgHasBits(2, SET_ID)),
        r(Some(libc::SYS_mknod), Some(14), ArgHasBits(1, SET_ID)),
    ]);
    v.push(r(Some(libc::SYS_mknodat), Some(297), ArgHasBits(2, SET_ID)));
    v
}

fn default_rules() -> Vec<Rule> {
    use Refuse::*;
    let r = |native: Option<i64>, i386: Option<u32>, refuse| Rule {
        native,
        i386,
        refuse,
    };
    #[cfg(target_arch = "x86_64")]
    let arch_only = vec![
        r(Some(libc::SYS_uselib), Some(86), Always),
        r(Some(libc::SYS_modify_ldt), Some(123), Always),
        r(Some(libc::SYS_kexec_file_load), None, Always),
    ];
    #[cfg(not(target_arch = "x86_64"))]
    let arch_only = vec![r(Some(libc::SYS_kexec_file_load), None, Always)];
    let mut rules = vec![
        r(Some(libc::SYS_ioctl), Some(54), ArgIn(1, REFUSED_IOCTLS)),
        r(Some(libc::SYS_add_key), Some(286), Always),
        r(Some(libc::SYS_request_key), Some(287), Always),
        r(Some(libc::SYS_keyctl), Some(288), Always),
        r(Some(libc::SYS_kexec_load), Some(283), Always),
        r(Some(libc::SYS_open_by_handle_at), Some(342), Always),
        r(Some(libc::SYS_perf_event_open), Some(336), Always),
        r(Some(libc::SYS_userfaultfd), Some(374), Always),
        r(Some(libc::SYS_syslog), Some(103), Always),
        r(Some(libc::SYS_acct), Some(51), Always),
        r(Some(libc::SYS_quotactl), Some(131), Always),
        r(Some(libc::SYS_quotactl_fd), Some(443), Always),
        r(Some(libc::SYS_mbind), Some(274), Always),
        r(Some(libc::SYS_get_mempolicy), Some(275), Always),
        r(Some(libc::SYS_set_mempolicy), Some(276), Always),
        r(Some(libc::SYS_set_mempolicy_home_node), Some(450), Always),
        r(Some(libc::SYS_migrate_pages), Some(294), Always),
        r(Some(libc::SYS_move_pages), Some(317), Always),
        r(
            Some(libc::SYS_personality),
            Some(136),
            ArgNotIn(0, PERSONAS),
        ),
        // io_uring: its operations (openat with a mode, among them) never pass the filter;
        // ENOSYS, so that programs fall back to plain system calls as on an old kernel.
        r(
            Some(libc::SYS_io_uring_setup),
            Some(425),
            AlwaysErrno(libc::ENOSYS),
        ),
        r(
            Some(libc::SYS_io_uring_enter),
            Some(426),
            AlwaysErrno(libc::ENOSYS),
        ),
        r(
            Some(libc::SYS_io_uring_register),
            Some(427),
            AlwaysErrno(libc::ENOSYS),
        ),
    ];
    rules.extend(arch_only);
    rules.extend(set_id_rules());
    rules
}

/// Where a jump of a section goes: the next instruction, or a label of the section.
#[derive(Clone, Copy, PartialEq)]
enum To {
    Next,
    Label(usize),
}

/// A section's code before its jumps are resolved: each instruction with the targets of its
/// true and false branches (conditional jumps only).
#[derive(Default)]
struct Asm {
    code: Vec<(Insn, To, To)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }
    fn stmt(&mut self, code: u32, k: u32) {
        self.code.push((stmt(code, k), To::Next, To::Next));
    }
    fn jump(&mut self, code: u32, k: u32, t: To, f: To) {
        self.code.push((jump(code, k, 0, 0), t, f));
    }
    /// The instructions, every jump resolved to its forward offset. `None` if one is out of
    /// reach of classic BPF's 8-bit offsets (the sections are far shorter than that).
    fn finish(self) -> Option<Vec<Insn>> {
        let offset = |at: usize, to: To| -> Option<u8> {
            match to {
                To::Next => Some(0),
                To::Label(l) => u8::try_from(self.labels[l]?.checked_sub(at + 1)?).ok(),
            }
        };
        let mut out = Vec::with_capacity(self.code.len());
        for (at, &(mut insn, t, f)) in self.code.iter().enumerate() {
            insn.jt = offset(at, t)?;
            insn.jf = offset(at, f)?;
            out.push(insn);
        }
        Some(out)
    }
}

/// The section for one ABI: load the number, then a binary search over the rules' numbers
/// whose leaves are short chains of comparisons, all jumping to a few shared returns.
///
/// The kernel converts and compiles a program at install, at a cost that grows with its
/// length; then it runs it once per system call number and ABI (to cache the numbers it
/// allows whatever the arguments), and again on every call whose answer depends on an
/// argument. A chain of ~40 rules with a return each (218 instructions) cost about 160 us to
/// install; the search keeps both the program and every number's path short.
fn emit_section(rules: impl Iterator<Item = (u32, Refuse)>, x32: bool) -> Option<Vec<Insn>> {
    let mut rules: Vec<(u32, Refuse)> = rules.collect();
    rules.sort_by_key(|&(nr, _)| nr);
    debug_assert!(
        rules.windows(2).all(|w| w[0].0 != w[1].0),
        "one rule per number"
    );
    let mut asm = Asm::default();
    let ret = Returns {
        allow: asm.label(),
        deny: asm.label(),
        enosys: asm.label(),
    };
    asm.stmt(LD_W_ABS, NR);
    if x32 {
        // x32 numbers have bit 30 set; refuse them all.
        asm.jump(JGE_K, 0x4000_0000, To::Label(ret.enosys), To::Next);
    }
    let mut bodies = Vec::new();
    emit_search(&mut asm, &rules, &ret, &mut bodies);
    for (label, refuse) in bodies {
        asm.bind(label);
        emit_body(&mut asm, refuse, &ret);
    }
    asm.bind(ret.allow);
    asm.stmt(RET_K, ALLOW);
    asm.bind(ret.deny);
    asm.stmt(RET_K, errno(libc::EPERM));
    asm.bind(ret.enosys);
    asm.stmt(RET_K, errno(libc::ENOSYS));
    asm.finish()
}

/// The shared returns of a section.
struct Returns {
    allow: usize,
    deny: usize,
    enosys: usize,
}

/// Rules per leaf of the search: a leaf's chain is at most this long.
const LEAF_RULES: usize = 4;

/// A subtree of the search over `rules` (sorted by number), entered with the number in the
/// accumulator. A rule that looks at an argument jumps to a body emitted after the search
/// (its label and rule pushed to `bodies`).
fn emit_search(
    asm: &mut Asm,
    rules: &[(u32, Refuse)],
    ret: &Returns,
    bodies: &mut Vec<(usize, Refuse)>,
) {
    if rules.len() <= LEAF_RULES {
        for (i, &(nr, refuse)) in rules.iter().enumerate() {
            let hit = match refuse {
                Refuse::Always => ret.deny,
                Refuse::AlwaysErrno(libc::ENOSYS) => ret.enosys,
                _ => {
                    let body = asm.label();
                    bodies.push((body, refuse));
                    body
                }
            };
            let miss = if i + 1 == rules.len() {
                To::Label(ret.allow)
            } else {
                To::Next
            };
            asm.jump(JEQ_K, nr, To::Label(hit), miss);
        }
        if rules.is_empty() {
            asm.jump(JEQ_K, 0, To::Label(ret.allow), To::Label(ret.allow));
        }
        return;
    }
    let (low, high) = rules.split_at(rules.len() / 2);
    let high_start = asm.label();
    asm.jump(JGE_K, high[0].0, To::Label(high_start), To::Next);
    emit_search(asm, low, ret, bodies);
    asm.bind(high_start);
    emit_search(asm, high, ret, bodies);
}

/// The part of a rule that looks at an argument; it ends in a return either way.
fn emit_body(asm: &mut Asm, refuse: Refuse, ret: &Returns) {
    let (allow, deny) = (To::Label(ret.allow), To::Label(ret.deny));
    match refuse {
        Refuse::ArgHasBits(arg, bits) => {
            asm.stmt(LD_W_ABS, arg_lo(arg));
            asm.jump(JSET_K, bits, deny, allow);
        }
        Refuse::ArgIn(arg, values) | Refuse::ArgNotIn(arg, values) => {
            let (hit, miss) = match refuse {
                Refuse::ArgIn(..) => (deny, allow),
                _ => (allow, deny),
            };
            asm.stmt(LD_W_ABS, arg_lo(arg));
            for (i, &v) in values.iter().enumerate() {
                let next = if i + 1 == values.len() {
                    miss
                } else {
                    To::Next
                };
                asm.jump(JEQ_K, v, hit, next);
            }
        }
        Refuse::Always => asm.stmt(RET_K, errno(libc::EPERM)),
        Refuse::AlwaysErrno(e) => asm.stmt(RET_K, errno(e)),
    }
}

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64
#[cfg(target_arch = "x86_64")]
const I386_ARCH: u32 = 0x4000_0003; // AUDIT_ARCH_I386

/// `section` for the ABI `arch`, entered with the arch in the accumulator; other arches go
/// past it.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn emit_arch(out: &mut Vec<Insn>, arch: u32, section: Vec<Insn>) {
    match u8::try_from(section.len()) {
        Ok(skip) => out.push(jump(JEQ_K, arch, 0, skip)),
        Err(_) => {
            out.push(jump(JEQ_K, arch, 1, 0));
            out.push(stmt(JA, section.len() as u32));
        }
    }
    out.extend(section);
}

/// Compile the default filter. `None` on an architecture it does not know.
fn compile_default(user_namespaces: bool) -> Option<Vec<Insn>> {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    {
        let mut rules = default_rules();
        if !user_namespaces {
            rules.extend(user_namespace_rules());
        }
        let native = emit_section(
            rules
                .iter()
                .filter_map(|r| Some((u32::try_from(r.native?).ok()?, r.refuse))),
            cfg!(target_arch = "x86_64"),
        )?;
        let mut out = vec![stmt(LD_W_ABS, ARCH)];
        emit_arch(&mut out, NATIVE_ARCH, native);
        #[cfg(target_arch = "x86_64")]
        {
            let compat = emit_section(
                rules.iter().filter_map(|r| Some((r.i386?, r.refuse))),
                false,
            )?;
            emit_arch(&mut out, I386_ARCH, compat);
        }
        out.push(stmt(RET_K, KILL));
        Some(out)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        None
    }
}

/// The default filter, compiled once per process; `user_namespaces`: the command may make
/// new user namespaces.
pub(crate) fn default_filter(user_namespaces: bool) -> io::Result<&'static [Insn]> {
    static STRICT: OnceLock<Option<Vec<Insn>>> = OnceLock::new();
    static NESTED: OnceLock<Option<Vec<Insn>>> = OnceLock::new();
    let cell = if user_namespaces { &NESTED } else { &STRICT };
    cell.get_or_init(|| compile_default(user_namespaces))
        .as_deref()
        .ok_or_else(|| {
            crate::Error::invalid(
                crate::Step::Seccomp,
                "nsbox has no default syscall filter for this architecture (or could not \
                 compile it); turn it off with Sandbox::default_syscall_filter(false)",
            )
            .into()
        })
}

/// The largest program the kernel takes (BPF_MAXINSNS).
const MAX_INSNS: usize = 4096;

/// A classic BPF seccomp program of the caller's: an array of `struct sock_filter` (8 bytes
/// each, native endianness), as bubblewrap's `--seccomp FD` reads it and as libseccomp's
/// `seccomp_export_bpf` writes it. It is installed after the default filter (when that is
/// on), just before the command's exec; the kernel runs every installed filter and takes the
/// most restrictive answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompProgram(pub(crate) Vec<u8>);

impl SeccompProgram {
    /// The program in `bytes`. Fails (ErrorKind InvalidInput) when it is empty, not a whole
    /// number of instructions, or longer than the kernel takes (4096 instructions).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> io::Result<Self> {
        let bytes = bytes.into();
        let n = bytes.len() / 8;
        if bytes.is_empty() || bytes.len() % 8 != 0 || n > MAX_INSNS {
            return Err(crate::Error::invalid(
                crate::Step::Input,
                format!(
                    "a seccomp program is 1 to {MAX_INSNS} instructions of 8 bytes; got {} bytes",
                    bytes.len()
                ),
            )
            .into());
        }
        Ok(SeccompProgram(bytes))
    }

    /// The program as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Decode a program's bytes (checked by [`SeccompProgram::from_bytes`] or the wire decoder).
pub(crate) fn insns_of(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

/// Encode instructions as bytes (the inverse of [`insns_of`]).
#[cfg(test)]
pub(crate) fn bytes_of(insns: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for i in insns {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

#[cfg(test)]
// The ioctl numbers' types differ between architectures.
#[allow(clippy::unnecessary_cast)]
mod tests {
    use super::*;

    /// A classic BPF interpreter for the subset the compiler emits, to check the program's
    /// answers without installing it.
    fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            pc += 1;
            match code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                JEQ_K | JGE_K | JSET_K => {
                    let hit = match code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
                JA => pc += i.k as usize,
                RET_K => return i.k,
                _ => panic!("unexpected instruction {code:#x}"),
            }
        }
    }

    fn native(nr: i64, args: [u64; 6]) -> u32 {
        run(default_filter(false).unwrap(), NATIVE_ARCH, nr as u32, args)
    }

    #[test]
    fn the_default_refuses_its_list_and_allows_the_rest() {
        let deny = errno(libc::EPERM);
        for r in default_rules() {
            if let (Some(nr), Refuse::Always) = (r.native, r.refuse) {
                assert_eq!(native(nr, [0; 6]), deny, "syscall {nr}");
            }
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
        ] {
            assert_eq!(native(nr, [0; 6]), ALLOW, "syscall {nr}");
        }
    }

    #[test]
    fn ioctl_is_refused_only_for_terminal_injection_on_the_low_32_bits() {
        let deny = errno(libc::EPERM);
        let tiocsti = libc::TIOCSTI as u64;
        assert_eq!(native(libc::SYS_ioctl, [0, tiocsti, 0, 0, 0, 0]), deny);
        assert_eq!(native(libc::SYS_ioctl, [0, 0x541C, 0, 0, 0, 0]), deny);
        // High bits set: the kernel truncates cmd to 32 bits, so must the filter.
        assert_eq!(
            native(
                libc::SYS_ioctl,
                [0, tiocsti | 0xdead_0000_0000_0000, 0, 0, 0, 0]
            ),
            deny
        );
        assert_eq!(
            native(libc::SYS_ioctl, [0, libc::TCGETS as u64, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            native(libc::SYS_ioctl, [0, libc::TIOCGWINSZ as u64, 0, 0, 0, 0]),
            ALLOW
        );
    }

    #[test]
    fn personality_takes_only_the_default_personas() {
        let deny = errno(libc::EPERM);
        for p in PERSONAS {
            assert_eq!(
                native(libc::SYS_personality, [u64::from(*p), 0, 0, 0, 0, 0]),
                ALLOW
            );
        }
        for p in [
            0x0040000u64, /* ADDR_NO_RANDOMIZE */
            0x0400000,    /* READ_IMPLIES_EXEC */
        ] {
            assert_eq!(native(libc::SYS_personality, [p, 0, 0, 0, 0, 0]), deny);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_32_bit_abi_is_filtered_with_its_own_numbers_and_x32_is_refused() {
        let prog = default_filter(false).unwrap();
        let deny = errno(libc::EPERM);
        let tiocsti = libc::TIOCSTI as u64;
        assert_eq!(run(prog, I386_ARCH, 54, [0, tiocsti, 0, 0, 0, 0]), deny);
        assert_eq!(run(prog, I386_ARCH, 288, [0; 6]), deny, "keyctl");
        // i386's 16 is lchown, not ioctl; 248 is io_submit... neither is refused.
        assert_eq!(run(prog, I386_ARCH, 16, [0, tiocsti, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(prog, I386_ARCH, 3, [0; 6]), ALLOW, "read");
        assert_eq!(
            run(prog, NATIVE_ARCH, 0x4000_0000 | 514, [0; 6]),
            errno(libc::ENOSYS)
        );
        assert_eq!(
            run(prog, 0x1234, 0, [0; 6]),
            KILL,
            "an unknown architecture"
        );
    }

    #[test]
    fn programs_survive_bytes_and_bad_lengths_are_refused() {
        let prog = default_filter(false).unwrap();
        let bytes = bytes_of(prog);
        let back = insns_of(
            SeccompProgram::from_bytes(bytes.clone())
                .unwrap()
                .as_bytes(),
        );
        assert_eq!(bytes_of(&back), bytes);
        for bad in [0, 7, 9, 8 * 4097] {
            assert!(
                SeccompProgram::from_bytes(vec![0u8; bad]).is_err(),
                "{bad} bytes"
            );
        }
    }

    #[test]
    fn new_user_namespaces_and_the_userfaultfd_device_are_refused_unless_allowed() {
        let strict = default_filter(false).unwrap();
        let nested = default_filter(true).unwrap();
        let newuser = u64::from(CLONE_NEWUSER);
        let deny = errno(libc::EPERM);
        for (nr, i386) in [(libc::SYS_unshare, 310), (libc::SYS_clone, 120)] {
            let with = [newuser | 0x11, 0, 0, 0, 0, 0];
            assert_eq!(run(strict, NATIVE_ARCH, nr as u32, with), deny, "{nr}");
            assert_eq!(run(nested, NATIVE_ARCH, nr as u32, with), ALLOW, "{nr}");
            // Threads, forks and other namespaces stay allowed.
            assert_eq!(
                run(strict, NATIVE_ARCH, nr as u32, [0x3d0f00, 0, 0, 0, 0, 0]),
                ALLOW
            );
            #[cfg(target_arch = "x86_64")]
            assert_eq!(run(strict, I386_ARCH, i386, with), deny, "i386 {i386}");
            let _ = i386;
        }
        let clone3 = libc::SYS_clone3 as u32;
        assert_eq!(
            run(strict, NATIVE_ARCH, clone3, [0; 6]),
            errno(libc::ENOSYS)
        );
        assert_eq!(run(nested, NATIVE_ARCH, clone3, [0; 6]), ALLOW);
        let uffd_new = [3, 0xAA00, 0, 0, 0, 0];
        assert_eq!(
            run(strict, NATIVE_ARCH, libc::SYS_ioctl as u32, uffd_new),
            deny
        );
        assert_eq!(
            run(nested, NATIVE_ARCH, libc::SYS_ioctl as u32, uffd_new),
            deny
        );
    }

    #[test]
    fn setuid_and_setgid_modes_are_refused_and_plain_ones_allowed() {
        let prog = default_filter(false).unwrap();
        let deny = errno(libc::EPERM);
        let at = |nr: i64, args| run(prog, NATIVE_ARCH, nr as u32, args);
        assert_eq!(at(libc::SYS_fchmod, [3, 0o4755, 0, 0, 0, 0]), deny);
        assert_eq!(at(libc::SYS_fchmodat, [3, 0, 0o2755, 0, 0, 0]), deny);
        assert_eq!(at(libc::SYS_openat, [3, 0, 0o101, 0o4755, 0, 0]), deny);
        assert_eq!(at(libc::SYS_fchmod, [3, 0o755, 0, 0, 0, 0]), ALLOW);
        assert_eq!(at(libc::SYS_openat, [3, 0, 0o101, 0o644, 0, 0]), ALLOW);
        assert_eq!(
            at(libc::SYS_openat2, [3, 0, 0, 24, 0, 0]),
            errno(libc::ENOSYS)
        );
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(at(libc::SYS_chmod, [0, 0o4711, 0, 0, 0, 0]), deny);
            assert_eq!(
                run(prog, I386_ARCH, 15, [0, 0o4711, 0, 0, 0, 0]),
                deny,
                "i386 chmod"
            );
        }
    }

    /// What the rules say about one call, straight from the table.
    fn expected(user_namespaces: bool, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut rules = default_rules();
        if !user_namespaces {
            rules.extend(user_namespace_rules());
        }
        let number = |r: &Rule| {
            if arch == NATIVE_ARCH {
                r.native.and_then(|n| u32::try_from(n).ok())
            } else {
                #[cfg(target_arch = "x86_64")]
                {
                    r.i386
                }
                #[cfg(not(target_arch = "x86_64"))]
                None
            }
        };
        #[cfg(target_arch = "x86_64")]
        let known = arch == NATIVE_ARCH || arch == I386_ARCH;
        #[cfg(not(target_arch = "x86_64"))]
        let known = arch == NATIVE_ARCH;
        if !known {
            return KILL;
        }
        if cfg!(target_arch = "x86_64") && arch == NATIVE_ARCH && nr >= 0x4000_0000 {
            return errno(libc::ENOSYS);
        }
        let Some(rule) = rules.iter().find(|r| number(r) == Some(nr)) else {
            return ALLOW;
        };
        let lo = |a: u32| args[a as usize] as u32;
        let deny = errno(libc::EPERM);
        match rule.refuse {
            Refuse::Always => deny,
            Refuse::AlwaysErrno(e) => errno(e),
            Refuse::ArgIn(a, v) => {
                if v.contains(&lo(a)) {
                    deny
                } else {
                    ALLOW
                }
            }
            Refuse::ArgNotIn(a, v) => {
                if v.contains(&lo(a)) {
                    ALLOW
                } else {
                    deny
                }
            }
            Refuse::ArgHasBits(a, b) => {
                if lo(a) & b != 0 {
                    deny
                } else {
                    ALLOW
                }
            }
        }
    }

    #[test]
    fn the_search_answers_as_the_table_for_every_number() {
        #[cfg(target_arch = "x86_64")]
        let arches = [NATIVE_ARCH, I386_ARCH, 0x4000_0028];
        #[cfg(not(target_arch = "x86_64"))]
        let arches = [NATIVE_ARCH, 0x4000_0028];
        let samples: Vec<[u64; 6]> = {
            let mut v = vec![[0; 6], [u64::MAX; 6]];
            let mut values: Vec<u64> = REFUSED_IOCTLS
                .iter()
                .chain(PERSONAS)
                .map(|&x| u64::from(x))
                .collect();
            values.extend([
                u64::from(CLONE_NEWUSER),
                u64::from(SET_ID),
                0o4755,
                0o755,
                0x1_0000_5412,
            ]);
            for x in values {
                for arg in 0..4 {
                    let mut a = [0u64; 6];
                    a[arg] = x;
                    v.push(a);
                }
            }
            v
        };
        for user_namespaces in [false, true] {
            let prog = default_filter(user_namespaces).unwrap();
            for &arch in &arches {
                for nr in (0..1100).chain([0x4000_0000, 0x4000_0001 + 59, u32::MAX]) {
                    for args in &samples {
                        assert_eq!(
                            run(prog, arch, nr, *args),
                            expected(user_namespaces, arch, nr, *args),
                            "arch {arch:#x} nr {nr} args {args:x?}"
                        );
                    }
                }
            }
        }
    }

    /// How many instructions a call runs before its answer (or before the first argument is
    /// loaded): the work the kernel does per number to build its cache at install.
    fn steps_to_answer(prog: &[Insn], arch: u32, nr: u32) -> usize {
        let (mut pc, mut steps) = (0usize, 0usize);
        let mut acc = 0u32;
        loop {
            let i = prog[pc];
            steps += 1;
            pc += 1;
            match u32::from(i.code) {
                LD_W_ABS if i.k == NR => acc = nr,
                LD_W_ABS if i.k == ARCH => acc = arch,
                LD_W_ABS | RET_K => return steps,
                JA => pc += i.k as usize,
                code => {
                    let hit = match code {
                        JEQ_K => acc == i.k,
                        JGE_K => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += usize::from(if hit { i.jt } else { i.jf });
                }
            }
        }
    }

    #[test]
    fn every_number_is_answered_in_a_short_path() {
        let prog = default_filter(false).unwrap();
        let longest = (0..1024)
            .flat_map(|nr| {
                [
                    steps_to_answer(prog, NATIVE_ARCH, nr),
                    steps_to_answer(
                        prog,
                        {
                            #[cfg(target_arch = "x86_64")]
                            {
                                I386_ARCH
                            }
                            #[cfg(not(target_arch = "x86_64"))]
                            {
                                NATIVE_ARCH
                            }
                        },
                        nr,
                    ),
                ]
            })
            .max()
            .unwrap();
        // A linear chain of the ~40 rules would take 80 and more; the search, its depth
        // (about 4) and a leaf of at most three rules: arch, number, x32, 4 jumps, 6, return.
        assert!(
            longest <= 3 + 1 + 5 + LEAF_RULES + 1,
            "a path of {longest} instructions in a program of {}",
            prog.len()
        );
    }
}

//! The default syscall filter: terminal injection (TIOCSTI, also through the 32-bit ABI and
//! with high bits set in the ioctl number), the keyring and personality flags that weaken
//! ASLR fail with EPERM, while the rest of ioctl and personality's query work; with the
//! default off, the same calls reach the kernel. A caller's own program is installed too.
//!
//! The probe uses /dev/null for the ioctls: the kernel answers ENOTTY there, so an EPERM
//! can only come from the filter, and nothing is ever typed into a terminal.

use crate::support::*;
use nsbox::{Sandbox, SeccompProgram};

pub const PYTHON: &str = "/usr/bin/python3";

const PROBE: &str = r#"
import ctypes, errno, mmap, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
nr_ioctl, nr_keyctl, nr_personality, tiocsti, tcgets, nr_clone3, nr_unshare = (
    int(a) for a in sys.argv[1:8])
def sc(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return "ok" if r >= 0 else errno.errorcode[ctypes.get_errno()]
fd = os.open("/dev/null", os.O_RDWR)
buf = ctypes.create_string_buffer(b"x")
print("tiocsti", sc(nr_ioctl, fd, tiocsti, ctypes.addressof(buf)))
print("tiocsti-high", sc(nr_ioctl, fd, tiocsti | (0xdead << 32), ctypes.addressof(buf)))
print("tcgets", sc(nr_ioctl, fd, tcgets, ctypes.addressof(buf)))
print("keyctl", sc(nr_keyctl, 0, -3, 0))
print("personality-query", sc(nr_personality, 0xffffffff))
print("personality-no-aslr", sc(nr_personality, 0x0040000))
print("getppid", sc(110 if os.uname().machine == "x86_64" else 173))
print("uffd-new", sc(nr_ioctl, fd, 0xAA00, 0))
print("clone3", sc(nr_clone3, 0, 0))
print("unshare-user", sc(nr_unshare, 0x10000000))
if os.uname().machine == "x86_64":
    # The 32-bit ABI from 64-bit code: ioctl (54) through int 0x80.
    code = (b"\xb8" + struct.pack("<I", 54) + b"\xbb" + struct.pack("<I", fd)
            + b"\xb9" + struct.pack("<I", tiocsti) + b"\x31\xd2\xcd\x80\xc3")
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    r = ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
    print("i386-tiocsti", "ok" if r >= 0 else errno.errorcode[-r])
"#;

#[allow(clippy::unnecessary_cast)]
fn probe(sb: &mut Sandbox) -> &mut Sandbox {
    sb.args(["-c", PROBE]).args(
        [
            libc::SYS_ioctl as i64,
            libc::SYS_keyctl as i64,
            libc::SYS_personality as i64,
            libc::TIOCSTI as i64,
            libc::TCGETS as i64,
            libc::SYS_clone3 as i64,
            libc::SYS_unshare as i64,
        ]
        .map(|n| n.to_string()),
    )
}

fn results(out: &crate::Out) -> std::collections::BTreeMap<String, String> {
    out.stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn no_python(test: &str) -> bool {
    if std::path::Path::new(PYTHON).exists() {
        return false;
    }
    skip(test, "/usr/bin/python3 is not installed");
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_filter_refuses_terminal_injection_and_the_rest_of_its_list() {
    if no_python("the_default_filter_refuses_terminal_injection_and_the_rest_of_its_list") {
        return;
    }
    for (shape, ns) in shapes_and_none() {
        for keep_caps in [false, true] {
            let what = format!("{shape}, all capabilities kept: {keep_caps}");
            let mut sb = Sandbox::new(PYTHON);
            probe(&mut sb).namespaces(ns.clone());
            if keep_caps {
                // The filter does not depend on the capability drop.
                sb.capabilities(nsbox::Capabilities::all());
            }
            let out = crate::run(&what, sb).await;
            assert!(out.status.success(), "{what}: {}", out.stderr);
            let r = results(&out);
            let get = |k: &str| r.get(k).map(String::as_str).unwrap_or("(missing)");
            for refused in [
                "tiocsti",
                "tiocsti-high",
                "keyctl",
                "personality-no-aslr",
                "uffd-new",
                "unshare-user",
            ] {
                assert_eq!(get(refused), "EPERM", "{what}: {refused}: {}", out.stdout);
            }
            assert_eq!(get("tcgets"), "ENOTTY", "{what}: {}", out.stdout);
            assert_eq!(get("personality-query"), "ok", "{what}: {}", out.stdout);
            // clone3's flags are out of the filter's reach: ENOSYS, so callers use clone.
            assert_eq!(get("clone3"), "ENOSYS", "{what}: {}", out.stdout);
            if cfg!(target_arch = "x86_64") {
                assert_eq!(get("i386-tiocsti"), "EPERM", "{what}: {}", out.stdout);
            }
        }
    }
}

/// The control: with the default filter off, the same calls reach the kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_default_filter_the_calls_reach_the_kernel() {
    if no_python("without_the_default_filter_the_calls_reach_the_kernel") {
        return;
    }
    let mut sb = Sandbox::new(PYTHON);
    probe(&mut sb)
        .namespaces(all())
        .default_syscall_filter(false);
    let out = crate::run("no filter", sb).await;
    assert!(out.status.success(), "{}", out.stderr);
    let r = results(&out);
    assert_eq!(r["tiocsti"], "ENOTTY", "{}", out.stdout);
    assert_eq!(r["personality-no-aslr"], "ok", "{}", out.stdout);
    assert_ne!(r["keyctl"], "EPERM", "{}", out.stdout);
    assert_eq!(r["uffd-new"], "ENOTTY", "{}", out.stdout);
    assert_ne!(r["clone3"], "ENOSYS", "{}", out.stdout);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(r["i386-tiocsti"], "ENOTTY", "{}", out.stdout);
    }
}

/// A program of the caller's (getppid fails with EXFULL) is installed beside the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_callers_seccomp_program_is_installed_beside_the_default() {
    if no_python("a_callers_seccomp_program_is_installed_beside_the_default") {
        return;
    }
    let prog = getppid_fails_with_exfull();
    let mut sb = Sandbox::new(PYTHON);
    probe(&mut sb)
        .namespaces(all())
        .seccomp(SeccompProgram::from_bytes(prog).expect("a valid program"));
    let out = crate::run("caller's program", sb).await;
    assert!(out.status.success(), "{}", out.stderr);
    let r = results(&out);
    assert_eq!(r["getppid"], "EXFULL", "{}", out.stdout);
    assert_eq!(
        r["tiocsti"], "EPERM",
        "the default is still on: {}",
        out.stdout
    );
}

/// `nested_user_namespaces(true)` lets the command make a user namespace (a nested one would
/// give it every capability there: with root mapped to host root, enough to mount a cgroup
/// filesystem and raise its own limits), and nothing else of the filter changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nested_user_namespaces_are_refused_unless_allowed() {
    if no_python("nested_user_namespaces_are_refused_unless_allowed") {
        return;
    }
    let mut sb = Sandbox::new(PYTHON);
    probe(&mut sb)
        .namespaces(all())
        .nested_user_namespaces(true);
    let out = crate::run("nested user namespaces allowed", sb).await;
    assert!(out.status.success(), "{}", out.stderr);
    let r = results(&out);
    assert_eq!(r["unshare-user"], "ok", "{}", out.stdout);
    assert_ne!(r["clone3"], "ENOSYS", "{}", out.stdout);
    assert_eq!(r["tiocsti"], "EPERM", "{}", out.stdout);
}

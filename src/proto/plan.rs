//! The fd plan: where every fd the child needs comes from and goes to.

use std::ffi::{CString, c_char};
use std::os::fd::RawFd;

use super::spec::Spec;

/// Everything the child needs, built before the clone from a [`Spec`] and the fds that go
/// with it. Pointers in it point into the `CString`s the spec owns, which the child's copy of
/// memory still holds.
pub(crate) struct Plan {
    pub spec: Spec,
    /// NULL-terminated argv.
    pub argv: Vec<*const c_char>,
    /// NULL-terminated envp.
    pub envp: Vec<*const c_char>,
    /// Fds the init keeps for itself, moved to `high_base..` (close-on-exec): report,
    /// control, one per namespace to join, then the cgroup leaf's directory and cgroup.procs.
    pub own_fds: Vec<RawFd>,
    /// (source, target) fds the command gets: stdio and passed fds. Sources are moved to
    /// `high_base + own_fds.len() + i` first, so sources and targets never collide.
    pub moves: Vec<(RawFd, RawFd)>,
    pub high_base: RawFd,
    /// Ranges `[lo, hi]` to close after the shuffle: everything but targets and own fds.
    pub close_ranges: Vec<(u32, u32)>,
    /// The seccomp programs to install before the exec, in order.
    pub filters: Vec<Vec<crate::seccomp::Insn>>,
    /// This process's argv and environment areas (`[arg_start, arg_end, env_start,
    /// env_end]`), which the init overwrites in its copy of memory; zeros when unknown.
    pub memory_areas: [usize; 4],
    /// One slot per source of the filesystem view, where the init keeps the detached mount
    /// trees it opens (allocated here: the init allocates nothing).
    pub fs_slots: Box<[std::cell::Cell<i32>]>,
}

/// The fds of a plan, in order: the report pipe's write end, the control pipe's read end, one
/// fd per namespace to join, one source per target.
pub(crate) const OWN_FIXED: usize = 2;

impl Plan {
    /// Lay out a plan. `None` when the number of `fds` does not match the spec.
    pub(crate) fn new(spec: Spec, fds: &[RawFd]) -> Option<Plan> {
        let own_count = OWN_FIXED + spec.join_types.len() + if spec.cgroup { 2 } else { 0 };
        if fds.len() != own_count + spec.targets.len() {
            return None;
        }
        let own_fds = fds[..own_count].to_vec();
        let moves: Vec<(RawFd, RawFd)> = fds[own_count..]
            .iter()
            .copied()
            .zip(spec.targets.iter().copied())
            .collect();
        let max_fd = fds.iter().chain(spec.targets.iter()).copied().max();
        let high_base = max_fd.unwrap_or(2).max(2) + 1;
        // Keep the targets and the own block; close everything else.
        let mut keep: Vec<u32> = spec.targets.iter().map(|t| *t as u32).collect();
        keep.extend((0..own_fds.len() as u32).map(|i| high_base as u32 + i));
        keep.sort_unstable();
        keep.dedup();
        let mut close_ranges = Vec::new();
        let mut lo = 0u32;
        for k in keep {
            if k > lo {
                close_ranges.push((lo, k - 1));
            }
            lo = k + 1;
        }
        close_ranges.push((lo, u32::MAX));
        let ptrs = |v: &[CString]| -> Vec<*const c_char> {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let mut filters = Vec::new();
        if spec.restrict.default_filter {
            filters.push(
                crate::seccomp::default_filter(spec.restrict.user_namespaces)
                    .ok()?
                    .to_vec(),
            );
        }
        filters.extend(
            spec.restrict
                .filters
                .iter()
                .map(|f| crate::seccomp::insns_of(f)),
        );
        let sources = spec.fs.as_ref().map_or(0, |f| f.sources.len());
        Some(Plan {
            fs_slots: (0..sources).map(|_| std::cell::Cell::new(-1)).collect(),
            filters,
            memory_areas: memory_areas(),
            argv: ptrs(&spec.argv),
            envp: ptrs(&spec.envp),
            spec,
            own_fds,
            moves,
            high_base,
            close_ranges,
        })
    }

    /// Where the report pipe is after the shuffle.
    pub(crate) fn report_fd(&self) -> RawFd {
        self.high_base
    }

    /// Where the control pipe is after the shuffle.
    pub(crate) fn control_fd(&self) -> RawFd {
        self.high_base + 1
    }

    /// Where the cgroup leaf's cgroup.procs is after the shuffle (with a cgroup).
    pub(crate) fn cgroup_procs_fd(&self) -> RawFd {
        self.high_base + (OWN_FIXED + self.spec.join_types.len() + 1) as RawFd
    }

    /// Where the `i`th namespace to join is after the shuffle.
    pub(crate) fn join_fd(&self, i: usize) -> RawFd {
        self.high_base + (OWN_FIXED + i) as RawFd
    }
}

/// `[arg_start, arg_end, env_start, env_end]` of this process (fields 48 to 51 of
/// /proc/self/stat), read once; zeros when they cannot be read.
fn memory_areas() -> [usize; 4] {
    static AREAS: std::sync::OnceLock<[usize; 4]> = std::sync::OnceLock::new();
    *AREAS.get_or_init(|| {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        parse_memory_areas(&stat).unwrap_or([0; 4])
    })
}

fn parse_memory_areas(stat: &str) -> Option<[usize; 4]> {
    // Fields after the command name (which may hold spaces and parentheses) start at 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut out = [0usize; 4];
    for (i, o) in out.iter_mut().enumerate() {
        *o = fields.get(48 - 3 + i)?.parse().ok()?;
    }
    (out[0] < out[1] && out[2] <= out[3]).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_keeps_the_targets_and_its_own_fds_and_closes_the_rest() {
        let spec = Spec {
            targets: vec![0, 1, 2, 7],
            join_types: vec![0],
            ..Spec::default()
        };
        let plan = Plan::new(spec, &[10, 11, 12, 20, 21, 22, 23]).unwrap();
        assert_eq!(plan.high_base, 24);
        assert_eq!(plan.report_fd(), 24);
        assert_eq!(plan.control_fd(), 25);
        assert_eq!(plan.join_fd(0), 26);
        assert_eq!(plan.close_ranges, vec![(3, 6), (8, 23), (27, u32::MAX)]);
        assert!(Plan::new(Spec::default(), &[1]).is_none());
    }

    #[test]
    fn the_memory_areas_are_read_from_this_process_stat() {
        let areas = memory_areas();
        assert!(
            areas[0] != 0 && areas[0] < areas[1] && areas[2] <= areas[3],
            "{areas:?}"
        );
        // The command name may hold spaces and parentheses.
        let tail: String = (3..=52).map(|n| format!(" {n}")).collect();
        let stat = format!("7 (a) b (c){tail}");
        assert_eq!(parse_memory_areas(&stat), Some([48, 49, 50, 51]));
        assert_eq!(parse_memory_areas("7 (a) R 1 2"), None);
    }
}

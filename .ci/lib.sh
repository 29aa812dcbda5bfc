# Helpers shared by .ci/run and .ci/unpriv-tests. Sourced, not executed.

# The unprivileged user the second test pass runs as (Debian's `nobody`).
CI_UNPRIV_UID=65534
CI_UNPRIV_GID=65534

banner() {
    printf '\n==================== %s ====================\n' "$*"
}

# Run a command as the unprivileged user with a clean environment (setpriv sets HOME, USER,
# LOGNAME, SHELL and a default PATH; TERM is kept). Supplementary groups are cleared and, since
# all uids change from 0, the kernel drops every capability.
as_unpriv() {
    setpriv --reuid "$CI_UNPRIV_UID" --regid "$CI_UNPRIV_GID" --clear-groups --reset-env "$@"
}

# Sum the results in a test log: prints "PASSED FAILED SKIPPED".
# Reads libtest's lines (`test result: ok. 3 passed; 0 failed; 1 ignored; ...`; ignored counts as
# skipped). A `test result:` line without a passed count (a harness = false target imitating
# libtest) is replaced by its own `test NAME ... ok|FAILED|ignored` lines, as are such lines
# after the last result line (a crash). Plain `N passed, N failed[, N skipped]` lines
# (optionally after one word and a colon) are added as they are.
# A test that cannot run here prints `SKIPPED: <test>: <reason>` on the process's stderr
# (tests/support's `skip`, which libtest does not capture) and then passes, so libtest counted it
# as passed: each such line (at the start of a line, or after libtest's `test NAME ... ` when
# tests run one at a time) moves one test from passed to skipped.
count_results() {
    awk '
        /^SKIPPED: |^test .* \.\.\. SKIPPED: / { skip++ }
        /^test .* \.\.\. ok$/      { lp++ }
        /^test .* \.\.\. FAILED$/  { lf++ }
        /^test .* \.\.\. ignored/  { ls++ }
        /^test result: / {
            got = 0
            for (i = 2; i <= NF; i++) {
                if ($i ~ /^passed;?$/)  { p += $(i - 1); got = 1 }
                if ($i ~ /^failed;?$/)  fr = $(i - 1)
                if ($i ~ /^ignored;?$/) s += $(i - 1)
            }
            if (got) { f += fr } else { p += lp; f += (lf > fr ? lf : fr); s += ls }
            lp = lf = ls = fr = 0
            next
        }
        /^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ {
            line = $0
            sub(/^[A-Za-z_-]+: /, "", line)
            n = split(line, w, /[ ,]+/)
            p += w[1]; f += w[3]
            if (n >= 6) s += w[5]
        }
        END {
            p += lp; s += ls
            moved = (skip < p ? skip : p)
            printf "%d %d %d\n", p - moved, f + lf, s + moved
        }
    ' "$@"
}

# Whether a log holds any result line that count_results understands.
has_results() {
    grep -Eq '^test result: |^test .* \.\.\. (ok|FAILED|ignored)|^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$1"
}

# Build the test target NAME (`cargo test --test NAME --no-run`) and print its executable's path.
test_executable() {
    cargo test --test "$1" --no-run --message-format=json </dev/null | python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == name and m.get("executable"):
        print(m["executable"])
' "$1" | tail -n 1 | grep .
}

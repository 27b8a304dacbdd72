"""Run a program as the child of a subreaper and report which of its descendants outlive it.

    python subreaper.py DEADLINE OUTFILE -- ARGV...

This process becomes a child subreaper (Linux's PR_SET_CHILD_SUBREAPER), so whatever the
program leaves behind — workers in their own sessions included — is re-parented here instead of
to init, where it could no longer be found. After the program exits, it polls its own
descendants until there are none or DEADLINE seconds have passed, then writes JSON to stdout:
{"returncode": …, "seconds": …, "left": ["pid cmdline", …]}, kills what is left and reaps it.
The program's own stdout goes to OUTFILE and its stderr to OUTFILE.err (a pipe would stay open as long as any descendant that
inherited it lives).
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int) -> dict[int, str]:
    children: dict[int, list[int]] = {}
    names = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # it ended while we looked
        if fields[0] == "Z":
            continue  # dead, waiting for us to reap it
        children.setdefault(int(fields[1]), []).append(int(entry))
        names[int(entry)] = cmdline
    found, todo = {}, list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found[pid] = names[pid]
        todo.extend(children.get(pid, ()))
    return found


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    deadline_seconds, outfile = float(sys.argv[1]), sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1:]
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    with open(outfile, "wb") as out, open(outfile + ".err", "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
    returncode = proc.wait(timeout=deadline_seconds)
    died = time.monotonic()
    while True:
        reap()
        left = descendants(os.getpid())
        if not left or time.monotonic() - died > deadline_seconds:
            break
        time.sleep(0.05)  # polling for a condition, bounded by the deadline above
    print(json.dumps({"returncode": returncode, "seconds": time.monotonic() - died,
                      "left": [f"{pid} {cmd}" for pid, cmd in sorted(left.items())]}))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while descendants(os.getpid()):
        reap()
        time.sleep(0.05)
    reap()


if __name__ == "__main__":
    main()

"""Enter a sandbox: namespaces, mounts, cgroups, user and limits, then exec the runtime.

Run by the endpoint as root, as a standalone script (``python -S -I _enter.py CONFIG``: the
standard library only, nothing from the environment), once per sandbox. CONFIG is a JSON
file (mode 0600 in the endpoint's private directory: it holds the sandbox's environment, role
credentials included, which must not show in a command line) with:

  netns_fd    the network namespace the endpoint prepared (loopback up, the Runtime API and
              the endpoint forwarders listening in it)
  death_fd    read end of a pipe whose write end only the endpoint holds: EOF means the
              endpoint is gone, and the sandbox is killed with it
  cgroups     cgroup.procs files to join (memory, cpu, pids), and `home_cgroups` to leave to
  root, mounts, tmp_mb, uid, gid, nofile, argv, env, cwd

Steps: join the cgroups; enter the network namespace; unshare mount, PID, IPC and UTS
namespaces; fork. The child is PID 1 of the new PID namespace (when it dies the kernel kills
everything else in the sandbox): it builds the mount tree (the read-only root, the code at
/var/task, the runtime at /var/runtime, layers at /opt, a tmpfs /tmp of EphemeralStorage MB,
a fresh /proc, a minimal /dev), pivots into it, drops to the sandbox user with no
capabilities and no way to gain any, sets RLIMIT_NOFILE and execs the runtime. The parent
stays outside, waits for the child or for the endpoint's death, and exits the way the child
did (so the endpoint reads the runtime's exit status or signal from its own child).
"""

import ctypes
import resource
import json
import os
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source, target, fstype=None, flags=0, data=None):
    _check(libc.mount(source and source.encode(), target.encode(),
                      fstype and fstype.encode(), ctypes.c_ulong(flags),
                      data and data.encode()), f"mount {source} on {target}")


def bind(source, target, readonly=True, flags=0):
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | flags)


def build_tree(cfg):
    root = cfg["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    bind(cfg["skeleton"], root, readonly=False)
    for source, target in cfg["mounts"]:  # read-only binds: code, runtime, stdlib, layers
        bind(source, root + target, flags=MS_NODEV)
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={cfg['tmp_mb']}m,mode=1777")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    dev = root + "/dev"
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for name in ("null", "zero", "full", "random", "urandom"):
        open(f"{dev}/{name}", "w").close()
        bind(f"/dev/{name}", f"{dev}/{name}", readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    mount(None, dev, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    # The root itself read-only: only /tmp is writable, as on Lambda.
    mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(f"no pivot_root syscall number for {os.uname().machine}")
    _check(libc.syscall(number, b".", b"mnt"), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/mnt", MNT_DETACH), "umount the host's root")


def become_sandbox_user(cfg):


    os.setgroups([])
    os.setgid(cfg["gid"])
    os.setuid(cfg["uid"])   # from root to a plain uid: every capability is dropped
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (cfg["nofile"], cfg["nofile"]))


def child(cfg):
    try:
        socket.sethostname(cfg.get("hostname", "localhost"))
        build_tree(cfg)
        become_sandbox_user(cfg)
        os.chdir(cfg["cwd"])
        os.execve(cfg["argv"][0], cfg["argv"], cfg["env"])
    except BaseException as exc:  # report why on the log the endpoint reads, then die
        os.write(2, f"local-lambda sandbox setup failed: {exc!r}\n".encode())
        os._exit(127)


def clean_up(cfg):
    """With the endpoint gone, nobody else will remove this sandbox's cgroups and files."""
    import shutil
    import time

    for procs in cfg["cgroups"]:
        for _ in range(100):  # the kernel frees the sandbox's other tasks asynchronously
            try:
                os.rmdir(os.path.dirname(procs))
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)
    shutil.rmtree(os.path.dirname(cfg["root"]), ignore_errors=True)


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    os.unlink(sys.argv[1])
    for procs in cfg["cgroups"]:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    _check(libc.setns(cfg["netns_fd"], CLONE_NEWNET), "enter the network namespace")
    os.close(cfg["netns_fd"])
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS),
           "unshare")
    pid = os.fork()
    if pid == 0:
        os.close(cfg["death_fd"])
        child(cfg)
    # This process waits outside the sandbox and should not count against its memory.
    for procs in cfg["home_cgroups"]:
        try:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            pass
    pidfd = os.pidfd_open(pid)
    ready, _, _ = select.select([pidfd, cfg["death_fd"]], [], [])
    orphaned = cfg["death_fd"] in ready and pidfd not in ready
    if orphaned:
        os.kill(pid, signal.SIGKILL)  # the endpoint died: so does its sandbox
    _, status = os.waitpid(pid, 0)
    if orphaned:
        clean_up(cfg)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()

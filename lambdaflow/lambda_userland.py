"""The programs a Lambda Python runtime offers, per runtime, written down once.

Source: ../shared/NOTES-lambda-runtime.md (compiled from AWS's documentation, AWS's base-image
package lists and dumps taken on real functions; nothing measured on AWS by us):

- python3.12, 3.13, 3.14 run on Amazon Linux 2023 *minimal*: bash (also ``/bin/sh``),
  ``coreutils-single`` 8.32 (every coreutils program), gawk 5.1 (``awk``), grep 3.8, sed 4.8,
  glibc-common (``iconv``, ``locale``, ``getent``), the minimal langpack only.
- python3.11 (and 3.10) run on Amazon Linux 2: full coreutils 8.22, bash 4.2, gawk 4.0,
  grep 2.20, sed 4.2 and all langpacks.
- Absent from both: findutils (``xargs``, ``find``), util-linux (``rev``, ``col``), gzip, tar,
  diffutils, which, procps, tzdata, git, gcc, curl.

local-lambda's sandboxes offer exactly `programs(runtime)` (from the host's binaries and the
libraries they link), and the shell layer checks a pipeline's commands against the same list.
A layer (``lambdaflow create --tools``) is the way to bring anything else.
"""

from __future__ import annotations

from lambdaflow.errors import ConfigError

# GNU coreutils 8.32's programs (coreutils-single builds every one into a multicall binary).
COREUTILS = (
    "[", "arch", "b2sum", "base32", "base64", "basename", "basenc", "cat", "chcon", "chgrp",
    "chmod", "chown", "chroot", "cksum", "comm", "cp", "csplit", "cut", "date", "dd", "df",
    "dir", "dircolors", "dirname", "du", "echo", "env", "expand", "expr", "factor", "false",
    "fmt", "fold", "groups", "head", "hostid", "id", "install", "join", "link", "ln",
    "logname", "ls", "md5sum", "mkdir", "mkfifo", "mknod", "mktemp", "mv", "nice", "nl",
    "nohup", "nproc", "numfmt", "od", "paste", "pathchk", "pinky", "pr", "printenv", "printf",
    "ptx", "pwd", "readlink", "realpath", "rm", "rmdir", "runcon", "seq", "sha1sum",
    "sha224sum", "sha256sum", "sha384sum", "sha512sum", "shred", "shuf", "sleep", "sort",
    "split", "stat", "stdbuf", "stty", "sum", "sync", "tac", "tail", "tee", "test", "timeout",
    "touch", "tr", "true", "truncate", "tsort", "tty", "uname", "unexpand", "uniq", "unlink",
    "users", "vdir", "wc", "who", "whoami", "yes",
)
# Added to coreutils after 8.22, so missing on Amazon Linux 2.
_AFTER_8_22 = frozenset({"b2sum", "basenc"})
# bash, gawk, grep, sed and glibc-common's tools, on both images.
OTHERS = ("bash", "sh", "gawk", "awk", "grep", "egrep", "fgrep", "sed", "iconv", "locale",
          "getent")
# Program name -> the program that provides it, where a name is an alias.
ALIASES = {"sh": "bash", "awk": "gawk"}

_AL2 = ("python3.10", "python3.11")
_AL2023 = ("python3.12", "python3.13", "python3.14")


def base_image(runtime: str) -> str:
    """``amazonlinux2`` or ``amazonlinux2023-minimal``: the image `runtime` runs on."""
    if runtime in _AL2:
        return "amazonlinux2"
    if runtime in _AL2023:
        return "amazonlinux2023-minimal"
    raise ConfigError(f"no userland recorded for runtime {runtime!r}: one of "
                      f"{', '.join(_AL2 + _AL2023)}")


def programs(runtime: str) -> frozenset[str]:
    """Every program on ``PATH`` in `runtime`'s execution environment (besides Python)."""
    core = set(COREUTILS)
    if base_image(runtime) == "amazonlinux2":
        core -= _AFTER_8_22
    return frozenset(core | set(OTHERS))


def has_all_langpacks(runtime: str) -> bool:
    """Whether ``LANG=en_US.UTF-8`` (Lambda's setting) exists there: AL2 yes, AL2023 no."""
    return base_image(runtime) == "amazonlinux2"

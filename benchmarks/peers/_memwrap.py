"""Run a command and record its peak resident memory: ``python -S _memwrap.py OUT cmd ...``.

``ru_maxrss`` of a child forked from a large process counts the parent's memory too
(Linux records the pre-``exec`` image's high-water mark), so the peak memory of a
benchmark subprocess started from a Python that holds torch, or of Brian2's standalone
binary started from Brian2's Python, would include its parent. This launcher is a bare
interpreter (``-S``: no site packages, a few MiB): the command forked from it is
measured alone. Writes ``{"maxrss_mib": ..., "returncode": ...}`` to OUT (JSON) and
exits with the command's exit code. Stdin, stdout and stderr pass through. Stdlib only.
"""

import json
import os
import sys


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as fh:
        json.dump({"maxrss_mib": usage.ru_maxrss / 1024, "returncode": code}, fh)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())

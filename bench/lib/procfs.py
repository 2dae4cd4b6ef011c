"""CPU time and memory of processes, read from /proc.

CPU time is utime + stime in seconds (all threads of the process). The PostgreSQL figure
is the whole server: the postmaster, its live children, and the children it has already
reaped (their time moves into the postmaster's cutime + cstime when they exit), so a
backend that exits inside a measuring window is still counted.
"""

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    """Fields of /proc/PID/stat after the command name, or None when PID is gone.

    Index 0 is field 3 of proc(5) (state), so field N is at index N - 3.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may itself contain ") ".
    return raw[raw.rfind(")") + 2:].split()


def cpu_seconds(pid):
    """utime + stime of PID in seconds, or None when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid):
    """Resident set size (VmRSS) of PID in bytes, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def server_cpu_seconds(postmaster_pid):
    """CPU seconds used so far by a PostgreSQL server: the postmaster (with its reaped
    children) plus every live child. None when the postmaster is gone."""
    wanted = str(postmaster_pid)
    for _ in range(5):
        before = _stat_fields(postmaster_pid)
        if before is None:
            return None
        children = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or entry == wanted:
                continue
            child = _stat_fields(entry)
            if child is not None and child[1] == wanted:
                children += int(child[11]) + int(child[12])
        after = _stat_fields(postmaster_pid)
        if after is None:
            return None
        # A child reaped during the scan moved its time into cutime + cstime after we
        # read them and may have left /proc before we got to it: scan again.
        if before[13:15] == after[13:15]:
            return (sum(int(after[i]) for i in (11, 12, 13, 14)) + children) / CLOCK_TICKS
    return None


def system_busy_seconds():
    """CPU seconds all processes on the machine have used since boot (every state of the
    first line of /proc/stat except idle and iowait), summed over all cores."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    # already included in user.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def is_alive(pid):
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")

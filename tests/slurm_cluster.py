"""A real single-node SLURM cluster on localhost, for the tests: Debian's munge, MariaDB, slurmdbd,
slurmctld and slurmd (installed by `make install`), configured in a folder of the test's and
stopped after. slurmdbd (and the database behind it) is there because submitit, as on any real
cluster, follows its jobs with `sacct`, which needs SLURM's accounting."""

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
# slurmdbd answers through munged's default socket whatever its config says, so one munged serves
# every cluster on this machine (two test workers may each run one). Each cluster holds USERS
# shared while it runs; the last to stop stops the munged that one of them started. STARTING
# lets one cluster at a time start or stop.
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
MUNGE_PID = MUNGE_SOCKET.parent / "alexlab-munged.pid"
STARTING, USERS = Path("/tmp/alexlab-slurm-starting.lock"), Path("/tmp/alexlab-slurm-users.lock")


def installed() -> bool:
    return all(shutil.which(daemon) for daemon in DAEMONS)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for(what: str, ready, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"{what} did not start in {seconds:.0f} s:\n{tail}")
        time.sleep(0.3)


def succeeds(*command: str, env: dict[str, str] | None = None) -> bool:
    return subprocess.run(command, capture_output=True, env=env).returncode == 0


def run_or_say(command: list[str]) -> None:
    """Run a set-up command; if it fails, raise with its output (which a test's report shows)."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def node_line() -> str:
    """This machine as `slurmd -C` sees it (its name, CPUs and memory), for slurm.conf."""
    found = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    return found.splitlines()[0] + " NodeAddr=127.0.0.1"


@contextlib.contextmanager
def slurm_cluster(folder: Path) -> Iterator[dict[str, str]]:
    """Start the cluster with its files in `folder`; yield the environment that reaches it
    (SLURM_CONF), for sbatch, squeue, sacct and submitit alike."""
    with open(STARTING, "a") as starting, open(USERS, "a") as users:
        try:
            with contextlib.ExitStack() as stack:
                with held(starting):  # one start at a time: munged, and the free ports each takes
                    start_munged(folder)
                    fcntl.flock(users, fcntl.LOCK_SH)
                    env = start(folder, stack)
                yield env
        finally:
            with held(starting), contextlib.suppress(BlockingIOError):
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other cluster runs
                stop_pid(MUNGE_PID)


@contextlib.contextmanager
def held(lock_file) -> Iterator[None]:
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)


def start_munged(folder: Path) -> None:
    """munged on its default socket, with a key of its own, unless one already answers there."""
    if succeeds("munge", "-n"):
        return
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    log = folder / "munged.log"
    subprocess.run(
        [
            "munged",
            "--force",
            f"--key-file={key}",
            f"--log-file={log}",
            f"--pid-file={MUNGE_PID}",
            f"--seed-file={folder / 'munged.seed'}",
        ],
        check=True,
    )
    wait_for("munged", lambda: succeeds("munge", "-n"), log)


def start(folder: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    for sub in ("state", "spool", "log", "db", "run"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    log, run = folder / "log", folder / "run"
    env = dict(os.environ, SLURM_CONF=str(folder / "slurm.conf"))
    slurmctld_port, slurmd_port, db_port, dbd_port = free_ports(4)

    run_or_say(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={folder / 'db'}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
    )
    db_socket = run / "db.sock"
    daemon(
        stack,
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={folder / 'db'}",
            "--user=root",
            f"--socket={db_socket}",
            f"--port={db_port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={run / 'db.pid'}",
            f"--log-error={log / 'db.log'}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
        ],
        run / "db.pid",
        background=True,
    )
    sql = ["mariadb", "--no-defaults", "-S", str(db_socket), "-uroot"]
    wait_for("mariadbd", lambda: succeeds(*sql, "-e", "select 1"), log / "db.log")
    grant = "CREATE USER slurm@'127.0.0.1' IDENTIFIED BY 'slurm'; GRANT ALL ON slurm_acct_db.* TO "
    subprocess.run([*sql, "-e", grant + "slurm@'127.0.0.1';"], check=True)

    (folder / "slurmdbd.conf").write_text(
        f"""AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={dbd_port}
SlurmUser=root
PidFile={run / "slurmdbd.pid"}
LogFile={log / "slurmdbd.log"}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={db_port}
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
"""
    )
    (folder / "slurmdbd.conf").chmod(0o600)
    # proctrack/linuxproc and task/none: no cgroups in a container. JobRequeue=1: batch jobs are
    # requeued when preempted, as on a cluster that preempts.
    (folder / "slurm.conf").write_text(
        f"""ClusterName=alexlab
SlurmctldHost={socket.gethostname()}(127.0.0.1)
SlurmctldPort={slurmctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={run / "slurmctld.pid"}
SlurmdPidFile={run / "slurmd.pid"}
SlurmctldLogFile={log / "slurmctld.log"}
SlurmdLogFile={log / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={dbd_port}
{node_line()}
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    daemon(stack, ["slurmdbd"], run / "slurmdbd.pid", env=env)
    sacct = ["sacct", "-n", "-j", "1"]
    wait_for("slurmdbd", lambda: succeeds(*sacct, env=env), log / "slurmdbd.log")
    daemon(stack, ["slurmctld"], run / "slurmctld.pid", env=env)
    daemon(stack, ["slurmd"], run / "slurmd.pid", env=env)
    idle = ["sh", "-c", "sinfo -h -o %t | grep -qx idle"]
    wait_for("slurmd", lambda: succeeds(*idle, env=env), log / "slurmd.log")
    return env


def daemon(
    stack: contextlib.ExitStack,
    command: list[str],
    pid_file: Path,
    env: dict[str, str] | None = None,
    background: bool = False,
) -> None:
    """Start a daemon (it forks itself, or runs in the background) and stop it when `stack`
    closes: SIGTERM to the pid it wrote, then a wait for it to go."""
    if background:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        stack.callback(stop_process, process)
        return
    subprocess.run(command, env=env, check=True)
    stack.callback(stop_pid, pid_file)


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=60)


def stop_pid(pid_file: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 15)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)

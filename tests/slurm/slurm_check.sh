#!/usr/bin/env bash
# End-to-end check of profiles/slurm on a one-node SLURM cluster brought up on this machine (Debian, as root).
#
#   bash tests/slurm/slurm_check.sh            # from the repository, after: pip install -e ".[slurm]"
#   PYTHON=/path/to/python bash tests/slurm/slurm_check.sh
#
# It installs slurm-wlm and munge with apt-get if they are missing, writes /etc/slurm/slurm.conf for this host alone
# (its CPUs and memory as slurmd -C reports them, select/cons_tres, no accounting database; a slurm.conf found
# there is put back at the end), starts munged (unless one runs), slurmctld and slurmd on the loopback address,
# waits for the node to be idle, then runs the second example review (tests/examples/second_review, copied to a
# temporary folder) through the profile. It checks that the manuscript was rendered, that every job of the run
# was a SLURM job that ended COMPLETED with its rule's memory and time limit (from SLURM's job-completion log, a
# text file: no database needed) and that the fits compiled in the node-local compile directory the profile sets;
# it prints the elapsed time and the number of SLURM jobs, stops the daemons it started and exits non-zero on any
# failure. CI does not run it: it needs root and daemons, and takes several minutes.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
EXAMPLE=$REPO/tests/examples/second_review
T0=$(date +%s)
WORK=$(mktemp -d -t slurm-check.XXXXXX)
STARTED=()        # pid files of the daemons this script started, stopped on exit
RESTORE_CONF=0    # 1: put back the slurm.conf found before
WROTE_CONF=0      # 1: this script wrote /etc/slurm/slurm.conf

say() { printf '[slurm-check %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }

stop_daemons() {
    local pidfile pid
    for pidfile in "${STARTED[@]}"; do
        [[ -s $pidfile ]] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    done
}
restore_conf() {
    if (( RESTORE_CONF )); then cp -p "$WORK/slurm.conf.before" /etc/slurm/slurm.conf
    elif (( WROTE_CONF )); then rm -f /etc/slurm/slurm.conf; fi
}
trap 'status=$?; stop_daemons; restore_conf; say "daemons stopped; files kept in $WORK"; exit $status' EXIT

[[ $(id -u) -eq 0 ]] || fail "run as root (it installs packages and starts the SLURM daemons)"
[[ -x $PYTHON ]] || fail "no Python at $PYTHON (set PYTHON=...)"
"$PYTHON" -c "import snakemake_executor_plugin_slurm" 2>/dev/null \
    || fail "the SLURM executor plugin is not installed for $PYTHON: pip install -e \"$REPO[slurm]\""

# 1. Packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge"
    apt-get update -q >"$WORK/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >>"$WORK/apt.log" 2>&1 \
        || fail "apt-get install failed: see $WORK/apt.log"
fi
say "$(slurmctld -V), $(munged --version 2>&1 | head -1)"

# 2. Configuration: this host only; state, spool and logs under $WORK. slurm.conf must be at its default place,
# /etc/slurm/slurm.conf: the plugin's job step drops SLURM_* variables (SLURM_CONF too) before calling srun. A
# slurm.conf already there is put back on exit.
pgrep -x slurmctld >/dev/null && fail "a slurmctld is already running here; this check brings up its own cluster"
HOST=$(hostname -s)
read -r CPUS MEM < <(slurmd -C | awk '/^NodeName/ {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["CPUs"], v["RealMemory"] }')
[[ -n $CPUS && -n $MEM ]] || fail "slurmd -C did not report this host's CPUs and memory"
mkdir -p "$WORK/state" "$WORK/spool" /etc/slurm
export SLURM_CONF=/etc/slurm/slurm.conf
if [[ -e $SLURM_CONF ]]; then cp -p "$SLURM_CONF" "$WORK/slurm.conf.before"; RESTORE_CONF=1; fi
WROTE_CONF=1
cat >"$SLURM_CONF" <<EOF
ClusterName=check
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$WORK/jobcomp.txt
MinJobAge=300
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=check Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
say "slurm.conf: node $HOST, $CPUS CPUs, $MEM MB, select/cons_tres, no accounting database"

# 3. Daemons
if pgrep -x munged >/dev/null; then
    say "munged already running: using it"
else
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    [[ -s /etc/munge/munge.key ]] || { mungekey --create 2>/dev/null || create-munge-key -f; }
    runuser -u munge -- munged --pid-file=/run/munge/check-munged.pid
    STARTED+=(/run/munge/check-munged.pid)
fi
munge -n | unmunge >/dev/null || fail "munge does not work"
slurmctld -f "$SLURM_CONF" && STARTED+=("$WORK/slurmctld.pid")
slurmd -f "$SLURM_CONF" && STARTED+=("$WORK/slurmd.pid")
for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 1
done
[[ $state == idle ]] || fail "node $HOST not idle after 60 s (state: '${state:-none}'); see $WORK/slurmctld.log, $WORK/slurmd.log"
say "SLURM up: $(sinfo -h -o '%P %a %D %T %c CPUs %m MB')"

# 4. The review through the profile
REVIEW=$WORK/review
cp -r "$EXAMPLE" "$REVIEW"
rm -rf "$REVIEW/results" "$REVIEW/.snakemake"
say "running the second review through profiles/slurm (log: $WORK/snakemake.log)"
T_RUN=$(date +%s)
# A one-node test cluster answers at once: poll it every 10 s instead of the plugin's 40 (MinJobAge=300 stays
# above the 3 x 10 s squeue needs); keep SLURM's logs of successful jobs too, to count them.
if ! (cd "$REVIEW" && "$PYTHON" -m snakemake -s "$REPO/Snakefile" --directory "$REVIEW" \
        --profile "$REPO/profiles/slurm" --slurm-init-seconds-before-status-checks 10 \
        --slurm-keep-successful-logs) >"$WORK/snakemake.log" 2>&1; then
    tail -40 "$WORK/snakemake.log"
    fail "the workflow failed under SLURM (log: $WORK/snakemake.log)"
fi
RUN_SECONDS=$(( $(date +%s) - T_RUN ))

# 5. Checks: the manuscript exists; every Snakemake job but `all` (a rule without a command, which Snakemake runs
# itself) was a SLURM job that ended COMPLETED, with its rule's memory and time limit; the fits compiled into the
# node-local compile directory the profile sets.
for ext in html docx pdf; do
    [[ -s $REVIEW/results/manuscript/index.$ext ]] || fail "no manuscript results/manuscript/index.$ext"
done
"$PYTHON" - "$WORK/snakemake.log" "$WORK/jobcomp.txt" "$T_RUN" <<'PY' || fail "the SLURM jobs do not match the run (above)"
import collections, os, pathlib, re, sys, tempfile, getpass
log, jobcomp, t_run = pathlib.Path(sys.argv[1]).read_text(), pathlib.Path(sys.argv[2]), float(sys.argv[3])
steps = re.findall(r"(\d+) of (\d+) steps \(100%\) done", log)
submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_(\w+)/", log))
records = {}
for line in jobcomp.read_text().splitlines():
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    records[fields["JobId"]] = fields
per_rule = collections.defaultdict(list)
for jobid, rule in submitted.items():
    per_rule[rule].append(records.get(jobid, {"JobState": "NOT RECORDED"}))
print(f"{'rule':22} {'jobs':>4}  {'states':14} {'memory':>8} {'time limit (min)':>16}")
for rule, recs in sorted(per_rule.items()):
    states = ",".join(sorted({r["JobState"] for r in recs}))
    mem = ",".join(sorted({m for r in recs for m in re.findall(r"mem=(\w+)", r.get("Tres", ""))}))
    limit = ",".join(sorted({r.get("TimeLimit", "?") for r in recs}))
    print(f"{rule:22} {len(recs):>4}  {states:14} {mem:>8} {limit:>16}")
problems = []
total = int(steps[-1][1]) if steps else 0
if not steps:
    problems.append("Snakemake did not report all steps done")
if len(submitted) != total - 1:
    problems.append(f"{len(submitted)} SLURM jobs for {total} Snakemake jobs")
bad = [j for j in submitted if records.get(j, {}).get("JobState") != "COMPLETED"]
if bad:
    problems.append(f"SLURM jobs not COMPLETED: {bad}")
fits = per_rule.get("fit_model", [])
if not fits or any(r.get("TimeLimit") != "120" or "mem=8000M" not in r.get("Tres", "") for r in fits):
    problems.append("fit_model jobs missing or not run with the profile's 8000 MB and 120 min")
compiledir = pathlib.Path(tempfile.gettempdir()) / f"pytensor-{getpass.getuser()}"
fresh = [p for p in compiledir.rglob("*") if p.is_file() and p.stat().st_mtime >= t_run] if compiledir.is_dir() else []
if not fresh:
    problems.append(f"nothing compiled into {compiledir} during the run")
print(f"Snakemake jobs: {total}; SLURM jobs: {len(submitted)}, COMPLETED: {len(submitted) - len(bad)}; "
      f"files written to the compile directory {compiledir} during the run: {len(fresh)}")
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
PY
say "PASS: manuscript rendered, every job a COMPLETED SLURM job; workflow ${RUN_SECONDS} s under SLURM, $(( $(date +%s) - T0 )) s in all"

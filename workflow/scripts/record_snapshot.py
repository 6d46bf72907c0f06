"""Record the current run's snapshot: copy results/snapshot/snapshot.json into the snapshots folder (config
update.snapshots_dir, default data/snapshots) as <date>_<sheets' hash>.json, to be committed with the review.

    .venv/bin/python workflow/scripts/record_snapshot.py [--date YYYY-MM-DD] [--snapshot PATH] [--folder DIR]

Run by hand after a complete run (`snakemake --cores 4`) whose results the review team accepts; the next run's
what-changed report (results/update/what_changed.md) then compares with it.
"""

import argparse
import datetime
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timecourse_meta.core import config as config_mod  # noqa: E402
from timecourse_meta.core.errors import EngineError  # noqa: E402
from timecourse_meta.report import snapshot  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", default=datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
                        help="date in the recorded name (default: today, UTC)")
    parser.add_argument("--snapshot", default="results/snapshot/snapshot.json", help="the snapshot to record")
    parser.add_argument("--folder", default=None, help="snapshots folder (default: config update.snapshots_dir)")
    args = parser.parse_args(argv)
    try:
        folder = args.folder
        if folder is None:
            resolved = Path("results/config/resolved_config.yaml")
            cfg = config_mod.load(resolved) if resolved.is_file() else config_mod.resolve(
                config_mod.load("config.yaml"))
            folder = cfg["update"]["snapshots_dir"]
        if not Path(args.snapshot).is_file():
            raise snapshot.SnapshotError(f"{args.snapshot}: no snapshot; run `snakemake --cores 4` (or the target "
                                         "results/snapshot/snapshot.json) first")
        path, new = snapshot.record(args.snapshot, folder, args.date)
    except EngineError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"recorded {path}" if new else f"already recorded: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

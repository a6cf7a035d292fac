"""Worker process of `run_conversions`: `python -m ... JOBS.json RESULTS.json`.

Results are rewritten after every job, so the parent knows how far a worker
that died got.
"""

import json
import sys

from keras_slim.export.conversion import _convert_job
from keras_slim.io import write_json_atomic


def main(jobs_path, results_path):
    with open(jobs_path, encoding="utf-8") as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        results.append(_convert_job(job))
        write_json_atomic(results_path, results)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))

"""A pytest plugin that logs when each test ran and which collections stalled.

For finding where a whole-suite run loses its time (a test far slower in
the suite than alone, a worker idle while the other works). Not loaded by
default; with it, each process (every xdist worker and the controller)
appends to `<folder>/<worker>.txt`:

    <unix time> start <test id>
    <unix time> end <test id>
    <unix time> GC gen<n> <seconds>s collected=<objects> in <test id>

the last for every garbage collection longer than 0.3 s. With
`TIMELINE_DUMP=path/to/py-spy`, a collection of generation 1 or 2 still
running after 3 s also gets `py-spy dump --native` of its process into
`<folder>/gcdump-<pid>-<n>.txt` (the C++ frames show what it waits for).
A hook on the collector cannot run Python while the collection runs, hence
a shell that sleeps and then dumps, killed when the collection ends first.

    PYTHONPATH=tools python -m pytest -q -p pytest_timeline
    TIMELINE_DIR=/tmp/tl TIMELINE_DUMP=/path/py-spy PYTHONPATH=tools ...

Written for the garbage-collection stalls DEVELOPERS.md describes
(2026-12-05); the folder defaults to /tmp/timeline.
"""

import gc
import os
import subprocess
import time

FOLDER = os.environ.get("TIMELINE_DIR", "/tmp/timeline")
PY_SPY = os.environ.get("TIMELINE_DUMP")
SLOW_COLLECTION_S = 0.3
DUMP_AFTER_S = 3

_state = {"test": "-", "log": None, "gc_start": 0.0, "dumper": None,
          "dumps": 0}


def _log(line):
    if _state["log"] is None:
        os.makedirs(FOLDER, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        _state["log"] = open(os.path.join(FOLDER, f"{worker}.txt"), "a",
                             buffering=1)
    _state["log"].write(f"{time.time():.2f} {line}\n")


def _start_dumper():
    _state["dumps"] += 1
    path = os.path.join(FOLDER,
                        f"gcdump-{os.getpid()}-{_state['dumps']}.txt")
    command = (f"sleep {DUMP_AFTER_S}; '{PY_SPY}' dump --native "
               f"--pid {os.getpid()} > '{path}' 2>&1")
    _state["dumper"] = subprocess.Popen(["bash", "-c", command],
                                        start_new_session=True)


def _stop_dumper():
    dumper, _state["dumper"] = _state["dumper"], None
    if dumper is None:
        return
    if dumper.poll() is None:
        os.killpg(dumper.pid, 9)  # the collection ended first: no dump
    dumper.wait()


def _on_collection(phase, info):
    if phase == "start":
        _state["gc_start"] = time.perf_counter()
        if PY_SPY and info["generation"] >= 1:
            _start_dumper()
        return
    _stop_dumper()
    seconds = time.perf_counter() - _state["gc_start"]
    if seconds > SLOW_COLLECTION_S:
        _log(f"GC gen{info['generation']} {seconds:.2f}s "
             f"collected={info['collected']} in {_state['test']}")


def pytest_configure(config):
    gc.callbacks.append(_on_collection)


def pytest_runtest_logstart(nodeid, location):
    _state["test"] = nodeid
    _log(f"start {nodeid}")


def pytest_runtest_logfinish(nodeid, location):
    _log(f"end {nodeid}")

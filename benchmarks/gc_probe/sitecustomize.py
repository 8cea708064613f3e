"""Garbage-collector pauses of a benchmarked server, without touching its code.

`harness.start_server` puts this folder on the server's ``PYTHONPATH`` when asked
(``run_all.py --gc-probe``); every Python process of the server (the uvicorn workers are
fresh interpreters) then imports it at start-up. ``gc.callbacks`` time each collection, and
a daemon thread writes them once a second to ``$BENCH_GC_DIR/gc-PID.json`` as
``[[wall-clock end, generation, seconds], …]`` (the last 200,000), for the harness to keep
those inside the measuring window. Without ``BENCH_GC_DIR`` it does nothing.
"""

import gc
import json
import os
import threading
import time

_folder = os.environ.get("BENCH_GC_DIR")

if _folder:
    _pauses: list[list[float]] = []
    _started = [0.0]

    def _timer(phase: str, info: dict) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        else:
            _pauses.append([time.time(), info["generation"], time.perf_counter() - _started[0]])
            if len(_pauses) > 200_000:
                del _pauses[:100_000]

    def _writer() -> None:
        path = os.path.join(_folder, f"gc-{os.getpid()}.json")
        while True:
            time.sleep(1.0)
            temporary = path + ".tmp"
            with open(temporary, "w") as handle:
                json.dump(list(_pauses), handle)
            os.replace(temporary, path)

    gc.callbacks.append(_timer)
    threading.Thread(target=_writer, name="bench-gc-probe", daemon=True).start()

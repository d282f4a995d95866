import os
import subprocess
import sys
import time


def test_sleeps() -> None:
    # A grandchild of spruce: cancelling the job must kill it too.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ.get("SLEEPY_PIDS", "pids.txt"), "a") as pids:
        pids.write(f"{os.getpid()}\n{child.pid}\n")
    time.sleep(120)

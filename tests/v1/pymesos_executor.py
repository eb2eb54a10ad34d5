"""A pymesos 0.3.15 custom executor in the shape of pymesos's examples/executor.py (Python 3):
each LAUNCH is answered TASK_RUNNING, a framework message with the executor's pid, then after
the task's `data` seconds TASK_FINISHED; a framework message "ping" is answered "pong"."""
import os
import sys
import threading
import time

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data


class MinimalExecutor(Executor):
    def launchTask(self, driver, task):
        def run_task():
            update = {"task_id": {"value": task["task_id"]["value"]}, "state": "TASK_RUNNING",
                      "timestamp": time.time()}
            driver.sendStatusUpdate(update)
            driver.sendFrameworkMessage(encode_data((f"pid {os.getpid()}").encode()))
            seconds = float(decode_data(task["data"]).decode())
            print("task {} sleeps {}".format(task["task_id"]["value"], seconds), file=sys.stderr)
            time.sleep(seconds)
            update = {"task_id": {"value": task["task_id"]["value"]}, "state": "TASK_FINISHED",
                      "timestamp": time.time()}
            driver.sendStatusUpdate(update)

        threading.Thread(target=run_task, daemon=True).start()

    def frameworkMessage(self, driver, message):
        if decode_data(message) == b"ping":
            driver.sendFrameworkMessage(encode_data(b"pong"))


if __name__ == "__main__":
    driver = MesosExecutorDriver(MinimalExecutor(), use_addict=True)
    driver.run()

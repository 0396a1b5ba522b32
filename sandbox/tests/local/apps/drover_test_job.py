"""Test-only Ray job entrypoint (`python -m drover_test_job`): acts as DROVER_WORKER_CONFIG says.

mode "write": copy the token file into <cacheRoot>/result.txt; "fail": exit 3; "sleep": sleep.
"""

import json
import os
import sys
import time

config = json.loads(os.environ["DROVER_WORKER_CONFIG"])
mode = config.get("mode", "write")
if mode == "fail":
    print("failing on purpose", flush=True)
    sys.exit(3)
if mode == "sleep":
    time.sleep(float(config.get("seconds", 120)))
    sys.exit(0)
with open(config["tokenFile"], encoding="utf-8") as fh:
    token = fh.read()
os.makedirs(config["cacheRoot"], exist_ok=True)
with open(os.path.join(config["cacheRoot"], "result.txt"), "w", encoding="utf-8") as fh:
    fh.write(f"{token}|{config['pvcRoot']}|{os.environ.get('HF_ENDPOINT', '')}")
print("wrote", config["cacheRoot"], flush=True)

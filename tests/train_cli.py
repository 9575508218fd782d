"""What train.py would record in run.json for a command line, without training: its flags parsed
and validated as train.py parses them, then turned into the run's configuration."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RECORD = r'''
import json, sys
from absl import flags
import train
flags.FLAGS(sys.argv[1:])
print(json.dumps(train._run_config().to_json()))
'''


def recorded_run(*args: str) -> dict:
  """run.json's content for `train.py *args` (a flag error fails with its message)."""
  result = subprocess.run([sys.executable, '-c', _RECORD, 'train.py', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return json.loads(result.stdout.strip().splitlines()[-1])

"""serve.py as a process on loopback: two servers on one workdir at once both start (the caches'
locks: one builds the index and prototypes, the other waits and reads them), and a server killed
with SIGKILL and restarted serves again without rebuilding anything."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip('fastapi', reason="serve.py's dependencies: pip install -e '.[serve]'")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHES = ('index_test.npz', 'prototypes.npz')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start(workdir, port, log):
  return subprocess.Popen([sys.executable, 'serve.py', f'--workdir={workdir}', f'--port={port}'],
                          cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})


def _healthy(port, process, log_file, timeout=180) -> dict:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    assert process.poll() is None, open(log_file).read()[-3000:]
    try:
      connection = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
      connection.request('GET', '/api/health')
      return json.loads(connection.getresponse().read())
    except OSError:
      time.sleep(0.5)
  raise AssertionError(f'no answer on port {port}: ' + open(log_file).read()[-3000:])


def _search(port) -> list[int]:
  connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
  connection.request('POST', '/api/search', json.dumps({'query': 0, 'top_k': 5}),
                     {'Content-Type': 'application/json'})
  response = connection.getresponse()
  assert response.status == 200
  return [r['row'] for r in json.loads(response.read())['results']]


def test_two_servers_on_one_workdir_and_a_sigkilled_one_restarts_from_its_caches(
    untrained_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(untrained_run.workdir, workdir)
  for name in CACHES:  # built by whichever server gets the lock first
    os.remove(workdir / name)
  ports, logs, servers = [_free_port(), _free_port()], [], []
  try:
    for k, port in enumerate(ports):
      logs.append(tmp_path / f'server{k}.log')
      servers.append(_start(workdir, port, open(logs[-1], 'w')))
    for port, process, log in zip(ports, servers, logs):
      _healthy(port, process, log)
    answers = [_search(port) for port in ports]
    assert answers[0] == answers[1]
    built = {name: os.stat(workdir / name).st_mtime_ns for name in CACHES}
    servers[0].send_signal(signal.SIGKILL)
    servers[0].wait()
    servers[0] = _start(workdir, ports[0], open(logs[0], 'a'))
    _healthy(ports[0], servers[0], logs[0])
    assert _search(ports[0]) == answers[0]
    assert {name: os.stat(workdir / name).st_mtime_ns for name in CACHES} == built
  finally:
    for process in servers:
      process.kill()
      process.wait()

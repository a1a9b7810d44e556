"""Set-up as a user runs it: `make setup`'s torch, and CI running the README's command in a virtualenv."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import time

import pytest
from helpers import ROOT

SPEC = importlib.util.spec_from_file_location("install_torch", ROOT / "scripts" / "install_torch.py")
install_torch = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(install_torch)

VERSIONS = ("torch (2.15.0)\nAvailable versions: 2.15.0, 2.14.1, 2.13.0+cpu, 2.13.0, 2.12.0+cpu, "
            "2.3.1+cpu, 2.0.0\n")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: nobody listens there


def test_an_unreachable_index_is_given_up_at_once():
    start = time.monotonic()
    assert not install_torch.reachable(f"http://127.0.0.1:{_closed_port()}/whl/cpu")
    assert time.monotonic() - start < install_torch.PROBE_SECONDS + 1


def test_the_newest_cpu_build_that_meets_the_requirement(monkeypatch):
    def fake_run(cmd, **kwargs):
        assert cmd[-3:] == ["index", "versions", "torch"]
        return subprocess.CompletedProcess(cmd, 0, VERSIONS, "")

    monkeypatch.setattr(install_torch.subprocess, "run", fake_run)
    assert install_torch.newest_cpu_build("torch>=2.4") == "2.13.0+cpu"
    assert install_torch.newest_cpu_build("torch>=2.14") is None
    assert install_torch.newest_cpu_build("torch") == "2.13.0+cpu"


@pytest.mark.parametrize("reachable, cpu, expected", [
    (True, None, ["torch>=2.4", "--index-url", "https://cpu.example/whl"]),
    (False, "2.13.0+cpu", ["torch==2.13.0+cpu"]),  # a mirror with a CPU build
    (False, None, ["torch>=2.4"]),  # a mirror without: the requirement as it is, with a warning
])
def test_setup_falls_back_to_the_configured_index(monkeypatch, capsys, reachable, cpu, expected):
    calls = []
    monkeypatch.setattr(install_torch, "installed", lambda: None if not calls else "2.13.0+cpu")
    monkeypatch.setattr(install_torch, "reachable", lambda index: reachable)
    monkeypatch.setattr(install_torch, "wants_cpu_build", lambda: True)
    monkeypatch.setattr(install_torch, "newest_cpu_build", lambda spec: cpu)
    monkeypatch.setattr(install_torch, "pip_install", lambda *args: calls.append(list(args)))
    assert install_torch.main(["--spec", "torch>=2.4", "--index", "https://cpu.example/whl"]) == 0
    assert calls == [expected]
    err = capsys.readouterr()
    assert ("did not answer" in err.out) == (not reachable)
    assert ("may download a CUDA build" in err.err) == (not reachable and cpu is None)


def test_an_installed_torch_is_kept(monkeypatch, capsys):
    monkeypatch.setattr(install_torch, "installed", lambda: "2.13.0+cpu")
    monkeypatch.setattr(install_torch, "pip_install", lambda *args: pytest.fail("nothing to install"))
    assert install_torch.main([]) == 0
    assert "kept" in capsys.readouterr().out


def test_ci_runs_the_readmes_test_command_in_a_fresh_virtualenv():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    venv, activate = lines.index("python3 -m venv .venv"), lines.index(". .venv/bin/activate")
    make = lines.index("make test PYTHON=python")
    assert "rm -rf .venv" in lines[:venv] and venv < activate < make == len(lines) - 1
    assert 'python -m pip install -q "torch==2.13.0"' in lines[activate:make]  # the CPU build
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\nmake test   #" in readme and "python3 -m venv .venv && . .venv/bin/activate" in readme

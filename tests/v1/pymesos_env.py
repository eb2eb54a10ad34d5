"""The real pymesos 0.3.15 in a virtualenv of its own (created once under ~/.cache/corral).

pymesos needs `http-parser`, whose C extension does not build on this Python; pymesos falls
back to the package's pure-Python parser, so the package's Python files are installed without
building it (as a pip install would leave them if the build were optional).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENV = Path(os.environ.get("CORRAL_PYMESOS_VENV",
                           Path.home() / ".cache" / "corral" / "pymesos-0.3.15"))
PARSER_FILES = ("__init__.py", "_socketio.py", "http.py", "pyparser.py", "reader.py", "util.py")


def pymesos_python() -> Path:
    py = VENV / "bin" / "python"
    probe = "import pymesos, pymesos.subprocess, http_parser.http, addict, kazoo"
    if py.exists() and subprocess.run([str(py), "-I", "-c", probe],
                                      capture_output=True).returncode == 0:
        return py
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    _pip(py, "install", "-q", "six", "addict", "kazoo")
    _pip(py, "install", "-q", "--no-deps", "pymesos==0.3.15")
    with tempfile.TemporaryDirectory() as tmp:
        _pip(py, "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp,
             "http-parser==0.9.0")
        [sdist] = Path(tmp).glob("http-parser-*.tar.gz")
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = next(Path(tmp).glob("http-parser-*/http_parser"))
        site = Path(subprocess.run([str(py), "-I", "-c",
                                    "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip())
        dest = site / "http_parser"
        dest.mkdir(exist_ok=True)
        for name in PARSER_FILES:
            shutil.copy(src / name, dest / name)
    r = subprocess.run([str(py), "-I", "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, f"pymesos does not import: {r.stderr[-2000:]}"
    return py


def _pip(py: Path, *args: str) -> None:
    r = subprocess.run([str(py), "-m", "pip", *args], capture_output=True, text=True)
    assert r.returncode == 0, f"pip {' '.join(args)} failed: {r.stderr[-2000:]}"


VENV2 = Path(os.environ.get("CORRAL_PYMESOS2_VENV",
                            Path.home() / ".cache" / "corral" / "pymesos-0.3.15-py27"))
PYTHON2_CANDIDATES = ("python2.7", str(Path.home() / ".pyenv" / "versions" / "2.7.18" / "bin"
                                       / "python2.7"))


def python2() -> str | None:
    """A Python 2.7 interpreter, if the machine has one."""
    for cand in PYTHON2_CANDIDATES:
        path = shutil.which(cand) or (cand if Path(cand).is_file() else None)
        if path and subprocess.run([path, "-c", "import sys; assert sys.version_info[0] == 2"],
                                   capture_output=True).returncode == 0:
            return path
    return None


def pymesos_python2() -> Path | None:
    """pymesos 0.3.15 in a Python 2.7 virtualenv: `pymesos.subprocess` is Python 2 code
    (its I/O redirector writes a str to a pipe), so it runs unmodified only there. None
    without a Python 2.7."""
    py = VENV2 / "bin" / "python"
    probe = "import pymesos, pymesos.subprocess, http_parser.http, addict"
    if py.exists() and subprocess.run([str(py), "-c", probe],
                                      capture_output=True).returncode == 0:
        return py
    base = python2()
    if base is None:
        return None
    with tempfile.TemporaryDirectory() as tool:
        _pip(Path(base), "install", "-q", "--target", tool, "virtualenv<20.22")
        r = subprocess.run([base, "-m", "virtualenv", "-q", "--clear", str(VENV2)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": tool})
        assert r.returncode == 0, f"virtualenv failed: {r.stderr[-2000:]}"
    _pip(py, "install", "-q", "six", "addict")
    _pip(py, "install", "-q", "--no-deps", "pymesos==0.3.15")
    site = Path(subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    parser = Path(subprocess.run([str(pymesos_python()), "-I", "-c",
                                  "import http_parser, os; print(os.path.dirname("
                                  "http_parser.__file__))"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    (site / "http_parser").mkdir(exist_ok=True)
    for name in PARSER_FILES:
        shutil.copy(parser / name, site / "http_parser" / name)
    r = subprocess.run([str(py), "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, f"pymesos does not import on Python 2: {r.stderr[-2000:]}"
    return py

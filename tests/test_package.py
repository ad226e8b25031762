import subprocess
import sys


def test_import_does_not_import_torch():
    code = "import pnc_pack, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "pnc_pack", "--help"], capture_output=True, text=True, check=True)
    assert "verify" in out.stdout and "build" in out.stdout
    assert "torch" not in out.stderr


def test_usage_error_exit_code():
    out = subprocess.run([sys.executable, "-m", "pnc_pack", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr

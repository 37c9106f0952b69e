"""deploy/cloudformation.yaml passes cfn-lint: no error, no warning."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("EDDY_SOURCE_ROOT", Path(__file__).resolve().parents[2]))
TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"


def main():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cfn_lint), "--", str(TEMPLATE)], capture_output=True,
                          text=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational.
    if proc.returncode != 0:
        print(f"FAIL cfn-lint {TEMPLATE.name}: exit {proc.returncode}")
        print("0 passed, 1 failed")
        sys.exit(1)
    print(f"ok   cfn-lint {TEMPLATE.name}")
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()

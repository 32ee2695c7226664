"""The admin code stays off the phones' path: the HTTP endpoint, the PnP responder and the
dnsmasq hook import nothing of `phoneprov.admin` (memory: a 128 MB router)."""

from __future__ import annotations

import subprocess
import sys


def test_the_phones_path_imports_no_admin_code() -> None:
    probe = (
        "import sys\n"
        "import phoneprov.web.app, phoneprov.web.endpoint, phoneprov.web.routes\n"
        "import phoneprov.sip.policy, phoneprov.sip.background, phoneprov.dnsmasq.hook\n"
        "import phoneprov.site, phoneprov.render, phoneprov.state.db\n"
        "print(sorted(m for m in sys.modules if m.startswith('phoneprov.admin')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    admin = probe.replace("import sys\n", "import sys\nimport phoneprov.admin.app\n")
    shown = subprocess.run([sys.executable, "-c", admin], capture_output=True, text=True)
    assert "phoneprov.admin.app" in shown.stdout  # the probe sees an import when there is one

"""A Git repository of sites for the `phoneprov sync` tests: a work tree that commits and
pushes into a local bare repository (what `[sync] repo` names), optionally signing with an
SSH key. Real git, no network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "conf" / "templates"
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Installer",
    "GIT_AUTHOR_EMAIL": "installer@example.org",
    "GIT_COMMITTER_NAME": "Installer",
    "GIT_COMMITTER_EMAIL": "installer@example.org",
}


def site_config(root: Path, server: str = "http://192.0.2.10:8080", extra: str = "") -> str:
    """A site's phoneprov.toml; its appliance-local paths (dnsmasq dirs, state, secret) are
    absolute under `root`, the inventory and templates relative (they come from the repo)."""
    return (
        f'[server]\nurl = "{server}"\ninterface = "eth0"\n'
        f'[dhcp]\nhostsdir = "{root}/hosts"\noptsdir = "{root}/opts"\n'
        f'dnsmasq_pidfile = "{root}/dnsmasq.pid"\nleasefile = ""\n'
        f'[security]\nsecret_file = "{root}/secret"\n'
        f'[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\n'
        f'state = "{root}/state.db"\n{extra}'
    )


def inventory(mac: str, name: str, registrar: str = "pbx.example.lan") -> str:
    return (
        '[profiles.default]\ntemplates = ["office.xml"]\n'
        f'[[devices]]\nmac = "{mac}"\ntype = "D200"\nprofile = "default"\n'
        f'[[devices.lines]]\nusername = "201"\npassword = "pw"\ndisplay_name = "{name}"\n'
        f'registrar = "{registrar}"\n'
    )


class SiteRepo:
    """`work/` (commits) pushing to `sites.git` (bare: what the appliances fetch)."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.work, self.bare, self.branch = root / "work", root / "sites.git", branch
        root.mkdir(parents=True, exist_ok=True)
        self.signing_key: Path | None = None
        self.git("init", "--quiet", f"--initial-branch={branch}", str(self.work), cwd=root)
        self.git("init", "--quiet", "--bare", str(self.bare), cwd=root)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def add_site(self, name: str, config: str, inventory_text: str) -> Path:
        site = self.work / name if name else self.work
        site.mkdir(parents=True, exist_ok=True)
        shutil.copytree(TEMPLATES, site / "templates", dirs_exist_ok=True)
        self.write(f"{name}/phoneprov.toml" if name else "phoneprov.toml", config)
        self.write(f"{name}/inventory.toml" if name else "inventory.toml", inventory_text)
        return site

    def write(self, relpath: str, text: str) -> None:
        path = self.work / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str, sign: bool = True) -> str:
        """Commit everything and push; signed when a key was made and `sign`."""
        self.git("add", "-A")
        signing: list[str] = []
        if sign and self.signing_key is not None:
            signing = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.signing_key}"]
        self.git(*signing, "commit", "--quiet", *(["-S"] if signing else []), "-m", message)
        self.git("push", "--quiet", "--force", str(self.bare), f"HEAD:refs/heads/{self.branch}")
        return self.git("rev-parse", "HEAD")

    def make_signing_key(self, root: Path, name: str = "installer") -> Path:
        """An SSH key that signs the following commits; the allowed-signers file naming it."""
        key = root / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
            check=True,
        )
        self.signing_key = key
        signers = root / f"{name}.allowed_signers"
        public = (root / f"{name}.pub").read_text().split()
        signers.write_text(f"installer@example.org {public[0]} {public[1]}\n")
        return signers


MAC = "00095200000E"  # the phone of `one_site`


def one_site(tmp_path: Path) -> SiteRepo:
    """A repository with site-a/ (one phone, MAC) committed; its state goes to tmp_path/a."""
    (tmp_path / "a").mkdir()
    repo = SiteRepo(tmp_path)
    repo.add_site("site-a", site_config(tmp_path / "a"), inventory(MAC, "Front desk"))
    repo.commit("site a")
    return repo


def appliance(tmp_path: Path, repo: SiteRepo, extra: str = "", path: str = "site-a") -> Path:
    """The appliance's own phoneprov.toml: [sync] from `repo`, its dir tmp_path/sync."""
    config = tmp_path / "appliance.toml"
    config.write_text(f'[sync]\nrepo = "{repo.bare}"\npath = "{path}"\ndir = "sync"\n{extra}')
    return config

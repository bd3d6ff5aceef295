"""Theme Check with Shopify's theme-app-extension rules finds nothing on extensions/lumi-storefront.

`scripts/theme_check.mjs` runs `@shopify/theme-check-node` (pinned in package-lock.json, installed by
scripts/bootstrap.sh) offline, on the docs data bundled with that version, and prints its offenses as JSON.
The second test proves the run is real: a broken copy of the extension fails with the app-extension checks.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.services import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "theme_check.mjs"
EXTENSION = REPO_ROOT / "extensions" / "lumi-storefront"
PACKAGE = REPO_ROOT / "node_modules" / "@shopify" / "theme-check-node"


def theme_check(root: Path) -> tuple[int, dict[str, Any]]:
    node = shutil.which("node")
    if node is None or not PACKAGE.is_dir():
        pytest.fail("theme check needs node and npm's @shopify/theme-check-node: run scripts/bootstrap.sh")
    proc = subprocess.run([node, str(SCRIPT), str(root)], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, check=False)
    assert proc.returncode in (0, 1), f"theme check could not run (exit {proc.returncode}):\n{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


def test_the_extension_has_no_theme_check_error_or_warning() -> None:
    code, report = theme_check(EXTENSION)
    failing = [o for o in report["offenses"] if o["severity"] in ("error", "warning")]
    assert failing == [], json.dumps(failing, indent=2)
    assert code == 0


def test_theme_check_fails_a_broken_extension_with_the_app_extension_rules(tmp_path: Path) -> None:
    root = tmp_path / "lumi-storefront"
    shutil.copytree(EXTENSION, root)
    block = root / "blocks" / "product-feed.liquid"
    # A tag app blocks may not use, a hard-coded route (a warning), a translation nobody wrote, and a
    # JavaScript asset over the 10,000-byte limit: each must be reported, and any of them fails the run.
    block.write_text('{% javascript %}{% endjavascript %}<a href="/cart">{{ "product_feed.nope" | t }}</a>\n'
                     + block.read_text())
    (root / "assets" / "lumi-feed.js").write_text("// padding\n" * 1000)
    code, report = theme_check(root)
    found = {(o["check"], o["severity"]) for o in report["offenses"]}
    assert {("AppBlockValidTags", "error"), ("HardcodedRoutes", "warning"), ("TranslationKeyExists", "error"),
            ("AssetSizeAppBlockJavaScript", "error")} <= found, found
    assert code == 1


def test_a_warning_alone_fails_theme_check(tmp_path: Path) -> None:
    root = tmp_path / "lumi-storefront"
    shutil.copytree(EXTENSION, root)
    block = root / "blocks" / "product-feed.liquid"
    block.write_text('<a href="/search">search</a>\n' + block.read_text())
    code, report = theme_check(root)
    assert [(o["check"], o["severity"]) for o in report["offenses"]] == [("HardcodedRoutes", "warning")]
    assert code == 1

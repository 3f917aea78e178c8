"""Write .dvc/plots_template.html: DVC's plots page with its chart libraries inlined, so the pages
`dvc plots show` and `dvc plots diff` write draw with no network.

    python scripts/offline_plots.py              # fetches the pinned npm tarballs, checks their integrity
    python scripts/offline_plots.py --from DIR   # or reads them from DIR (vega-5.20.2.tgz, ...)

DVC's default page loads vega, vega-lite and vega-embed from a CDN (the versions below, dvc-render's
own pins), so offline every chart is blank. `.dvc/config` points `plots.html_template` at the file
this writes; the file is committed, so a clone needs neither this script nor a network.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / ".dvc" / "plots_template.html"
LIBRARIES = (  # (npm package, version, the registry's sha512 integrity of its tarball), in load order
    ("vega", "5.20.2", "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw=="),
    ("vega-lite", "5.2.0", "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw=="),
    ("vega-embed", "6.18.2", "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg=="),
)
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <title>DVC Plot</title>
    <!-- vega, vega-lite and vega-embed inlined by scripts/offline_plots.py: this page needs no network -->
{libraries}
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def tarball(name: str, version: str, integrity: str, folder: Path | None) -> bytes:
    data = (folder / f"{name}-{version}.tgz").read_bytes() if folder else urllib.request.urlopen(
        f"https://registry.npmjs.org/{name}/-/{name}-{version}.tgz", timeout=60
    ).read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        raise SystemExit(f"{name}-{version}.tgz: integrity {digest[:24]}... is not the pinned {integrity[:24]}...; refusing to inline it")
    return data


def minified(data: bytes, name: str) -> str:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        code = archive.extractfile(f"package/build/{name}.min.js").read().decode("utf-8")
    for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}", "</script"):
        if placeholder in code:
            raise SystemExit(f"{name}.min.js holds {placeholder!r}, which would break the template")
    return code


def page(folder: Path | None = None) -> str:
    scripts = []
    for name, version, integrity in LIBRARIES:
        code = minified(tarball(name, version, integrity, folder), name)
        scripts.append(f'    <script type="text/javascript">/* {name}@{version} */\n{code}\n    </script>')
    return PAGE.replace("{libraries}", "\n".join(scripts))  # dvc-render fills the other placeholders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="folder", type=Path, default=None, help="Folder holding the npm tarballs.")
    args = parser.parse_args()
    TEMPLATE.write_text(page(args.folder), encoding="utf-8")
    print(f"wrote {TEMPLATE.relative_to(ROOT)} ({TEMPLATE.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()

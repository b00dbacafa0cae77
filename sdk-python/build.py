#!/usr/bin/env python3
"""Builds a Python extension module into a component for `WasmApacheModule`:

    python3 sdk-python/build.py app.py -o app.wasm

The component exports the phases (and filters, authz provider) that the class given to
`export(...)` in app.py defines, read from the source, plus `request-end`. It is built by
componentize-py (pip install componentize-py; or --componentize-py PATH, or the
COMPONENTIZE_PY environment variable) from the apache:httpd WIT next to this SDK.

Only app.py, the SDK and the folders given with --path are on the module path (componentize-py
reads every file under each): put the modules your app imports in a folder of their own."""

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SDK = Path(__file__).resolve().parent
WIT = SDK.parent / "wit"


def exportable(wit_dir):
    """(package name, {method name: interface}) of the WIT: the interfaces its one-export
    worlds export, as a module may."""
    text = "\n".join(p.read_text() for p in sorted(Path(wit_dir).glob("*.wit")))
    package = re.search(r"^package\s+([^;]+);", text, re.M)
    interfaces = re.findall(r"world\s+[\w-]+\s*\{\s*import\s+types;\s*export\s+([\w-]+);\s*\}", text)
    if not package or not interfaces:
        sys.exit(f"{wit_dir}: not the apache:httpd WIT (no package, or no per-phase worlds)")
    return package.group(1), {i.replace("-", "_"): i for i in interfaces}


def exported_methods(app_file, known):
    """The methods of known phases that the class passed to export() defines (its bases in the
    same file included)."""
    tree = ast.parse(Path(app_file).read_text(), filename=str(app_file))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    calls = [node.value for node in tree.body
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
             and getattr(node.value.func, "id", getattr(node.value.func, "attr", None)) == "export"]
    if len(calls) != 1 or len(calls[0].args) != 1 or not isinstance(calls[0].args[0], ast.Name):
        sys.exit(f"{app_file}: call export(YourModule) once, at the top level, with the class's name")
    name = calls[0].args[0].id
    if name not in classes:
        sys.exit(f"{app_file}: export({name}): no class {name} is defined in this file")
    methods, todo = set(), [name]
    while todo:
        cls = classes.get(todo.pop())
        if cls is None:
            continue
        methods |= {f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
        todo += [b.id for b in cls.bases if isinstance(b, ast.Name)]
    if "request_end" in methods:
        print(f"{app_file}: {name}.request_end is not called: the SDK drops the module object itself "
              "when a request ends", file=sys.stderr)
    found = sorted(m for m in methods if m in known and m != "request_end")
    if not found:
        sys.exit(f"{app_file}: {name} defines none of the phases: {', '.join(sorted(known))}")
    return found


def merged_world(wit_dir, into, package, interfaces):
    """Copies the WIT package into the new folder `into` with one more world, exporting
    `interfaces`, and returns that world's name."""
    into.mkdir()
    for path in Path(wit_dir).glob("*.wit"):
        shutil.copy(path, into / path.name)
    exports = " ".join(f"export {i};" for i in interfaces)
    (into / "mod-wasm-sdk-build.wit").write_text(
        f"package {package};\n\nworld mod-wasm-sdk-build {{ import types; {exports} }}\n")
    return "mod-wasm-sdk-build"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("app", help="the app file (its class given to export())")
    ap.add_argument("-o", "--output", required=True, help="the component to write")
    ap.add_argument("-p", "--path", action="append", default=[], type=Path,
                    help="a folder of Python modules the app imports (may be repeated)")
    ap.add_argument("--wit", default=WIT, help="the apache:httpd WIT folder (default: %(default)s)")
    ap.add_argument("--componentize-py", dest="tool",
                    default=os.environ.get("COMPONENTIZE_PY") or shutil.which("componentize-py") or "componentize-py")
    args = ap.parse_args()

    app = Path(args.app).resolve()
    package, known = exportable(args.wit)
    methods = exported_methods(app, known)
    interfaces = [known[m] for m in methods] + [known["request_end"]]
    output = Path(args.output).resolve()
    partial = output.with_name(output.name + ".new")
    print(f"{app.name}: exports {', '.join(methods)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mod_wasm_sdk_build_") as work:
        # One world exporting every interface at once: componentize-py 0.25 accepts several
        # `-w` but fails (a panic) when they share the imported request resource.
        wit = Path(work) / "wit"
        world = merged_world(args.wit, wit, package, interfaces)
        # The app alone in a folder: componentize-py reads everything under each path given.
        app_dir = Path(work) / "app"
        app_dir.mkdir()
        shutil.copy(app, app_dir / app.name)
        cmd = [args.tool, "-q", "-d", str(wit), "-w", world, "componentize", app.stem,
               "-p", str(app_dir), "-p", str(SDK)]
        for folder in args.path:
            cmd += ["-p", str(folder.resolve())]
        cmd += ["-o", str(partial)]
        try:
            subprocess.run(cmd, check=True)
        except FileNotFoundError:
            sys.exit(f"{args.tool} not found: pip install componentize-py, or give --componentize-py")
        except subprocess.CalledProcessError as e:
            sys.exit(f"componentize-py failed ({e.returncode})")
    partial.replace(output)


if __name__ == "__main__":
    main()

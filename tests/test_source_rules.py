"""Rules of the C/Rust boundary that the compiler does not check: every unsafe block states
its invariant, and every function httpd can call runs behind the panic boundary."""

import re

from harness import REPO

SOURCES = sorted((REPO / "mod_wasm" / "src").glob("*.rs")) + sorted((REPO / "host" / "src").rglob("*.rs"))


def test_every_unsafe_block_states_why_it_holds():
    missing = []
    for path in SOURCES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            code = line.split("//")[0]
            if not re.search(r"\bunsafe\s*(\{|impl\b)", code):
                continue
            # The `// SAFETY:` comment stands on one of the lines just above (a comment may
            # run over a few lines), or the block is the body of a closure argument whose
            # line above says it.
            above = "\n".join(lines[max(0, i - 4):i + 1])
            if "SAFETY" not in above:
                missing.append(f"{path.relative_to(REPO)}:{i + 1}: {line.strip()}")
    assert not missing, "unsafe without a SAFETY comment:\n" + "\n".join(missing)


def test_every_c_entry_point_is_behind_the_panic_boundary():
    unguarded = []
    for path in sorted((REPO / "mod_wasm" / "src").glob("*.rs")):
        text = path.read_text()
        for m in re.finditer(r'extern "C" fn (\w+)[^{]*\{', text):
            # The body up to the function's closing brace at the same indentation.
            indent = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
            indent = indent[:len(indent) - len(indent.lstrip())]
            end = text.find("\n" + indent + "}", m.end())
            body = text[m.end():end]
            # guard() itself, or a helper that runs the body inside it: directive() for
            # directive handlers, behind_boundary() for request hooks.
            if not re.search(r"\b(guard|directive|behind_boundary)\(", body):
                unguarded.append(f"{path.relative_to(REPO)}: {m.group(1)}")
    assert not unguarded, "extern \"C\" functions outside the panic boundary:\n" + "\n".join(unguarded)

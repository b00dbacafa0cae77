"""Rules of the C/Rust boundary that the compiler does not check: every unsafe block states
its invariant, and every function httpd can call runs behind the panic boundary."""

import re

import pytest

from harness import REPO

# Recursive: the sources may be split into subfolders (host/src/extension/ already is).
SOURCES = sorted((REPO / "mod_wasm" / "src").rglob("*.rs")) + sorted((REPO / "host" / "src").rglob("*.rs"))

UNSAFE = re.compile(r"\bunsafe\s*(\{|impl\b)")
# `// SAFETY: …`, or `// SAFETY (both calls): …` for a comment that covers a closure's uses.
SAFETY = re.compile(r"^//\s*SAFETY( \([^)]*\))?:")
# A line that opens a closure argument and nothing else: `f(|x| {`, `|| {`, `move |a, b|`.
CLOSURE_HEAD = re.compile(r"(^|[(,=]\s*)(move\s+)?\|[^|]*\|\s*\{?$")


def code_of(line):
    return line.split("//")[0].strip()


def comment_block_above(lines, i):
    """The comment lines standing contiguously right above line `i` (stripped, top first):
    no code line and no blank line between them and line `i`."""
    j = i
    while j > 0 and lines[j - 1].strip().startswith("//"):
        j -= 1
    return [line.strip() for line in lines[j:i]]


def states_safety(lines, i):
    """Whether the `unsafe` on line `i` has its own `// SAFETY:` comment: in the comment
    lines right above it (a comment may run over several lines; `let x = unsafe {` and
    `|| unsafe {` count as the unsafe line), or, when the line right above opens a closure
    argument whose body is this block, on that line or in the comment lines right above it.
    A SAFETY comment separated from the block by a code or blank line is another block's."""
    if any(SAFETY.match(c) for c in comment_block_above(lines, i)):
        return True
    if i > 0 and CLOSURE_HEAD.search(code_of(lines[i - 1])):
        _, slashes, trailing = lines[i - 1].partition("//")
        if slashes and SAFETY.match("//" + trailing.strip()):
            return True
        return any(SAFETY.match(c) for c in comment_block_above(lines, i - 1))
    return False


def unsafe_without_safety(text):
    """Line numbers (1-based) of the unsafe blocks and impls in `text` without their own
    SAFETY comment."""
    lines = text.splitlines()
    return [i + 1 for i, line in enumerate(lines) if UNSAFE.search(code_of(line)) and not states_safety(lines, i)]


def test_every_unsafe_block_states_why_it_holds():
    assert SOURCES, "no Rust sources found under mod_wasm/src and host/src"
    missing, checked = [], 0
    for path in SOURCES:
        text = path.read_text()
        lines = text.splitlines()
        checked += sum(1 for line in lines if UNSAFE.search(code_of(line)))
        missing += [f"{path.relative_to(REPO)}:{n}: {lines[n - 1].strip()}" for n in unsafe_without_safety(text)]
    assert checked > 0, "no unsafe block found: the sources moved?"
    assert not missing, "unsafe without its own SAFETY comment right above:\n" + "\n".join(missing)


# The rule's own cases: (source, line numbers it must report).
RULE_CASES = {
    "one line above": ("""
// SAFETY: p is live.
unsafe { p.read() }
""", []),
    "a comment over several lines, the unsafe in a let": ("""
fn f() {
    // SAFETY: p is live
    // and aligned.
    let x = unsafe { p.read() };
}
""", []),
    "other comment lines before the SAFETY line": ("""
// Why we do this at all.
// SAFETY: p is live.
unsafe {
    p.read();
}
""", []),
    "a qualified SAFETY comment": ("""
// SAFETY (both log calls): s is live.
let log = |message| unsafe { log_server(s, message) };
""", []),
    "an unsafe impl": ("""
// SAFETY: Slot holds no thread-bound data.
unsafe impl Send for Slot {}
""", []),
    "a closure argument on the unsafe line": ("""
guard(
    |_| 500,
    // SAFETY: r is live.
    || unsafe { run(r) },
)
""", []),
    "a closure argument line above that says it": ("""
guard(|_| 500, || { // SAFETY: r is live.
    unsafe { run(r) }
})
""", []),
    "a closure argument line above whose comment says it": ("""
// SAFETY: every p the table yields is live.
table.each(|p| {
    unsafe { p.read() }
})
""", []),
    "a neighbouring block's SAFETY comment": ("""
// SAFETY: a is live.
let x = unsafe { a.read() };
let y = unsafe { b.read() };
""", [4]),
    "a code line between the comment and the block": ("""
// SAFETY: p is live.
let p = lookup();
unsafe { p.read() }
""", [4]),
    "a blank line between the comment and the block": ("""
// SAFETY: p is live.

unsafe { p.read() }
""", [4]),
    "the comment of the block two lines up": ("""
// SAFETY: a is live.
unsafe { a.read() }
log();
unsafe { b.read() }
""", [5]),
    "no comment": ("""
fn f() {
    unsafe { p.read() }
}
""", [3]),
    "a comment that mentions safety but is no SAFETY comment": ("""
// This path is not SAFETY-critical.
unsafe { p.read() }
""", [3]),
    "a closure argument line above without a SAFETY comment": ("""
// Each entry.
table.each(|p| {
    unsafe { p.read() }
})
""", [4]),
    "a closure argument line after a neighbouring block": ("""
// SAFETY: a is live.
let x = unsafe { a.read() };
table.each(|p| {
    unsafe { p.read() }
})
""", [5]),
    "unsafe in a comment or an unsafe fn is no block": ("""
// We avoid unsafe { } here.
unsafe fn f() {}
""", []),
}


@pytest.mark.parametrize("case", RULE_CASES)
def test_the_safety_rule_wants_the_blocks_own_comment(case):
    text, reported = RULE_CASES[case]
    assert unsafe_without_safety(text) == reported


def test_every_c_entry_point_is_behind_the_panic_boundary():
    unguarded = []
    for path in sorted((REPO / "mod_wasm" / "src").rglob("*.rs")):
        text = path.read_text()
        for m in re.finditer(r'extern "C" fn (\w+)[^{]*\{', text):
            # The body up to the function's closing brace at the same indentation.
            indent = text[text.rfind("\n", 0, m.start()) + 1:m.start()]
            indent = indent[:len(indent) - len(indent.lstrip())]
            end = text.find("\n" + indent + "}", m.end())
            body = text[m.end():end]
            # guard() itself, or a helper that runs the body inside it: directive!() (or
            # define(), which is one) for directive handlers, behind_boundary() for hooks.
            if not re.search(r"\b(guard|directive!?|define|behind_boundary)\(", body):
                unguarded.append(f"{path.relative_to(REPO)}: {m.group(1)}")
    assert not unguarded, "extern \"C\" functions outside the panic boundary:\n" + "\n".join(unguarded)

"""A `WasmApacheModule` line's position (first, middle, last) among every module's hooks of
the phases it exports: against mod_mime's type checker and mod_alias's translation."""

import re
import shlex

from harness import Apache, guest, refused_at_startup

P2 = "wasm32-wasip2"
INFO = "<Location /server-info>\n    SetHandler server-info\n</Location>\n"


def serve(body, files, extra_modules=()):
    return Apache(body, extra_modules=list(extra_modules)).add_files(files, under="")


def check_type_hooks(apache):
    """mod_info's list of the type checkers, in the order httpd runs them: [(position
    number, module)], the position 00 for first, 10 for middle."""
    status, _, body = apache.get("/server-info?hooks")
    assert status == 200
    (entries,) = re.findall(r"<dt><strong>Check Type:</strong>(.*?)</dt>", body.decode(), re.S)
    return re.findall(r'(-?\d+) <a href="\?([^"]+)"', entries)


def type_acc(position):
    """(content type of a `.acc` file, the type checkers) with the `type-acc` guest at
    `position`, or without a position argument when it is empty."""
    # `wrong-phase`: the guest's fixups answers `X-Wrong-Phase: wrong-phase`, a trace that
    # the guest is loaded, has its configuration string and ran for this very request.
    line = f'WasmApacheModule {guest("ext_probe", P2)} "type-acc wrong-phase"'
    line = f"{line} {position}" if position else line
    with serve(INFO + line, {"htdocs/report.acc": "numbers\n"}, extra_modules=["info"]) as apache:
        # httpd reads the line as written: its arguments are the module, the string and
        # the position, if any.
        (written,) = [c for c in apache.conf.read_text().splitlines() if c.startswith("WasmApacheModule ")]
        assert shlex.split(written)[2:] == ["type-acc wrong-phase"] + ([position] if position else [])
        status, headers, _ = apache.get("/report.acc")
        assert status == 200
        assert headers.get("x-wrong-phase") == "wrong-phase", f"the guest did not run: {headers}"
        hooks = [hook for hook in check_type_hooks(apache) if hook[1] in ("mod_mime.c", "mod_wasm.c")]
        return headers["content-type"], hooks


def test_by_default_mod_mime_types_a_known_extension_first():
    # mod_mime knows .acc (/etc/mime.types) and runs before a module in the middle, which
    # is where a line without a position puts it. mod_mime's type checker answers ok, so
    # the guest's does not run: its fixups shows that the request reached it all the same.
    middle = [("10", "mod_mime.c"), ("10", "mod_wasm.c")]
    assert type_acc("") == ("application/vnd.americandynamics.acc", middle)
    assert type_acc("middle") == ("application/vnd.americandynamics.acc", middle)


def test_first_runs_the_guests_type_checker_before_mod_mime():
    first = [("00", "mod_wasm.c"), ("10", "mod_mime.c")]
    assert type_acc("first") == ("text/x-wasm-acc", first)


def body_of_old_page(position):
    # The second rule, for a path mod_alias does not know, shows that the guest runs.
    rules = "rewrite /old/ /new/; rewrite /elsewhere/ /new/"
    rewrite = f'WasmApacheModule {guest("rewrite", P2)} "{rules}" {position}'.rstrip()
    config = f"Alias /old/ {{root}}/aliased/\n<Directory {{root}}/aliased>\n    Require all granted\n</Directory>\n{rewrite}\n"
    files = {"aliased/page.txt": "from the alias\n", "htdocs/new/page.txt": "from the rewrite\n"}
    with serve(config, files, extra_modules=["alias"]) as apache:
        assert apache.get("/elsewhere/page.txt")[::2] == (200, b"from the rewrite\n")
        status, _, body = apache.get("/old/page.txt")
        assert status == 200
        return body


def test_mod_alias_translates_before_a_module_in_the_middle():
    assert body_of_old_page("") == b"from the alias\n"


def test_first_rewrites_before_mod_alias_translates():
    assert body_of_old_page("first") == b"from the rewrite\n"


def test_a_position_that_is_not_one_stops_startup():
    _, out = refused_at_startup(f'WasmApacheModule {guest("ext_probe", P2)} "" sideways\n', directive="WasmApacheModule")
    assert "`sideways` is not a hook position: use first, middle or last" in out, out

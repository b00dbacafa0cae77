"""A `WasmApacheModule` line's position (first, middle, last) among every module's hooks of
the phases it exports: against mod_mime's type checker and mod_alias's translation."""

from harness import Apache, guest, refused_at_startup

P2 = "wasm32-wasip2"


def serve(body, files, extra_modules=()):
    return Apache(body, extra_modules=list(extra_modules)).add_files(files, under="")


def content_type_of_acc(position):
    line = f'WasmApacheModule {guest("ext_probe", P2)} "type-acc" {position}'.rstrip()
    with serve(line, {"htdocs/report.acc": "numbers\n"}) as apache:
        status, headers, _ = apache.get("/report.acc")
        assert status == 200
        return headers["content-type"]


def test_by_default_mod_mime_types_a_known_extension_first():
    # mod_mime knows .acc (/etc/mime.types) and runs before a module in the middle.
    assert content_type_of_acc("") == "application/vnd.americandynamics.acc"
    assert content_type_of_acc("middle") == "application/vnd.americandynamics.acc"


def test_first_runs_the_guests_type_checker_before_mod_mime():
    assert content_type_of_acc("first") == "text/x-wasm-acc"


def body_of_old_page(position):
    rewrite = f'WasmApacheModule {guest("rewrite", P2)} "rewrite /old/ /new/" {position}'.rstrip()
    config = f"Alias /old/ {{root}}/aliased/\n<Directory {{root}}/aliased>\n    Require all granted\n</Directory>\n{rewrite}\n"
    files = {"aliased/page.txt": "from the alias\n", "htdocs/new/page.txt": "from the rewrite\n"}
    with serve(config, files, extra_modules=["alias"]) as apache:
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

"""Extension modules' access, authentication and authorization hooks run for subrequests and
internal redirects too, on a real apache2.

A guest that decides on the URI (here ext-probe refuses every URI containing `/private/`)
must see every request that can reach a file: httpd's SSI includes, ErrorDocuments,
DirectoryIndex lookups and mod_rewrite's per-directory [PT] rewrites all make a subrequest or
an internal redirect whose URI the client never sent.

httpd skips the access, authn and authz hooks of a subrequest or redirect whose per-directory
configuration is (the same pointer as) its parent's. While every loaded auth hook and provider
is registered AP_AUTH_INTERNAL_PER_CONF, httpd's directory walk reuses the parent's merged
configuration for a request into another directory that matches the same sections; one
AP_AUTH_INTERNAL_PER_URI hook turns that reuse off, so such requests are checked again.

So each tree below is configured by one `<Directory>` section and nothing else applies to it
(no `<Location>`, `<Files>`, `<If>`, no .htaccess), the private file lies in a subdirectory
of the requested page's, and no module loaded here registers a per-URI auth hook: the
subrequests and redirects get their parent's configuration unless mod_wasm's hooks are per-URI.
For a target in the very same directory as its parent, httpd reuses the configuration even
then and runs no auth hook at all; mod_wasm runs the guest's auth phases for such a request
itself (test_same_directory_include_is_checked_too).
"""

import os

import pytest

from harness import Apache, guest

# tree -> (the ext-probe word that guards it, the phase that word logs, the status it refuses with)
TREES = {
    "acc": ("deny-private-access", "access-checker", 403),
    "authn": ("deny-private-authn", "check-user-id", 401),
    "authz": ("deny-private-authz", "auth-checker", 403),
}
HEADERS = {"X-User": "alice"}
SSI_ERROR = b"[an error occurred while processing this directive]"
ERROR_DOCUMENT_FAILED = (b"Additionally, a 404 Not Found\nerror was encountered while trying to use an "
                         b"ErrorDocument to handle the request.")


def secret(tree):
    return f"the {tree} secret".encode()


def public(tree):
    return f"public {tree} text".encode()


def tree_config(tree, word):
    # The authn and authz trees require a user. ext-probe's `authn` gives the authz tree one
    # (from X-User); `deny-private-authn` does it for the authn tree itself.
    auth = "" if tree == "acc" else """
    AuthType XUser
    AuthName x
    Require valid-user"""
    words = "authn deny-private-authz" if tree == "authz" else word
    return f"""
<Directory {{root}}/htdocs/{tree}>
    Options +Includes
    AddOutputFilter INCLUDES .shtml
    DirectoryIndex /{tree}/private/x.txt
    ErrorDocument 404 /{tree}/private/x.txt
    RewriteEngine On
    RewriteRule ^pt/(.*)$ /{tree}/private/$1 [PT]{auth}
    WasmApacheModule {guest('ext_probe', 'wasm32-wasip2')} "{words}"
</Directory>
# The private directory under another URI: a page there that includes a file next to it.
Alias /view-{tree} {{root}}/htdocs/{tree}/private
"""


@pytest.fixture(scope="module")
def server():
    config = "".join(tree_config(tree, word) for tree, (word, _, _) in TREES.items())
    apache = Apache(config, log_level="warn wasm:info",
                    extra_modules=["authn_core", "authz_user", "include", "rewrite", "dir", "alias"])
    htdocs = apache.dir / "htdocs"
    for tree in TREES:
        files = {
            "public.txt": public(tree).decode() + "\n",
            "private/x.txt": secret(tree).decode() + "\n",
            "page.shtml": 'public: <!--#include virtual="public.txt" -->\n'
                          'private: <!--#include virtual="private/x.txt" -->\n',
            "private/page.shtml": f'public: <!--#include virtual="/{tree}/public.txt" -->\n'
                                  f'private: <!--#include virtual="/{tree}/private/x.txt" -->\n',
        }
        for rel, text in files.items():
            (htdocs / tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (htdocs / tree / rel).write_text(text)
        (htdocs / tree / "idx").mkdir()
    for p in [apache.dir, *apache.dir.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    with apache:
        yield apache


# -- the configuration refuses what it should ----------------------------------------------

@pytest.mark.parametrize("tree", TREES)
def test_direct_request_for_the_private_file_is_refused(server, tree):
    _, phase, refused = TREES[tree]
    mark = server.log_mark()
    status, _, body = server.get(f"/{tree}/private/x.txt", headers=HEADERS)
    assert status == refused and secret(tree) not in body
    assert server.wait_log(f"ext-probe {phase} uri=/{tree}/private/x.txt", since=mark)


@pytest.mark.parametrize("tree", TREES)
def test_public_file_is_served(server, tree):
    status, _, body = server.get(f"/{tree}/public.txt", headers=HEADERS)
    assert status == 200 and body == public(tree) + b"\n"


def test_a_user_is_required_where_configured(server):
    assert server.get("/authn/public.txt")[0] == 401
    assert server.get("/authz/public.txt")[0] == 401
    assert server.get("/acc/public.txt")[0] == 200


# -- no way around it through a subrequest or an internal redirect -------------------------

# way -> the URI the client asks for (none names the private file)
WAYS = {
    "ssi-include": "page.shtml",           # <!--#include virtual="private/x.txt" -->
    "error-document": "missing.txt",       # ErrorDocument 404 /<tree>/private/x.txt
    "directory-index": "idx/",             # DirectoryIndex /<tree>/private/x.txt
    "rewrite-pt": "pt/x.txt",              # RewriteRule ^pt/(.*)$ /<tree>/private/$1 [PT]
}


def observe(tree, way, status, body, saw):
    """What matters in an answer, in one dict so that a failure shows all of it."""
    seen = {"status": status, "secret served": secret(tree) in body, "guest saw the private URI": saw}
    if way == "ssi-include":
        seen["ssi error message"] = SSI_ERROR in body
    if way == "error-document":
        seen["failed error document noted"] = ERROR_DOCUMENT_FAILED in body
    return seen


def correct(tree, way):
    """What a correct server answers: the guest is asked about the private URI and refuses."""
    want = {"status": TREES[tree][2], "secret served": False, "guest saw the private URI": True}
    if way == "ssi-include":
        # mod_include writes its error message in place of the refused include (and logs
        # "subrequest setup returned 403/401"); the page itself is a 200.
        want.update({"status": 200, "ssi error message": True})
    if way == "error-document":
        # The original 404 stays. httpd adds that the ErrorDocument failed too, naming the
        # status the redirect inherited (404), not the guest's 403/401.
        want.update({"status": 404, "failed error document noted": True})
    return want


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("tree", TREES)
def test_private_file_not_served_through_a_subrequest_or_redirect(server, tree, way):
    phase = TREES[tree][1]
    mark = server.log_mark()
    status, _, body = server.get(f"/{tree}/{WAYS[way]}", headers=HEADERS)
    if way == "ssi-include":
        # The page itself was processed: the public include is there.
        assert public(tree) in body, body
    # The guest logs each call before it answers, so before the response is sent.
    saw = server.wait_log(f"ext-probe {phase} uri=/{tree}/private/x.txt", timeout=3, since=mark)
    assert observe(tree, way, status, body, saw) == correct(tree, way), \
        (body.decode(errors="replace"), server.log_since(mark))


@pytest.mark.parametrize("tree", TREES)
def test_same_directory_include_is_checked_too(server, tree):
    # /view-<tree>/page.shtml is the private directory under a URI the guest allows; the page
    # includes the private file next to it, so the subrequest has the page's configuration.
    phase = TREES[tree][1]
    mark = server.log_mark()
    status, _, body = server.get(f"/view-{tree}/page.shtml", headers=HEADERS)
    assert status == 200 and public(tree) in body, body
    assert secret(tree) not in body and SSI_ERROR in body, body
    assert server.wait_log(f"ext-probe {phase} uri=/{tree}/private/x.txt", timeout=3, since=mark)

# Builds mod_wasm.so (Rust staticlib + C glue linked by apxs) and the example/test guests.
#   make            module and guests (Rust, Python and JavaScript)
#   make test       everything, then unit and end-to-end tests (see scripts/test.sh)
APXS   ?= apxs
CARGO  ?= cargo
OUT    := build
RUSTLIB := target/release/libmod_wasm.a
GUEST_TARGET_DIR := $(CURDIR)/target/guests
GUEST_TARGETS := wasm32-wasip1 wasm32-wasip2

.PHONY: all module guests python-guests js-guests rust install clean
all: module guests python-guests js-guests

module: $(OUT)/mod_wasm.so

rust:
	$(CARGO) build --release -p mod_wasm

# The staticlib's native dependencies come from `rustc --print native-static-libs`.
$(OUT)/mod_wasm.so: rust mod_wasm/mod_wasm.c mod_wasm/exports.map
	cd mod_wasm && $(APXS) -c -I include -o mod_wasm.la mod_wasm.c ../$(RUSTLIB) \
	    -Wl,--version-script=exports.map -Wl,--gc-sections -lpthread -ldl -lm -lgcc_s -lc
	mkdir -p $(OUT)
	# A new file, renamed into place: a running httpd keeps the old one mapped, intact.
	cp mod_wasm/.libs/mod_wasm.so $(OUT)/mod_wasm.so.new
	mv -f $(OUT)/mod_wasm.so.new $(OUT)/mod_wasm.so

# Example guests (sdk-examples/) and test guests (tests/guests/), collected in
# build/guests/<target>/. Programs build for both WASI targets; extension modules
# (WasmApacheModule) are components, wasm32-wasip2 only.
PROGRAMS := hello request-viewer file-lister echo
TEST_PROGRAMS := probe reactor
guests:
	cd sdk-examples && CARGO_TARGET_DIR=$(GUEST_TARGET_DIR) $(CARGO) build --release --target wasm32-wasip1 $(PROGRAMS:%=-p %)
	cd sdk-examples && CARGO_TARGET_DIR=$(GUEST_TARGET_DIR) $(CARGO) build --release --target wasm32-wasip2
	cd tests/guests && CARGO_TARGET_DIR=$(GUEST_TARGET_DIR) $(CARGO) build --release --target wasm32-wasip1 $(TEST_PROGRAMS:%=-p %)
	cd tests/guests && CARGO_TARGET_DIR=$(GUEST_TARGET_DIR) $(CARGO) build --release --target wasm32-wasip2
	for t in $(GUEST_TARGETS); do \
	    mkdir -p $(OUT)/guests/$$t; \
	    cp $(GUEST_TARGET_DIR)/$$t/release/*.wasm $(OUT)/guests/$$t/; \
	done

# Components built the way other ecosystems document it (tests/guests/http-python: a
# wasi:http component in Python), and Python extension modules. componentize-py comes from
# PyPI (scripts/setup.sh puts it in target/tools); the wasi:http WIT is the one
# wasmtime-wasi-http, our host, ships.
COMPONENTIZE_PY := $(CURDIR)/target/tools/componentize-py/bin/componentize-py
WASI_HTTP_WIT = $(shell $(CARGO) metadata --format-version 1 --manifest-path host/Cargo.toml | python3 -c \
    'import json, os, sys; print(next(os.path.dirname(p["manifest_path"]) for p in json.load(sys.stdin)["packages"] if p["name"] == "wasmtime-wasi-http"))')/wit
python-guests: $(OUT)/guests/wasm32-wasip2/http-python.wasm
$(OUT)/guests/wasm32-wasip2/http-python.wasm: tests/guests/http-python/app.py
	mkdir -p $(@D)
	cd tests/guests/http-python && $(COMPONENTIZE_PY) -q -d $(WASI_HTTP_WIT) -w wasi:http/proxy@0.2.12 \
	    componentize app -o $(CURDIR)/$@.new
	mv -f $@.new $@

# Extension modules in Python (sdk-python), one component each.
define python_module
python-guests: $(OUT)/guests/wasm32-wasip2/$(1).wasm
$(OUT)/guests/wasm32-wasip2/$(1).wasm: $(2) sdk-python/build.py sdk-python/mod_wasm_sdk/__init__.py wit/apache-httpd.wit
	mkdir -p $$(@D)
	python3 sdk-python/build.py --componentize-py $(COMPONENTIZE_PY) $(2) -o $$@
endef
$(eval $(call python_module,python_add_headers,sdk-examples/python/add-headers/add_headers.py))
$(eval $(call python_module,python_access_control,sdk-examples/python/access-control/access_control.py))
$(eval $(call python_module,python_json_logger,sdk-examples/python/json-logger/json_logger.py))
$(eval $(call python_module,python_probe,tests/guests/python-probe/python_probe.py))

# Extension modules in JavaScript (sdk-js, with componentize-js from npm in target/tools).
COMPONENTIZE_JS := $(CURDIR)/target/tools/componentize-js/node_modules/.bin/componentize-js
define js_module
js-guests: $(OUT)/guests/wasm32-wasip2/$(1).wasm
$(OUT)/guests/wasm32-wasip2/$(1).wasm: $(2) sdk-js/build.mjs sdk-js/mod_wasm_sdk.js wit/apache-httpd.wit
	mkdir -p $$(@D)
	node sdk-js/build.mjs --componentize-js $(COMPONENTIZE_JS) $(2) -o $$@
endef
$(eval $(call js_module,js_access_control,sdk-examples/js/access-control/access_control.js))
$(eval $(call js_module,js_probe,tests/guests/js-probe/js_probe.js))

# Into httpd's module directory; on Debian also a mods-available entry for `a2enmod wasm`.
install: module
	install -m 644 $(OUT)/mod_wasm.so $$($(APXS) -q LIBEXECDIR)/mod_wasm.so
	if [ -d /etc/apache2/mods-available ]; then \
	    echo "LoadModule wasm_module $$($(APXS) -q LIBEXECDIR)/mod_wasm.so" > /etc/apache2/mods-available/wasm.load; \
	fi

clean:
	rm -rf $(OUT) mod_wasm/.libs mod_wasm/*.la mod_wasm/*.lo mod_wasm/*.slo mod_wasm/*.o
	$(CARGO) clean

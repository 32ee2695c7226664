from phoneprov.core.chain import flat_settings, provision
from phoneprov.core.markers import DeviceInfo
from phoneprov.core.reference import build_reference
from phoneprov.settings_schema import shipped_schema

DEV = DeviceInfo(mac="00:09:52:00:00:0e", type="D200", serial="S1")
SCHEMA = shipped_schema()


def conf(body: str) -> bytes:
    return f"<configuration>{body}</configuration>".encode()


def update(check: str, url: str = "") -> bytes:
    tail = f"<url>{url}</url>" if url else ""
    return conf(f'<update version="1.34.0"><check>{check}</check>{tail}</update>')


def server(files):
    calls = []

    def fetch(url):
        calls.append(url)
        return (200, files[url]) if url in files else (404, b"not found")

    return fetch, calls


def run(url, files, **kwargs):
    fetch, calls = server(files)
    return provision(url, fetch, DEV, SCHEMA, **kwargs), calls


def test_reference_chain_by_the_seed_rules_in_order_later_overrides():
    files = {
        "http://prov.server.com/prov/references.xml": build_reference(
            ["first_file.xml", "/second_file.xml", "http://another.server.com/<HWTYP>.xml"]
        ),
        "http://prov.server.com/prov/first_file.xml": update("true", "https://u"),
        "http://prov.server.com/second_file.xml": update("false"),
        "http://another.server.com/D200.xml": conf(
            '<identities version="1.34.0"><identity><username>201</username></identity>'
            "</identities>"
        ),
    }
    out, calls = run("http://prov.server.com/prov/references.xml", files)
    assert out.ok, out.error
    assert calls == list(files)
    assert out.settings == {
        "/update/@version": "1.34.0",
        "/update/check": "false",
        "/update/url": "https://u",
        "/identities/@version": "1.34.0",
        "/identities/identity/username": "201",
    }
    assert [s.kind for s in out.steps] == ["reference", "settings", "settings", "settings"]
    assert out.stripped == () and out.warnings == ()


def test_markers_in_the_entry_url_and_nested_reference_files():
    files = {
        "http://h/prov.py?mac=00095200000E": build_reference(["sub/ref.xml"]),
        "http://h/sub/ref.xml": build_reference(["a.xml"]),
        "http://h/sub/a.xml": update("true"),
    }
    out, _ = run("http://h/prov.py?mac=<MACADR>", files)
    assert out.ok and out.settings["/update/check"] == "true"
    assert [s.depth for s in out.steps] == [0, 1, 2]


def test_unknown_elements_are_stripped_and_named_per_file():
    files = {
        "http://h/r.xml": build_reference(["a.xml", "b.xml"]),
        "http://h/a.xml": conf('<update version="1.34.0"><check>true</check><mirror/></update>'),
        "http://h/b.xml": conf("<settings><sip><account/></sip></settings>"),
    }
    out, _ = run("http://h/r.xml", files)
    assert out.ok  # the phone takes the files; it just drops what it does not know
    assert [s.stripped for s in out.files] == [
        ("/configuration/update/mirror",),
        ("/configuration/settings",),
    ]
    assert out.files[0].note == "1 stripped"
    assert out.stripped == ("/configuration/update/mirror", "/configuration/settings")
    assert out.settings == {"/update/@version": "1.34.0", "/update/check": "true"}


def test_a_file_the_phone_cannot_apply_fails_the_chain():
    out, _ = run("http://h/a.xml", {"http://h/a.xml": b"<settings><a>1</a></settings>"})
    assert not out.ok and out.configuration == b""
    assert out.error == (
        "http://h/a.xml: root element <settings> is neither <configuration> nor a settings section"
    )
    assert out.steps[-1].kind == "failed"


def test_the_files_are_applied_onto_the_base():
    base = update("true", "https://mirror")
    out, _ = run("http://h/a.xml", {"http://h/a.xml": update("false")}, base=base)
    assert out.settings["/update/check"] == "false"
    assert out.settings["/update/url"] == "https://mirror"


def test_warnings_of_the_merge_are_kept():
    out, _ = run("http://h/a.xml", {"http://h/a.xml": conf("<update><check>true</check></update>")})
    assert out.ok and any("without version" in w for w in out.warnings)


def test_failures_name_the_step():
    out, _ = run("http://h/r.xml", {"http://h/r.xml": build_reference(["missing.xml"])})
    assert not out.ok and out.error == "fetching http://h/missing.xml gave HTTP 404"
    assert out.steps[-1].status == 404

    out, _ = run("http://h/r.xml", {"http://h/r.xml": b"<broken"})
    assert "not well-formed" in out.error


def test_loops_and_depth_are_bounded():
    out, calls = run("http://h/r.xml", {"http://h/r.xml": build_reference(["r.xml"])})
    assert out.error.startswith("reference loop: http://h/r.xml")
    assert len(calls) == 1

    chain = {f"http://h/{i}.xml": build_reference([f"{i + 1}.xml"]) for i in range(10)}
    out, calls = run("http://h/0.xml", chain, max_depth=4)
    assert "nested deeper than 4" in out.error and len(calls) == 5


def test_without_a_schema_the_files_are_only_fetched():
    fetch, _ = server({"http://h/a.xml": b"<settings><a>1</a></settings>"})
    out = provision("http://h/a.xml", fetch, DEV)
    assert out.ok and [s.kind for s in out.steps] == ["settings"]
    assert out.configuration == b"" and out.settings == {}


def test_flat_settings_keys():
    doc = conf(
        '<keys><phoneXtensions><key keyNumber="1" label="a"/><key keyNumber="2"/>'
        "</phoneXtensions></keys>"
    )
    assert flat_settings(doc) == {
        "/keys/phoneXtensions/key[1]/@keyNumber": "1",
        "/keys/phoneXtensions/key[1]/@label": "a",
        "/keys/phoneXtensions/key[1]": "",
        "/keys/phoneXtensions/key[2]/@keyNumber": "2",
        "/keys/phoneXtensions/key[2]": "",
    }

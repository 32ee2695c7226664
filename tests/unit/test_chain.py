from phoneprov.core.chain import provision
from phoneprov.core.markers import DeviceInfo
from phoneprov.core.phonesettings import flatten_settings
from phoneprov.core.reference import build_reference

DEV = DeviceInfo(mac="00:09:52:00:00:0e", type="D200", serial="S1")


def server(files):
    calls = []

    def fetch(url):
        calls.append(url)
        return (200, files[url]) if url in files else (404, b"not found")

    return fetch, calls


def test_reference_chain_by_the_seed_rules_in_order_later_overrides():
    files = {
        "http://prov.server.com/prov/references.xml": build_reference(
            ["first_file.xml", "/second_file.xml", "http://another.server.com/<HWTYP>.xml"]
        ),
        "http://prov.server.com/prov/first_file.xml": b"<s><lang>de</lang><tz>UTC</tz></s>",
        "http://prov.server.com/second_file.xml": b"<s><lang>en</lang></s>",
        "http://another.server.com/D200.xml": b"<s><account id='1'><user>201</user></account></s>",
    }
    fetch, calls = server(files)
    out = provision("http://prov.server.com/prov/references.xml", fetch, DEV)
    assert out.ok, out.error
    assert calls == list(files)
    assert out.settings == {"lang": "en", "tz": "UTC", "account[1]/user": "201"}
    assert [s.kind for s in out.steps] == ["reference", "settings", "settings", "settings"]


def test_markers_in_the_entry_url_and_nested_reference_files():
    files = {
        "http://h/prov.py?mac=00095200000E": build_reference(["sub/ref.xml"]),
        "http://h/sub/ref.xml": build_reference(["a.xml"]),
        "http://h/sub/a.xml": b"<s><a>1</a></s>",
    }
    fetch, _ = server(files)
    out = provision("http://h/prov.py?mac=<MACADR>", fetch, DEV)
    assert out.ok and out.settings == {"a": "1"}
    assert [s.depth for s in out.steps] == [0, 1, 2]


def test_failures_name_the_step():
    fetch, _ = server({"http://h/r.xml": build_reference(["missing.xml"])})
    out = provision("http://h/r.xml", fetch, DEV)
    assert not out.ok and out.error == "fetching http://h/missing.xml gave HTTP 404"
    assert out.steps[-1].status == 404

    fetch, _ = server({"http://h/r.xml": b"<broken"})
    assert "not well-formed" in provision("http://h/r.xml", fetch, DEV).error


def test_loops_and_depth_are_bounded():
    fetch, calls = server({"http://h/r.xml": build_reference(["r.xml"])})
    out = provision("http://h/r.xml", fetch, DEV)
    assert out.error.startswith("reference loop: http://h/r.xml")
    assert len(calls) == 1

    chain = {f"http://h/{i}.xml": build_reference([f"{i + 1}.xml"]) for i in range(10)}
    fetch, calls = server(chain)
    out = provision("http://h/0.xml", fetch, DEV, max_depth=4)
    assert "nested deeper than 4" in out.error and len(calls) == 5


def test_flatten_keys():
    doc = b"<settings><a><b>1</b><b>2</b></a><c name='x'>3</c><d/></settings>"
    assert flatten_settings(doc) == {"a/b[1]": "1", "a/b[2]": "2", "c[x]": "3", "d": ""}

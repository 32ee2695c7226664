import threading

from phoneprov.state.db import Discovered, Fetch, Lease, State


def test_lease_life_cycle(tmp_path):
    with State(tmp_path / "s.db") as st:
        st.record_lease(Lease("00095200000E", "10.0.0.5", hostname="d200", expires=100), now=1.0)
        st.record_lease(Lease("00095200000E", "10.0.0.6"), now=2.0)
        lease = st.lease_for("00095200000E", now=50.0)
        assert (lease.ip, lease.hostname, lease.expires, lease.first_seen, lease.last_seen) == (
            "10.0.0.6",
            "d200",
            100,
            1.0,
            2.0,
        )
        assert st.lease_by_ip("10.0.0.6", now=50.0) == lease
        st.release_lease("00095200000E", "10.0.0.6", now=3.0)
        assert st.lease_for("00095200000E", now=50.0) is None
        assert st.leases(include_inactive=True)[0].active is False


PHONE, PC = "00095200000E", "02005E100001"


def test_an_expired_lease_ends_at_its_expiry(tmp_path):
    with State(tmp_path / "s.db") as st:
        st.record_lease(Lease(PHONE, "10.0.0.5", expires=100), now=10.0)
        assert st.lease_for(PHONE, now=99.0) is not None
        assert st.lease_by_ip("10.0.0.5", now=99.0) is not None
        assert st.lease_for(PHONE, now=100.0) is None  # no `del` needed
        assert st.lease_by_ip("10.0.0.5", now=100.0) is None
        st.record_lease(Lease(PHONE, "10.0.0.5", expires=0), now=20.0)  # 0: infinite
        assert st.lease_for(PHONE, now=1e12) is not None


def test_a_new_lease_on_the_same_address_ends_the_old_one(tmp_path):
    """The `del` of the phone's lease was missed; a PC gets its address: the phone's lease
    is over at once, whoever asks."""
    with State(tmp_path / "s.db") as st:
        st.record_lease(Lease(PHONE, "10.0.0.5", expires=1000), now=10.0)
        st.record_lease(Lease(PC, "10.0.0.5", expires=1000), now=20.0)
        assert st.lease_for(PHONE, now=30.0) is None
        assert st.lease_by_ip("10.0.0.5", now=30.0).mac == PC
        assert [lease.mac for lease in st.leases()] == [PHONE, PC]  # history is kept
        st.release_lease(PC, "10.0.0.5", now=40.0)  # and a released successor
        assert st.lease_by_ip("10.0.0.5", now=50.0) is None  # does not revive the phone's
        assert st.lease_for(PHONE, now=50.0) is None
        st.record_lease(Lease(PHONE, "10.0.0.5", expires=1000), now=60.0)  # back again
        assert st.lease_for(PHONE, now=70.0).ip == "10.0.0.5"
        assert st.ip_last_seen("10.0.0.5") == 60.0
        assert st.ip_last_seen("10.0.0.99") is None


def test_discovered_and_enrolled(tmp_path):
    with State(tmp_path / "s.db") as st:
        st.record_discovered(Discovered("000952000099", "10.0.0.9", "Auerswald", "oui", 1, 1))
        st.record_discovered(Discovered("000952000099", "10.0.0.8", None, "oui", 5, 5))
        [d] = st.discovered()
        assert (d.ip, d.vendor_class, d.first_seen, d.last_seen) == ("10.0.0.8", "Auerswald", 1, 5)
        assert st.enrol("000952000099", "D200", "default", 6) is True
        assert st.enrol("000952000099", "D100", "other", 7) is False
        assert st.enrolled()[0]["type"] == "D200"


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "s.db"
    State(path).close()

    def writer(n):
        with State(path) as st:
            for i in range(50):
                st.log_fetch(Fetch(float(i), f"{n:012X}", "127.0.0.1", "/x", 200, i))
                st.record_lease(Lease(f"{n:012X}", f"10.0.{n}.{i}"), now=float(i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with State(path) as st:
        assert len(st.fetches(limit=10_000)) == 300
        assert {lease.ip for lease in st.leases()} == {f"10.0.{n}.49" for n in range(6)}


def test_rendered_digests_are_replaced_and_at_moves_only_on_change(tmp_path):
    with State(tmp_path / "s.db") as st:
        assert st.rendered() == {}
        st.record_rendered({"00095200000A": "d1", "00095200000B": "d2"}, now=1.0)
        st.record_rendered({"00095200000A": "d1", "00095200000C": "d3"}, now=2.0)
        assert st.rendered() == {"00095200000A": "d1", "00095200000C": "d3"}
        at = dict(st.db.execute("SELECT mac, at FROM rendered").fetchall())
        assert at == {"00095200000A": 1.0, "00095200000C": 2.0}


DAY = 86400.0


def test_retention_keeps_days_and_rows(tmp_path):
    now = 100 * DAY
    with State(tmp_path / "s.db") as st:
        st.log_fetches([(now - 40 * DAY, None, "10.0.0.1", "/old", 404, 10)])
        st.log_fetches([(now - i, None, "10.0.0.1", f"/{i}", 200, 10) for i in range(5)])
        st.record_discovered(Discovered("000952000001", "10.0.0.9", None, "oui", 1, now - 31 * DAY))
        for n in range(2, 6):
            st.record_discovered(Discovered(f"00095200000{n}", "10.0.0.9", None, "oui", 1, now - n))
        assert st.prune(keep_days=30, keep_rows=3, now=now) == 1 + 2 + 1 + 1
        assert [f.path for f in st.fetches()] == ["/4", "/3", "/2"]  # the 3 newest rows
        assert [d.mac for d in st.discovered()] == [f"00095200000{n}" for n in (2, 3, 4)]
        assert st.prune(keep_days=30, keep_rows=3, now=now) == 0


def test_the_fetch_log_applies_retention(tmp_path):
    from phoneprov.config import Retention
    from phoneprov.web.fetchlog import FetchLog

    with State(tmp_path / "s.db") as st:
        st.log_fetches([(1.0, None, "10.0.0.1", "/ancient", 200, 1)])
    log = FetchLog(tmp_path / "s.db", Retention(days=30, rows=100))
    log.add((1e10, None, "10.0.0.2", "/new", 200, 1))
    log.close()
    with State(tmp_path / "s.db") as st:
        assert [f.path for f in st.fetches()] == ["/new"]

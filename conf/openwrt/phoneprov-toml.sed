# conf/phoneprov.toml -> the OpenWrt example config (the recipe runs `sed -f` on it at build
# time; tests/unit/test_openwrt.py checks that every line here changes exactly one line).
# On OpenWrt /var is /tmp (RAM, empty after a reboot): everything phoneprov keeps lives under
# /etc/phoneprov (flash). dnsmasq reads the per-phone directories when it starts, so they
# must exist at boot. The uci-defaults script fills in the LAN device and the first dnsmasq
# section's pid file (cfg01411c is the usual name of the first, unnamed section).
1s|^# phoneprov appliance configuration (example).*$|# phoneprov appliance configuration, OpenWrt example (the package installs it as /etc/phoneprov/phoneprov.toml).|
s|^interface = "eth0"$|interface = "br-lan"|
s|^hostsdir = "/var/lib/phoneprov/dnsmasq/hosts"$|hostsdir = "/etc/phoneprov/dnsmasq/hosts"|
s|^optsdir = "/var/lib/phoneprov/dnsmasq/opts"$|optsdir = "/etc/phoneprov/dnsmasq/opts"|
s|^dnsmasq_pidfile = "/run/dnsmasq/dnsmasq.pid"$|dnsmasq_pidfile = "/var/run/dnsmasq/dnsmasq.cfg01411c.pid"|
s|^leasefile = "/var/lib/misc/dnsmasq.leases"$|leasefile = "/tmp/dhcp.leases"|
s|^secret_file = "/var/lib/phoneprov/secret"$|secret_file = "/etc/phoneprov/secret"|
s|^state = "/var/lib/phoneprov/state/state.db"$|state = "/etc/phoneprov/state/state.db"  # flash: a write per lease event and fetch; /tmp spares it, but forgets leases, fetches and auto-enrolled phones at each reboot|
s|^http = "router"$|http = "socket"|

# make deb: the Debian package, built from a copy of the tracked sources (no caches, no venv)
# with Debian's own tooling (debhelper, dh-python); the result is build/phoneprov_*_all.deb.
.PHONY: deb
deb:
	rm -rf build/deb && mkdir -p build/deb/src
	cp -r debian plugin hooks conf pyproject.toml README.md build/deb/src/
	find build/deb/src -name __pycache__ -prune -exec rm -rf {} +
	cd build/deb/src && dpkg-buildpackage --build=binary --no-sign --no-check-builddeps >../build.log 2>&1 \
		|| { tail -30 ../build.log; exit 1; }
	mv build/deb/phoneprov_*_all.deb build/
	@ls build/phoneprov_*_all.deb
